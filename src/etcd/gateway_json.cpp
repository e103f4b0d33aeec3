#include "etcd/gateway_json.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <exception>
#include <limits>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/text.hpp"

namespace nm {

std::string describe(etcd_error const& e) {
    auto with_message = [&](std::string head) {
        if (!e.message.empty()) head.append(": ").append(e.message);
        return head;
    };
    switch (e.what) {
    case etcd_error::kind::transport: return with_message("transport error");
    case etcd_error::kind::timeout: return with_message("timed out");
    case etcd_error::kind::malformed: return with_message("malformed answer");
    case etcd_error::kind::canceled: return with_message("canceled");
    // Their message says it all: "etcd refuses user bp: ...", "permission denied for key ...".
    case etcd_error::kind::refused_credentials: return e.message.empty() ? "authentication refused" : e.message;
    case etcd_error::kind::permission_denied: return e.message.empty() ? "permission denied" : e.message;
    case etcd_error::kind::status: break;
    }
    std::string head;
    if (e.http_status != 0) head = cat("HTTP ", e.http_status);
    if (e.grpc_code != 0) head += head.empty() ? cat("grpc ", e.grpc_code) : cat(" (grpc ", e.grpc_code, ")");
    if (head.empty()) head = "etcd error";
    return with_message(std::move(head));
}

failure kind_of(etcd_error const& e) {
    switch (e.what) {
    case etcd_error::kind::timeout: return failure::timed_out;
    case etcd_error::kind::malformed: return failure::malformed;
    case etcd_error::kind::transport:
    case etcd_error::kind::canceled: return failure::unavailable;
    case etcd_error::kind::refused_credentials: return failure::unauthenticated;
    case etcd_error::kind::permission_denied: return failure::rejected;
    case etcd_error::kind::status: break;
    }
    // gRPC codes: 4 deadline exceeded, 5 not found, 9 failed precondition (a grant's ID
    // taken: HTTP 412, "etcdserver: lease already exists"), 14 unavailable, 16 unauthenticated.
    if (e.grpc_code == 5) return failure::not_found;
    if (e.grpc_code == 9 && e.message.find("lease already exists") != std::string::npos) return failure::exists;
    if (e.grpc_code == 16 || e.http_status == 401) return failure::unauthenticated;
    if (e.grpc_code == 4) return failure::timed_out;
    if (e.grpc_code == 14 || e.http_status >= 500) return failure::unavailable;
    return failure::rejected;
}

}  // namespace nm

namespace nm::gateway {
namespace {

using json = nlohmann::json;

// Thrown by the field readers below when an answer does not have the expected shape;
// decode() turns it into etcd_error{malformed}. It never leaves this file.
struct bad_shape {
    std::string why;
};

constexpr std::size_t max_token_length = 4096;  // etcd's simple tokens are about 20 bytes, its JWTs a few hundred

etcd_error malformed(std::string why, std::string_view body) {
    return etcd_error{etcd_error::kind::malformed, 0, 0, cat(why, " in: ", excerpt(body))};
}

// A member of an object, or nullptr when it is absent or null (the gateway omits zero values).
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

json const& empty_object() {
    static json const empty = json::object();
    return empty;
}

// A nested object; an absent one reads as empty, so its fields take their defaults.
json const& object_field(json const& object, char const* name) {
    auto const* value = member(object, name);
    if (!value) return empty_object();
    if (!value->is_object()) throw bad_shape{cat("field '", name, "' is not an object")};
    return *value;
}

json const& empty_array() {
    static json const empty = json::array();
    return empty;
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

// Who answered, from an answer's header; nullopt when it does not say.
std::optional<answer_origin> origin_of(json const& answer) {
    try {
        auto const& header = object_field(answer, "header");
        answer_origin origin{member_id_field(header, "member_id"), int_field(header, "raft_term")};
        if (origin.member_id.empty() || origin.raft_term <= 0) return std::nullopt;
        return origin;
    } catch (bad_shape const&) {
        return std::nullopt;
    }
}

key_value read_kv(json const& object) {
    key_value kv;
    kv.key = bytes_field(object, "key");
    kv.value = bytes_field(object, "value");
    kv.lease = int_field(object, "lease");
    kv.mod_revision = int_field(object, "mod_revision");
    kv.create_revision = int_field(object, "create_revision");
    return kv;
}

// {"grpc_code":14,"http_code":503,"message":...}: an error inside a 200 stream.
etcd_error read_stream_error(json const& object) {
    return etcd_error{etcd_error::kind::status, small_int_field(object, "http_code"),
                      small_int_field(object, "grpc_code"), string_field(object, "message")};
}

// An answer holds at most this many JSON values: etcd's hold tens, a read of a large group
// a few thousand. Within the limits on bytes, text made of the smallest values ({} by the
// hundred thousand) would cost some 40 bytes of memory per byte of text and the loop a
// second per few megabytes: such an answer is malformed, and is not parsed at all.
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

json parse_bounded(std::string_view text) {
    if (too_many_values(text)) throw bad_shape{cat("more than ", max_json_values, " JSON values")};
    return json::parse(text, nullptr, /*allow_exceptions=*/false);
}

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

bool is_success(int http_status) { return http_status >= 200 && http_status <= 299; }

// The streamed RPCs (keepalive) put one object per line: only the first one matters.
std::string_view first_line(std::string_view body) {
    while (!body.empty() && (body.front() == '\n' || body.front() == '\r')) body.remove_prefix(1);
    return body.substr(0, body.find('\n'));
}

}  // namespace

// --- base64 ---------------------------------------------------------------------------

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

// Standard alphabet with padding, as Go's encoding/json writes []byte.
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

// --- encoders -------------------------------------------------------------------------

std::string encode_grant(std::int64_t ttl_seconds, std::int64_t id) {
    return json{{"TTL", std::to_string(ttl_seconds)}, {"ID", std::to_string(id)}}.dump();
}

std::string encode_lease_id(std::int64_t lease) {
    return json{{"ID", std::to_string(lease)}}.dump();
}

std::string encode_campaign(std::string_view key, std::string_view value, std::int64_t lease) {
    auto const k = base64_encode(key);
    // Create the key only if it does not exist (create_revision 0); otherwise read who holds it.
    json compare = {{"key", k}, {"target", "CREATE"}, {"result", "EQUAL"}, {"create_revision", "0"}};
    json put = {{"key", k}, {"value", base64_encode(value)}, {"lease", std::to_string(lease)}};
    json range = {{"key", k}};
    json txn = {
        {"compare", json::array({compare})},
        {"success", json::array({json{{"request_put", put}}, json{{"request_range", range}}})},
        {"failure", json::array({json{{"request_range", range}}})},
    };
    return txn.dump();
}

std::string encode_watch(std::string_view key, std::string_view range_end, std::int64_t start_revision) {
    json create = {
        {"key", base64_encode(key)},
        {"start_revision", std::to_string(start_revision)},
        {"progress_notify", true},
    };
    if (!range_end.empty()) create["range_end"] = base64_encode(range_end);
    return json{{"create_request", create}}.dump();
}

std::string encode_range(std::string_view key, std::string_view range_end) {
    json range = {{"key", base64_encode(key)}};
    if (!range_end.empty()) range["range_end"] = base64_encode(range_end);
    return range.dump();
}

std::string encode_put(std::string_view key, std::string_view value, std::int64_t lease) {
    json put = {{"key", base64_encode(key)}, {"value", base64_encode(value)}};
    if (lease != 0) put["lease"] = std::to_string(lease);
    return put.dump();
}

std::string encode_delete(std::string_view key, std::string_view range_end) {
    return encode_range(key, range_end);  // the same fields
}

std::string encode_authenticate(std::string_view user, std::string_view password) {
    // Bytes that are not UTF-8 become U+FFFD rather than an exception in the loop (the
    // options refuse such a password before anything starts).
    return json{{"name", user}, {"password", password}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

// --- decoders -------------------------------------------------------------------------

etcd_error decode_error(int http_status, std::string_view body) {
    etcd_error e{etcd_error::kind::status, http_status, 0, {}};
    try {
        auto document = parse_bounded(body);
        if (document.is_object()) {
            if (auto const* code = member(document, "code")) e.grpc_code = static_cast<int>(parse_int(*code, "code"));
            e.message = string_field(document, "message");
            if (e.message.empty()) e.message = string_field(document, "error");
            return e;
        }
    } catch (bad_shape const&) {
    } catch (std::exception const&) {
    }
    // Not the gateway's error object (a proxy's page, say): keep its start for the log.
    e.message = excerpt(body);
    return e;
}

etcd_result<lease_grant> decode_grant(int http_status, std::string_view body, std::int64_t id) {
    if (!is_success(http_status)) return decode_error(http_status, body);
    return decode<lease_grant>(body, [&](json const& doc) -> etcd_result<lease_grant> {
        if (auto error = string_field(doc, "error"); !error.empty())
            return etcd_error{etcd_error::kind::status, http_status, 0, error};
        lease_grant g{int_field(doc, "ID"), int_field(doc, "TTL")};
        if (g.id == 0 || g.ttl_seconds <= 0) return malformed("grant without ID or TTL", body);
        if (g.id != id) return malformed(cat("grant of lease ", g.id, ", not of lease ", id, " as asked"), body);
        return g;
    });
}

etcd_result<keepalive_reply> decode_keepalive(int http_status, std::string_view body, std::int64_t lease) {
    if (!is_success(http_status)) return decode_error(http_status, body);
    auto const line = first_line(body);
    return decode<keepalive_reply>(line, [&](json const& doc) -> etcd_result<keepalive_reply> {
        if (auto const* error = member(doc, "error")) return read_stream_error(expect_object(*error, "error"));
        auto const* result = member(doc, "result");
        if (!result) return malformed("keepalive answer without result", line);
        auto const& r = expect_object(*result, "result");
        // Even for a lease that is gone, etcd names the lease it answers for.
        if (auto id = int_field(r, "ID"); id != lease)
            return malformed(cat("keepalive answer for lease ", id, ", not for lease ", lease), line);
        // etcd answers a lease it no longer knows with no TTL: the lease is gone.
        auto ttl = int_field(r, "TTL");
        return keepalive_reply{ttl > 0 ? std::optional(ttl) : std::nullopt, origin_of(r)};
    });
}

etcd_result<campaign_reply> decode_campaign(int http_status, std::string_view body, std::string_view key,
                                            std::string_view value, std::int64_t lease) {
    if (!is_success(http_status)) return decode_error(http_status, body);
    return decode<campaign_reply>(body, [&](json const& doc) -> etcd_result<campaign_reply> {
        campaign_reply reply;
        reply.won = bool_field(doc, "succeeded");  // omitted when false
        reply.revision = int_field(object_field(doc, "header"), "revision");
        if (reply.revision <= 0) return malformed("txn answer without a revision", body);
        // Both branches end with a read of the key: [put, range] when won, [range] when lost.
        auto const& responses = array_field(doc, "responses");
        if (responses.size() != (reply.won ? 2u : 1u)) return malformed("txn answer without its read of the key", body);
        auto const& range = object_field(expect_object(responses.back(), "responses[]"), "response_range");
        auto const& kvs = array_field(range, "kvs");
        // The txn is atomic: whichever branch ran, the key exists when it reads it.
        if (kvs.empty()) return malformed("txn answer whose read finds no key", body);
        auto kv = read_kv(expect_object(kvs.front(), "kvs[0]"));
        if (kv.key != key) return malformed("txn answer that reads another key", body);
        if (!reply.won) {
            reply.holder = std::move(kv);
            return reply;
        }
        if (kv.value != value || kv.lease != lease || kv.create_revision != reply.revision)
            return malformed("txn answer says succeeded, but its read shows the key not created by it", body);
        return reply;
    });
}

etcd_result<std::monostate> decode_revoke(int http_status, std::string_view body) {
    if (!is_success(http_status)) return decode_error(http_status, body);
    return decode<std::monostate>(body, [](json const&) -> etcd_result<std::monostate> { return std::monostate{}; });
}

etcd_result<range_reply> decode_range(int http_status, std::string_view body) {
    if (!is_success(http_status)) return decode_error(http_status, body);
    return decode<range_reply>(body, [&](json const& doc) -> etcd_result<range_reply> {
        range_reply reply;
        reply.revision = int_field(object_field(doc, "header"), "revision");
        if (reply.revision <= 0) return malformed("range answer without a revision", body);
        for (auto const& item : array_field(doc, "kvs")) reply.kvs.push_back(read_kv(expect_object(item, "kvs[]")));
        return reply;
    });
}

etcd_result<lease_time_left> decode_time_to_live(int http_status, std::string_view body) {
    if (!is_success(http_status)) return decode_error(http_status, body);
    return decode<lease_time_left>(body, [&](json const& doc) -> etcd_result<lease_time_left> {
        auto ttl = int_field(doc, "TTL");  // -1 for a lease that is gone
        if (ttl < 0) return lease_time_left{};
        return lease_time_left{ttl};
    });
}

etcd_result<member_status> decode_status(int http_status, std::string_view body) {
    if (!is_success(http_status)) return decode_error(http_status, body);
    return decode<member_status>(body, [&](json const& doc) -> etcd_result<member_status> {
        auto self = origin_of(doc);
        if (!self) return malformed("status answer without the member's ID and term", body);
        return member_status{std::move(*self), member_id_field(doc, "leader")};
    });
}

etcd_result<std::string> decode_authenticate(int http_status, std::string_view body) {
    if (!is_success(http_status)) return decode_error(http_status, body);
    return decode<std::string>(body, [&](json const& doc) -> etcd_result<std::string> {
        auto token = string_field(doc, "token");
        if (token.empty()) return malformed("authenticate answer without a token", body);
        // The token goes back as a header value: anything but visible ASCII could end the
        // header or add another.
        bool const visible = std::all_of(token.begin(), token.end(), [](char c) { return c > ' ' && c < 127; });
        // The answer is not quoted in the error: it holds a credential.
        if (!visible || token.size() > max_token_length)
            return etcd_error{etcd_error::kind::malformed, 0, 0,
                              cat("authenticate answer with an unusable token (", token.size(), " bytes)")};
        return token;
    });
}

namespace {

bool mentions(etcd_error const& e, std::string_view text) { return e.message.find(text) != std::string::npos; }

}  // namespace

bool token_refused(etcd_error const& e) {
    if (e.what != etcd_error::kind::status) return false;
    return e.grpc_code == 16 || e.http_status == 401 || mentions(e, "invalid auth token") ||
           mentions(e, "code = Unauthenticated") || mentions(e, "revision of auth store is old") ||
           mentions(e, "user name is empty");
}

bool permission_refused(etcd_error const& e) {
    if (e.what != etcd_error::kind::status) return false;
    return e.grpc_code == 7 || e.http_status == 403 || mentions(e, "permission denied") ||
           mentions(e, "code = PermissionDenied");
}

bool credentials_refused(etcd_error const& e) {
    // etcd gives the same answer for an unknown user and a wrong password.
    return e.what == etcd_error::kind::status && (mentions(e, "authentication failed") || e.grpc_code == 3);
}

bool authentication_disabled(etcd_error const& e) {
    return e.what == etcd_error::kind::status && mentions(e, "authentication is not enabled");
}

etcd_result<watch_message> decode_watch_line(std::string_view line) {
    return decode<watch_message>(line, [&](json const& doc) -> etcd_result<watch_message> {
        watch_message m;
        if (auto const* error = member(doc, "error")) {
            m.error = read_stream_error(expect_object(*error, "error"));
            return m;
        }
        auto const* result = member(doc, "result");
        if (!result) return malformed("watch message without result", line);
        auto const& r = expect_object(*result, "result");
        m.created = bool_field(r, "created");
        m.canceled = bool_field(r, "canceled");
        m.cancel_reason = string_field(r, "cancel_reason");
        m.compact_revision = int_field(r, "compact_revision");
        for (auto const& item : array_field(r, "events")) {
            auto const& event = expect_object(item, "event");
            watch_event e;
            // PUT is the zero value and so is omitted; enums may also come as numbers.
            if (auto const* type = member(event, "type")) {
                if (*type == "DELETE" || *type == 1) e.what = watch_event::type::del;
                else if (*type != "PUT" && *type != 0) throw bad_shape{"unknown event type"};
            }
            e.kv = read_kv(object_field(event, "kv"));
            m.events.push_back(std::move(e));
        }
        return m;
    });
}

etcd_result<watch_message> decode_watch_line(std::string_view line, std::string_view key,
                                             std::string_view range_end) {
    auto r = decode_watch_line(line);
    if (auto const* m = std::get_if<watch_message>(&r)) {
        for (auto const& event : m->events) {
            auto const& k = event.kv.key;
            bool const watched = range_end.empty() ? k == key : k >= key && k < range_end;
            if (!watched) return malformed("watch event for another key", line);
        }
    }
    return r;
}

// --- line_splitter --------------------------------------------------------------------

bool line_splitter::feed(std::string_view bytes) {
    // Drop what next() has already returned, so the buffer holds only unread bytes.
    if (start_ > 0) {
        buffer_.erase(0, start_);
        pending_ -= start_;
        start_ = 0;
    }
    auto const old_size = buffer_.size();
    buffer_.append(bytes);
    // Only the new bytes can end lines; check the length of every line they complete.
    bool fits = true;
    for (auto nl = buffer_.find('\n', old_size); nl != std::string::npos; nl = buffer_.find('\n', nl + 1)) {
        if (nl - pending_ > max_line_) fits = false;
        pending_ = nl + 1;
    }
    return fits && buffer_.size() - pending_ <= max_line_;
}

bool line_splitter::next(std::string& line) {
    while (start_ < pending_) {
        auto const nl = buffer_.find('\n', start_);  // exists: pending_ follows a '\n'
        auto end = nl;
        if (end > start_ && buffer_[end - 1] == '\r') --end;
        bool const empty = end == start_;
        if (!empty) line.assign(buffer_, start_, end - start_);
        start_ = nl + 1;
        if (!empty) return true;
    }
    return false;
}

}  // namespace nm::gateway
