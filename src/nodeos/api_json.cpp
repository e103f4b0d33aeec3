#include "nodeos/api_json.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/text.hpp"

namespace nm {

failure kind_of(api_error const& e) {
    switch (e.what) {
    case api_error::kind::unavailable: return failure::unavailable;
    case api_error::kind::timed_out: return failure::timed_out;
    case api_error::kind::status: return failure::rejected;
    case api_error::kind::malformed: return failure::malformed;
    }
    return failure::malformed;
}

std::string describe(api_error const& e) {
    std::string head;
    switch (e.what) {
    case api_error::kind::unavailable: head = "unavailable"; break;
    case api_error::kind::timed_out: head = "timed out"; break;
    case api_error::kind::status: head = cat("HTTP ", e.http_status); break;
    case api_error::kind::malformed: head = "malformed answer"; break;
    }
    if (!e.message.empty()) head.append(": ").append(e.message);
    return head;
}

}  // namespace nm

namespace nm::api_json {
namespace {

using json = nlohmann::json;

// Thrown by the field readers below when an answer does not have the expected shape;
// the decoders turn it into api_error{malformed}. It never leaves this file.
struct bad_shape {
    std::string why;
};

constexpr std::size_t max_error_details = 3;

api_error malformed(int http_status, std::string const& why, std::string_view body) {
    return api_error{api_error::kind::malformed, http_status, cat(why, " in: ", excerpt(body))};
}

// The body as JSON; nullopt when it is not JSON at all.
std::optional<json> parse(std::string_view body) {
    auto value = json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (value.is_discarded()) return std::nullopt;
    return value;
}

json const* member(json const& object, char const* name) {
    auto it = object.find(name);
    if (it == object.end() || it->is_null()) return nullptr;
    return &*it;
}

json const& required(json const& object, char const* name) {
    auto const* value = member(object, name);
    if (!value) throw bad_shape{cat("field '", name, "' is missing")};
    return *value;
}

// A block number: a JSON integer, or a string of digits (fc writes integers above 2^32 as
// strings). Negative, fractional or beyond 64 bits: malformed.
std::int64_t count_field(json const& object, char const* name) {
    auto const& value = required(object, name);
    if (value.is_number_unsigned()) {
        if (value.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
            throw bad_shape{cat("field '", name, "' is out of range")};
        return value.get<std::int64_t>();
    }
    if (value.is_number_integer()) throw bad_shape{cat("field '", name, "' is negative")};
    if (value.is_string()) {
        auto const& text = value.get_ref<std::string const&>();
        bool const digits = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
        std::int64_t out = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
        if (digits && ec == std::errc() && end == text.data() + text.size()) return out;
        if (digits) throw bad_shape{cat("field '", name, "' is out of range")};
    }
    throw bad_shape{cat("field '", name, "' is not a whole number")};
}

std::string string_field(json const& object, char const* name, bool must_exist) {
    auto const* value = member(object, name);
    if (!value) {
        if (must_exist) throw bad_shape{cat("field '", name, "' is missing")};
        return {};
    }
    if (!value->is_string()) throw bad_shape{cat("field '", name, "' is not a string")};
    return value->get<std::string>();
}

// Digits at text[at, at + n) as a number; nullopt if any is not a digit.
std::optional<int> digits(std::string_view text, std::size_t at, std::size_t n) {
    if (at + n > text.size()) return std::nullopt;
    int out = 0;
    for (std::size_t i = at; i < at + n; ++i) {
        if (text[i] < '0' || text[i] > '9') return std::nullopt;
        out = out * 10 + (text[i] - '0');
    }
    return out;
}

}  // namespace

std::optional<std::int64_t> parse_block_time(std::string_view text) {
    // 0123456789012345678
    // YYYY-MM-DDTHH:MM:SS
    if (text.size() < 19 || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' || text[16] != ':')
        return std::nullopt;
    auto const year = digits(text, 0, 4), month = digits(text, 5, 2), day = digits(text, 8, 2);
    auto const hour = digits(text, 11, 2), minute = digits(text, 14, 2), second = digits(text, 17, 2);
    if (!year || !month || !day || !hour || !minute || !second) return std::nullopt;
    if (*year < 1970 || *hour > 23 || *minute > 59 || *second > 59) return std::nullopt;
    std::chrono::year_month_day const date{std::chrono::year(*year), std::chrono::month(static_cast<unsigned>(*month)),
                                           std::chrono::day(static_cast<unsigned>(*day))};
    if (!date.ok()) return std::nullopt;

    int millis = 0;
    auto rest = text.substr(19);
    if (rest.starts_with('.')) {
        std::size_t n = 1;
        while (n < rest.size() && rest[n] >= '0' && rest[n] <= '9') ++n;
        auto const fraction_digits = n - 1;
        if (fraction_digits == 0 || fraction_digits > 9) return std::nullopt;
        for (std::size_t i = 1; i <= 3; ++i) millis = millis * 10 + (i < n ? rest[i] - '0' : 0);
        rest.remove_prefix(n);
    }
    if (rest == "Z") rest = {};
    if (!rest.empty()) return std::nullopt;

    auto const days = std::chrono::sys_days(date).time_since_epoch().count();
    return ((static_cast<std::int64_t>(days) * 24 + *hour) * 60 + *minute) * 60'000 + *second * 1000 + millis;
}

api_error decode_error(int http_status, std::string_view body) {
    api_error e{api_error::kind::status, http_status, {}};
    auto const value = parse(body);
    if (!value || !value->is_object()) {
        e.message = excerpt(body);
        return e;
    }
    // nodeos's message, then what the error object adds: its `what` when it says more than
    // "unspecified", and the messages of its first details.
    std::vector<std::string> parts;
    auto add = [&](json const* text) {
        if (!text || !text->is_string()) return;
        auto part = excerpt(text->get_ref<std::string const&>());
        if (!part.empty() && std::find(parts.begin(), parts.end(), part) == parts.end()) parts.push_back(std::move(part));
    };
    add(member(*value, "message"));
    if (auto const* error = member(*value, "error"); error && error->is_object()) {
        if (auto const* what = member(*error, "what"); what && what->is_string() && what->get_ref<std::string const&>() != "unspecified")
            add(what);
        if (auto const* details = member(*error, "details"); details && details->is_array()) {
            std::size_t taken = 0;
            for (auto const& detail : *details) {
                if (taken++ == max_error_details) break;
                if (detail.is_object()) add(member(detail, "message"));
            }
        }
    }
    if (parts.empty()) {
        e.message = excerpt(body);
        return e;
    }
    for (auto const& part : parts) e.message += e.message.empty() ? part : cat(": ", part);
    return e;
}

api_result<chain_info> decode_get_info(int http_status, std::string_view body) {
    if (http_status != 200) return decode_error(http_status, body);
    auto const value = parse(body);
    if (!value) return malformed(http_status, "get_info answer is not JSON", body);
    if (!value->is_object()) return malformed(http_status, "get_info answer is not an object", body);
    try {
        chain_info info;
        info.head_block_num = count_field(*value, "head_block_num");
        info.last_irreversible_block_num = count_field(*value, "last_irreversible_block_num");
        auto const time = string_field(*value, "head_block_time", true);
        auto const ms = parse_block_time(time);
        if (!ms) throw bad_shape{cat("field 'head_block_time' is not a time: '", excerpt(time), "'")};
        info.head_block_time_ms = *ms;
        info.chain_id = string_field(*value, "chain_id", true);
        info.server_version = string_field(*value, "server_version_string", false);
        info.head_block_producer = string_field(*value, "head_block_producer", false);
        return info;
    } catch (bad_shape const& e) {
        return malformed(http_status, e.why, body);
    }
}

api_result<std::monostate> decode_pause_resume(int http_status, std::string_view body) {
    if (http_status != 201) return decode_error(http_status, body);
    auto const value = parse(body);
    if (!value) return malformed(http_status, "answer is not JSON", body);
    if (!value->is_object()) return malformed(http_status, "answer is not an object", body);
    auto const* result = member(*value, "result");
    if (!result || !result->is_string() || result->get_ref<std::string const&>() != "ok")
        return malformed(http_status, "answer is not {\"result\":\"ok\"}", body);
    return std::monostate{};
}

api_result<bool> decode_paused(int http_status, std::string_view body) {
    if (http_status != 201) return decode_error(http_status, body);
    auto const value = parse(body);
    if (!value || !value->is_boolean()) return malformed(http_status, "answer is not true or false", body);
    return value->get<bool>();
}

}  // namespace nm::api_json
