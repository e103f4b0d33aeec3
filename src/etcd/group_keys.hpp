#pragma once
// A failover group's keys in etcd, beside its lock:
//
//   <group>                   the lock: exactly the group's name, as the original Go monitor
//                             has it (its watch is on that exact key, so nothing below
//                             disturbs a fleet still running it)
//   <group>/members/<node>    each monitor's record of itself, bound to its lease
//   <group>/pause             the group paused by an operator: no automatic takeover
//   <group>/pause/<node>      one node paused: never a candidate
//   <group>/switchover        a planned switchover, bound to the lease of the command
//
// One read and one watch of [<group>, <group>0) cover them all (with, in between, the keys
// of groups named "<group>-…" or "<group>.…", which are ignored).
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/facts.hpp"
#include "etcd/etcd_types.hpp"

namespace nm::group_keys {

std::string member_key(std::string const& group, std::string const& node);
std::string members_prefix(std::string const& group);
std::string pause_key(std::string const& group);
std::string node_pause_key(std::string const& group, std::string const& node);
std::string switchover_key(std::string const& group);
std::string range_end(std::string const& group);  // of the read and watch of the whole group

// What a monitor says of itself, for `nodeos-monitor status` and the other members.
struct member_record {
    std::string node;
    std::string instance;
    std::string version;
    std::string state;           // starting, standby, active, stopping
    std::string candidacy;       // "candidate", or why not
    std::string standby_mode;    // restart, paused
    std::optional<std::string> health;  // with a nodeos API
    std::optional<std::int64_t> head_block_num;
    std::optional<std::int64_t> head_lag_ms;
    bool database_dirty = false;
    std::string since;           // ISO 8601 UTC: the latest change of state
    std::string updated;         // ISO 8601 UTC: when this record was written
    std::int64_t lease = 0;      // from etcd, not from the value

    bool candidate() const { return candidacy == "candidate"; }
};
std::string encode(member_record const& r);
std::optional<member_record> decode_member(std::string_view value);

// Who asked for a pause or a switchover, and when.
struct operator_note {
    std::string to;      // switchover: the node to hand over to
    std::string by;      // user@host
    std::string at;      // ISO 8601 UTC
    std::string reason;  // free text, may be empty
};
std::string encode(operator_note const& n);
std::optional<operator_note> decode_note(std::string_view value);

// What one monitor knows of its group's keys: kept from a read and the watch's events.
class view {
public:
    view(std::string group, std::string node);

    enum class kind { lock, member, group_pause, node_pause, switchover, other };
    kind classify(std::string const& key) const;

    // Replaces everything with what a read of the group returned.
    void reset(std::vector<key_value> const& kvs);
    // One event of the watch; returns the kind of key it changed.
    kind apply(watch_event const& event);

    std::optional<key_value> lock() const;
    std::map<std::string, member_record> members() const;  // by node name
    // The node a key under <group>/pause/ or <group>/members/ names ("" otherwise).
    std::string node_of(std::string const& key) const;
    // What the failover core needs of all this.
    group_control control() const;
    std::optional<operator_note> group_pause() const;
    std::map<std::string, operator_note> node_pauses() const;
    std::optional<operator_note> switchover() const;

private:
    std::string group_;
    std::string node_;
    std::map<std::string, key_value> keys_;  // the group's keys, by key
};

}  // namespace nm::group_keys
