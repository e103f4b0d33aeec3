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

// The decoder an input of a several-decoder target is for: its first byte names one of
// `decoders` (any other byte picks one by its value).
inline char decoder_of(std::uint8_t first, std::string_view decoders) {
    auto const at = decoders.find(static_cast<char>(first));
    return decoders[at != std::string_view::npos ? at : first % decoders.size()];
}

}  // namespace nm::fuzz
