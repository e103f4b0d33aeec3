#include "etcd/json_fields.hpp"

#include <charconv>
#include <limits>
#include <utility>

#include "etcd/base64.hpp"

namespace nm::gateway {

etcd_error malformed(std::string why, std::string_view body) {
    return etcd_error{etcd_error::kind::malformed, 0, 0, cat(why, " in: ", excerpt(body))};
}

// The gateway omits zero values: an absent member and a null one read alike.
json const* member(json const& object, char const* name) {
    auto it = object.find(name);
    if (it == object.end() || it->is_null()) return nullptr;
    return &*it;
}

std::int64_t parse_int(json const& value, char const* name) {
    if (value.is_number_integer()) {
        if (value.is_number_unsigned() &&
            value.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
            throw bad_shape{cat("field '", name, "' is out of range")};
        return value.get<std::int64_t>();
    }
    if (value.is_string()) {
        auto const& text = value.get_ref<std::string const&>();
        std::int64_t out = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
        if (ec == std::errc() && end == text.data() + text.size() && !text.empty()) return out;
    }
    throw bad_shape{cat("field '", name, "' is not an integer")};
}

// 64-bit integers arrive as strings; numbers are accepted too. Absent means zero.
std::int64_t int_field(json const& object, char const* name) {
    auto const* value = member(object, name);
    return value ? parse_int(*value, name) : 0;
}

int small_int_field(json const& object, char const* name) {
    auto v = int_field(object, name);
    if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max())
        throw bad_shape{cat("field '", name, "' is out of range")};
    return static_cast<int>(v);
}

bool bool_field(json const& object, char const* name) {
    auto const* value = member(object, name);
    if (!value) return false;
    if (!value->is_boolean()) throw bad_shape{cat("field '", name, "' is not a boolean")};
    return value->get<bool>();
}

std::string string_field(json const& object, char const* name) {
    auto const* value = member(object, name);
    if (!value) return {};
    if (!value->is_string()) throw bad_shape{cat("field '", name, "' is not a string")};
    return value->get<std::string>();
}

// A member ID: a 64-bit unsigned number, written as a decimal string. Empty when absent or
// zero (etcd's "no member": a status answer's leader while there is none).
std::string member_id_field(json const& object, char const* name) {
    auto const* value = member(object, name);
    if (!value) return {};
    std::uint64_t id = 0;
    if (value->is_number_unsigned()) {
        id = value->get<std::uint64_t>();
    } else if (value->is_string()) {
        auto const& text = value->get_ref<std::string const&>();
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
        if (ec != std::errc() || end != text.data() + text.size() || text.empty())
            throw bad_shape{cat("field '", name, "' is not a member ID")};
    } else {
        throw bad_shape{cat("field '", name, "' is not a member ID")};
    }
    return id == 0 ? std::string() : std::to_string(id);
}

// Keys and values are base64 on the wire.
std::string bytes_field(json const& object, char const* name) {
    auto decoded = base64_decode(string_field(object, name));
    if (!decoded) throw bad_shape{cat("field '", name, "' is not base64")};
    return std::move(*decoded);
}

namespace {

json const& empty_object() {
    static json const empty = json::object();
    return empty;
}

json const& empty_array() {
    static json const empty = json::array();
    return empty;
}

}  // namespace

// A nested object; an absent one reads as empty, so its fields take their defaults.
json const& object_field(json const& object, char const* name) {
    auto const* value = member(object, name);
    if (!value) return empty_object();
    if (!value->is_object()) throw bad_shape{cat("field '", name, "' is not an object")};
    return *value;
}

json const& array_field(json const& object, char const* name) {
    auto const* value = member(object, name);
    if (!value) return empty_array();
    if (!value->is_array()) throw bad_shape{cat("field '", name, "' is not an array")};
    return *value;
}

json const& expect_object(json const& value, char const* what) {
    if (!value.is_object()) throw bad_shape{cat(what, " is not an object")};
    return value;
}

// An answer holds at most this many JSON values: etcd's hold tens, a read of a large group
// a few thousand. Within the limits on bytes, text made of the smallest values ({} by the
// hundred thousand) would cost some 40 bytes of memory per byte of text and the loop a
// second per few megabytes: such an answer is malformed, and is not parsed at all.
namespace {

constexpr std::size_t max_json_values = 64 * 1024;

// Whether text may hold more than max_json_values values, told by one pass over its bytes
// before any parse: every value but the first follows a '[', a ',' or a ':' outside
// strings, so their count bounds the values from above (it counts member names too).
// nlohmann's parse with a callback could count exactly, but costs seconds on such text.
bool too_many_values(std::string_view text) {
    std::size_t count = 1;
    bool in_string = false;
    bool escaped = false;
    for (char const c : text) {
        if (in_string) {
            if (escaped) escaped = false;
            else if (c == '\\') escaped = true;
            else if (c == '"') in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if ((c == '[' || c == ',' || c == ':') && ++count > max_json_values) {
            return true;
        }
    }
    return false;
}

}  // namespace

json parse_bounded(std::string_view text) {
    if (too_many_values(text)) throw bad_shape{cat("more than ", max_json_values, " JSON values")};
    return json::parse(text, nullptr, /*allow_exceptions=*/false);
}

}  // namespace nm::gateway
