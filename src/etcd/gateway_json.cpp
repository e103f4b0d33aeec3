#include "etcd/gateway_json.hpp"

#include <algorithm>
#include <utility>

#include "core/text.hpp"
#include "etcd/base64.hpp"
#include "etcd/gateway_errors.hpp"
#include "etcd/json_fields.hpp"

namespace nm::gateway {
namespace {

constexpr std::size_t max_token_length = 4096;  // etcd's simple tokens are about 20 bytes, its JWTs a few hundred

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

bool is_success(int http_status) { return http_status >= 200 && http_status <= 299; }

// The streamed RPCs (keepalive) put one object per line: only the first one matters.
std::string_view first_line(std::string_view body) {
    while (!body.empty() && (body.front() == '\n' || body.front() == '\r')) body.remove_prefix(1);
    return body.substr(0, body.find('\n'));
}

}  // namespace

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
        if (auto const* error = member(doc, "error")) return error_object(expect_object(*error, "error"), http_status);
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

etcd_result<std::monostate> decode_done(int http_status, std::string_view body) {
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

etcd_result<watch_message> decode_watch_line(std::string_view line) {
    return decode<watch_message>(line, [&](json const& doc) -> etcd_result<watch_message> {
        watch_message m;
        if (auto const* error = member(doc, "error")) {
            m.error = error_object(expect_object(*error, "error"), 0);
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

}  // namespace nm::gateway
