#pragma once
// Encoding requests for, and decoding answers from, the etcd v3 HTTP/JSON gateway.
// Pure functions over strings: no I/O, so they are unit tested with canned JSON.
//
// Gateway facts this relies on (etcd 3.4): 64-bit integers are JSON strings on output;
// keys and values are base64; zero, false and empty fields are omitted; unary errors are
// {"error","message","code"}; streamed answers are wrapped as {"result":{...}} or
// {"error":{"grpc_code","http_code","message"}}, one per line.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "etcd/etcd_types.hpp"

namespace nm::gateway {

// id: the lease ID asked for (etcd grants it unless it exists), so that the answer can be checked.
std::string encode_grant(std::int64_t ttl_seconds, std::int64_t id);
std::string encode_lease_id(std::int64_t lease);  // body of keepalive and revoke
// Create the key if absent, then read it; otherwise read it: either way the answer shows the key.
std::string encode_campaign(std::string_view key, std::string_view value, std::int64_t lease);
// range_end empty: the one key; otherwise every key in [key, range_end).
std::string encode_watch(std::string_view key, std::string_view range_end, std::int64_t start_revision);
std::string encode_range(std::string_view key, std::string_view range_end);
std::string encode_put(std::string_view key, std::string_view value, std::int64_t lease);  // lease 0: none
std::string encode_delete(std::string_view key, std::string_view range_end);
// POST /v3/auth/authenticate {"name","password"}.
std::string encode_authenticate(std::string_view user, std::string_view password);

// An HTTP answer: status and body. Non-2xx statuses are decoded into an etcd_error
// (gateway_errors.hpp: decode_error).
// An answer that names another lease than the one asked for (id, lease) is malformed.
etcd_result<lease_grant> decode_grant(int http_status, std::string_view body, std::int64_t id);
etcd_result<keepalive_reply> decode_keepalive(int http_status, std::string_view body, std::int64_t lease);
// A win is believed only when the txn's own read shows key holding value under lease,
// created at the txn's revision; a loss must show the holder. Anything else is malformed.
etcd_result<campaign_reply> decode_campaign(int http_status, std::string_view body, std::string_view key,
                                            std::string_view value, std::int64_t lease);
// An answer whose content does not matter (a revoke, a put, a delete): done, or an error.
etcd_result<std::monostate> decode_done(int http_status, std::string_view body);
etcd_result<range_reply> decode_range(int http_status, std::string_view body);
etcd_result<lease_time_left> decode_time_to_live(int http_status, std::string_view body);
// POST /v3/maintenance/status {}: the member's ID and term (required) and its leader's ID.
etcd_result<member_status> decode_status(int http_status, std::string_view body);
// The token of an authenticate answer: a non-empty string of visible ASCII (it is sent
// back as the Authorization header's value).
etcd_result<std::string> decode_authenticate(int http_status, std::string_view body);

// One line of a watch stream (without its newline).
etcd_result<watch_message> decode_watch_line(std::string_view line);
// The same, for a watch of key (range_end empty) or of [key, range_end): a message with an
// event for a key outside it is malformed. Such an event says nothing true of the watched
// keys (a proxy's mix-up of two streams, or a forgery), and a DELETE of another key taken
// for the lock's would have a standby campaign and an active node fence for nothing.
etcd_result<watch_message> decode_watch_line(std::string_view line, std::string_view key,
                                             std::string_view range_end);

}  // namespace nm::gateway
