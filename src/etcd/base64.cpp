#include "etcd/base64.hpp"

#include <array>
#include <cstdint>

namespace nm::gateway {

namespace {

constexpr char base64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<signed char, 256> base64_values() {
    std::array<signed char, 256> table{};
    for (auto& v : table) v = -1;
    for (int i = 0; i < 64; ++i) table[static_cast<unsigned char>(base64_alphabet[i])] = static_cast<signed char>(i);
    return table;
}

constexpr auto base64_table = base64_values();

}  // namespace

std::string base64_encode(std::string_view raw) {
    std::string out;
    out.reserve((raw.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= raw.size(); i += 3) {
        std::uint32_t n = static_cast<std::uint32_t>(static_cast<unsigned char>(raw[i])) << 16 |
                          static_cast<std::uint32_t>(static_cast<unsigned char>(raw[i + 1])) << 8 |
                          static_cast<unsigned char>(raw[i + 2]);
        out += base64_alphabet[n >> 18 & 63];
        out += base64_alphabet[n >> 12 & 63];
        out += base64_alphabet[n >> 6 & 63];
        out += base64_alphabet[n & 63];
    }
    auto rest = raw.size() - i;
    if (rest > 0) {
        std::uint32_t n = static_cast<std::uint32_t>(static_cast<unsigned char>(raw[i])) << 16;
        if (rest == 2) n |= static_cast<std::uint32_t>(static_cast<unsigned char>(raw[i + 1])) << 8;
        out += base64_alphabet[n >> 18 & 63];
        out += base64_alphabet[n >> 12 & 63];
        out += rest == 2 ? base64_alphabet[n >> 6 & 63] : '=';
        out += '=';
    }
    return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) return std::nullopt;
    std::size_t padding = 0;
    if (!text.empty() && text.back() == '=') {
        ++padding;
        if (text[text.size() - 2] == '=') ++padding;
    }

    std::string out;
    out.reserve(text.size() / 4 * 3);
    auto const data_length = text.size() - padding;
    std::uint32_t bits = 0;
    int bit_count = 0;
    for (std::size_t i = 0; i < data_length; ++i) {
        auto v = base64_table[static_cast<unsigned char>(text[i])];
        if (v < 0) return std::nullopt;
        bits = bits << 6 | static_cast<std::uint32_t>(v);
        bit_count += 6;
        if (bit_count >= 8) {
            bit_count -= 8;
            out += static_cast<char>(bits >> bit_count & 0xff);
        }
    }
    return out;
}

}  // namespace nm::gateway
