#pragma once
// Facts: what happened, as the driver tells the failover core. Answers carry the
// `request` number of the command that asked; the core ignores answers to requests it no
// longer waits for. Every fact is plain data: the etcd and nodeos layers decode and
// classify, the core decides what it means.
#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "core/clock.hpp"

namespace nm {

// How a request to etcd failed, as far as a decision depends on it. The etcd layer sorts
// its errors into these kinds; what each means for each request is decided in the core.
enum class failure {
    timed_out,        // no complete answer within the time the core allowed
    unavailable,      // no connection, or etcd cannot serve now (no leader, HTTP 503)
    not_found,        // etcd does not know the lease the request names
    exists,           // the lease a grant asks for exists already
    unauthenticated,  // etcd refuses the credentials
    rejected,         // any other refusal (a bad request, a missing permission)
    malformed,        // an answer that cannot be decoded
};
char const* name_of(failure f);

// The lock key as read from etcd, decoded by the etcd layer (etcd/lock_value.hpp).
struct lock_holder {
    std::string node;      // the node name, in a value this project wrote; empty otherwise
    std::string instance;  // the monitor instance that wrote it; empty otherwise
    std::int64_t lease = 0;
    std::string raw;       // the start of the value, to name a holder written by another tool
};

// What operators asked of the group, read from its keys in etcd (etcd/group_keys.hpp):
// maintenance pauses, and a planned switchover.
struct group_control {
    bool group_paused = false;            // <group>/pause: no automatic takeover
    bool node_paused = false;             // <group>/pause/<this node>: never a candidate
    std::string switchover_to;            // <group>/switchover names the node to hand over to
    bool switchover_target_ready = false; // that node's member record says it is a candidate
    bool operator==(group_control const&) const = default;
};

namespace fact {
struct start {};
struct tick {};  // a wakeup the core asked for with next_wakeup()
struct lease_granted { std::uint64_t request; std::int64_t lease; duration ttl; time_point sent; };
// etcd's answer to a keepalive; with no TTL, etcd no longer knows the lease.
struct keepalive_answered { std::uint64_t request; std::optional<duration> ttl; time_point sent; };
// The lock txn: won, or the key's holder as it read it (none: the key vanished meanwhile).
struct campaign_answered { std::uint64_t request; bool won; std::int64_t revision; std::optional<lock_holder> holder; };
struct revoke_answered { std::uint64_t request; };
// A read of the group's keys: the lock's holder (none: the lock is free) and the control keys.
struct group_read { std::uint64_t request; std::int64_t revision; std::optional<lock_holder> holder; group_control control; };
struct request_failed { std::uint64_t request; failure kind; std::string detail; };
struct key_deleted { std::int64_t revision; };
struct key_written { std::int64_t revision; lock_holder holder; };
struct watch_ended { std::string detail; };
// nodeos ended: how (for logs), its exit code (-1 when a signal ended it), and whether its
// output said that its database is dirty (nodeos then exits 2).
struct nodeos_exited { std::string how; int exit_code = -1; bool said_dirty = false; };
struct nodeos_start_failed { std::string detail; };
// nodeos's get_info: its head block, and how far behind the wall clock its time is.
struct health_answered { std::uint64_t request; std::int64_t head_block_num; duration head_lag; };
// A pause or resume, followed by the question: whether nodeos now says it is paused.
struct production_answered { std::uint64_t request; bool paused; };
// The group's control keys changed (or were read): the whole state after the change.
struct control_changed { group_control control; };
// This node's member record was written.
struct published { std::uint64_t request; };
struct stop_requested { std::string signal; };
}  // namespace fact

using fact_t = std::variant<fact::start, fact::tick, fact::lease_granted, fact::keepalive_answered,
                            fact::campaign_answered, fact::revoke_answered, fact::group_read, fact::request_failed,
                            fact::key_deleted, fact::key_written, fact::watch_ended, fact::nodeos_exited,
                            fact::nodeos_start_failed, fact::health_answered, fact::production_answered,
                            fact::control_changed, fact::published, fact::stop_requested>;

}  // namespace nm
