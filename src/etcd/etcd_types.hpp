#pragma once
// What the etcd v3 gateway tells us, as plain values: no JSON, no sockets.
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/facts.hpp"

namespace nm {

// Why a request to etcd did not give an answer we can use.
struct etcd_error {
    enum class kind {
        transport,  // connect, TLS, read or write failed
        timeout,    // no complete answer in the time allowed
        status,     // an HTTP or gRPC error object from the gateway
        malformed,  // an answer we cannot decode
        canceled,   // the client was closed or the watch replaced
        refused_credentials,  // etcd refuses the user and password, or wants a user and has none
        permission_denied,    // the user's roles do not allow this request on its keys
    };
    kind what = kind::transport;
    int http_status = 0;  // 0 when no HTTP answer was read
    int grpc_code = 0;    // gRPC status code from the error object, 0 when absent
    std::string message;
};

std::string describe(etcd_error const& e);

// The kind of failure the core decides on (etcd's "requested lease not found", gRPC
// NotFound, is failure::not_found; refused credentials are failure::unauthenticated, a
// missing permission failure::rejected).
failure kind_of(etcd_error const& e);

template <class T>
using etcd_result = std::variant<T, etcd_error>;

struct lease_grant {
    std::int64_t id = 0;
    std::int64_t ttl_seconds = 0;
    time_point sent{};  // when the request etcd answered left (the client's, on the core's clock)
};

// What is left of a lease (nothing: it is gone).
struct lease_time_left {
    std::optional<std::int64_t> ttl_seconds;
};

// Which member answered, and in which raft term: every answer's header says it.
struct answer_origin {
    std::string member_id;  // decimal, as etcd writes it (a 64-bit unsigned number)
    std::int64_t raft_term = 0;
};

struct keepalive_reply {
    // Absent when etcd no longer knows the lease: the lease is gone.
    std::optional<std::int64_t> ttl_seconds;
    // Absent when the header is missing or unreadable: the renewal counts all the same.
    std::optional<answer_origin> origin;
    // When the keepalive etcd answered left: the lease deadline counts from it. A keepalive
    // refused for its token is sent again; this is the second send's time.
    time_point sent{};
};

// A member's own view (POST /v3/maintenance/status).
struct member_status {
    answer_origin self;
    std::string leader_id;  // empty: the member knows no leader
};

// One key-value as etcd stores it.
struct key_value {
    std::string key;    // decoded from base64
    std::string value;  // decoded from base64
    std::int64_t lease = 0;
    std::int64_t mod_revision = 0;
    std::int64_t create_revision = 0;
};

// Result of the create-if-absent txn: either we created the key, or it already had a holder.
struct campaign_reply {
    bool won = false;
    std::int64_t revision = 0;         // header revision of the txn
    std::optional<key_value> holder;   // the key as it stands when !won
};

// The keys of a range, and the revision they were read at.
struct range_reply {
    std::int64_t revision = 0;
    std::vector<key_value> kvs;
};

struct watch_event {
    enum class type { put, del };
    type what = type::put;
    key_value kv;
};

// One object of a watch stream.
struct watch_message {
    bool created = false;               // the first message: the watch is established
    bool canceled = false;
    std::string cancel_reason;
    std::int64_t compact_revision = 0;  // non-zero: the start revision was compacted
    std::optional<etcd_error> error;    // an error object inside the 200 stream
    std::vector<watch_event> events;

    // The stream cannot go on after this message: open a new watch.
    bool ends_stream() const { return canceled || compact_revision != 0 || error.has_value(); }
};

}  // namespace nm
