#pragma once
// What every fuzz target shares: a property that must hold whatever the input. A broken
// one aborts, so that libFuzzer keeps the input as a finding exactly as it keeps a crash.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace nm::fuzz {

inline void require(bool holds, char const* property) {
    if (holds) return;
    std::fprintf(stderr, "property broken: %s\n", property);
    std::abort();
}

inline std::string_view as_text(std::uint8_t const* data, std::size_t size) {
    return {reinterpret_cast<char const*>(data), size};
}

}  // namespace nm::fuzz
