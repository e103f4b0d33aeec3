#pragma once
// The gateway's JSON, field by field, for the decoders of etcd's answers (gateway_json.cpp,
// gateway_errors.cpp) and nothing else: nlohmann stays out of every other header.
//
// The gateway omits fields that are zero, false or empty, and writes 64-bit integers as
// strings: every reader takes an absent field for its zero value, and an integer as a
// string or a number. A field of the wrong type throws bad_shape, which decode() turns
// into etcd_error{malformed}.
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/text.hpp"
#include "etcd/etcd_types.hpp"

namespace nm::gateway {

using json = nlohmann::json;

// An answer that does not have the expected shape; it never leaves the decoders.
struct bad_shape {
    std::string why;
};

etcd_error malformed(std::string why, std::string_view body);

// A member of an object, or nullptr when it is absent or null.
json const* member(json const& object, char const* name);
std::int64_t parse_int(json const& value, char const* name);
std::int64_t int_field(json const& object, char const* name);
int small_int_field(json const& object, char const* name);
bool bool_field(json const& object, char const* name);
std::string string_field(json const& object, char const* name);
// A member ID: a 64-bit unsigned number as a decimal string; empty when absent or zero.
std::string member_id_field(json const& object, char const* name);
// Keys and values: base64 on the wire.
std::string bytes_field(json const& object, char const* name);
// A nested object or array; an absent one reads as empty.
json const& object_field(json const& object, char const* name);
json const& array_field(json const& object, char const* name);
json const& expect_object(json const& value, char const* what);

// An error object of the gateway, in any of its forms (gateway_errors.cpp): as a status
// error, with the HTTP status it came with (a streamed error names its own).
etcd_error error_object(json const& object, int http_status);

// Parses text that holds at most a bounded number of JSON values (else bad_shape); a
// discarded value when it is not JSON.
json parse_bounded(std::string_view text);

// Parses a JSON object and hands it to read(); any shape problem becomes etcd_error{malformed}.
template <class T, class Reader>
etcd_result<T> decode(std::string_view body, Reader&& read) {
    try {
        auto document = parse_bounded(body);
        if (document.is_discarded()) return malformed("not JSON", body);
        if (!document.is_object()) return malformed("not a JSON object", body);
        return read(document);
    } catch (bad_shape const& e) {
        return malformed(e.why, body);
    } catch (std::exception const& e) {
        return malformed(e.what(), body);
    }
}

}  // namespace nm::gateway
