#pragma once
// Base64 as etcd's gateway writes keys and values (Go's encoding/json for []byte): the
// standard alphabet, with padding.
#include <optional>
#include <string>
#include <string_view>

namespace nm::gateway {

std::string base64_encode(std::string_view raw);
// nullopt when the text is not valid base64.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace nm::gateway
