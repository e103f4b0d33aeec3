#pragma once
// Forced into every translation unit of the core library (meson.build, `-include`): the
// core decides and never does I/O, so it must not even see the libraries that do. Any
// use of these names, in the core or in a header it includes, fails the build.
#pragma GCC poison boost asio beast nlohmann
