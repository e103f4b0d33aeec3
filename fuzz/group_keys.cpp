// A failover group's keys as the read and the watch deliver them: any key in the group's
// range, any value, written by monitors, operators or anything else with access to etcd.
// The view kept from them must agree with a plain map of the same keys.
//
// Input: lines.
//   line 1: the group ("eos" when empty); line 2: this node
//   then one operation a line, <op><key>\t<value> (the value may be absent):
//     'P' a put event, 'D' a delete event, 'K' a key for the next read, 'R' the read
//     (reset() with the keys given since the last one); another byte: by value modulo 4
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "check.hpp"
#include "etcd/group_keys.hpp"

using namespace nm;
using nm::fuzz::require;
namespace gk = nm::group_keys;

namespace {

// The records round-trip: what a monitor writes of itself, the others read back.
void check_member(std::string_view value) {
    auto const r = gk::decode_member(value);
    if (!r) return;
    require(!r->node.empty(), "a member record names its node");
    auto const back = gk::decode_member(gk::encode(*r));
    require(back.has_value(), "an encoded record decodes");
    require(back->node == r->node && back->instance == r->instance && back->version == r->version &&
                back->state == r->state && back->candidacy == r->candidacy && back->standby_mode == r->standby_mode &&
                back->health == r->health && back->head_block_num == r->head_block_num &&
                back->head_lag_ms == r->head_lag_ms && back->database_dirty == r->database_dirty &&
                back->since == r->since && back->updated == r->updated,
            "a member record round-trips");
}

void check_note(std::string_view value) {
    auto const n = gk::decode_note(value);
    require(n.has_value(), "any value is a note: its presence is what counts");
    // Only a JSON object's fields are the note's own; free text is cut to its start.
    auto const j = nlohmann::json::parse(value, nullptr, false);
    if (!j.is_object()) {
        require(n->reason.size() <= 200 && value.starts_with(n->reason), "free text is the note's start, bounded");
        return;
    }
    auto const back = gk::decode_note(gk::encode(*n));
    require(back && back->to == n->to && back->by == n->by && back->at == n->at && back->reason == n->reason,
            "a note round-trips");
}

// The view against the plain map of every key written. Node names with a '/' (or none)
// cannot be told apart in <group>/pause/<node> and <group>/members/<node>: the model
// checks stop at this node's own keys for them.
void check_view(gk::view const& v, std::map<std::string, key_value> const& all, std::string const& group,
                std::string const& node) {
    auto find = [&](std::string const& key) -> key_value const* {
        auto it = all.find(key);
        return it == all.end() ? nullptr : &it->second;
    };
    auto const lock = v.lock();
    auto const* lock_kv = find(group);
    require(lock.has_value() == (lock_kv != nullptr), "the lock is there when its key is");
    if (lock) require(lock->value == lock_kv->value && lock->lease == lock_kv->lease, "the lock is its key's value");

    auto const members = v.members();
    for (auto const& [name, record] : members) {
        auto const* kv = find(gk::member_key(group, name));
        require(kv != nullptr, "a member has its key");
        require(record.node == name && record.lease == kv->lease, "a member is its key's record");
    }
    for (auto const& [key, kv] : all) {
        auto const name = v.node_of(key);
        if (name.empty() || key != gk::member_key(group, name)) continue;
        auto const r = gk::decode_member(kv.value);
        require(members.contains(name) == (r && r->node == name), "every record naming its own key is a member");
    }

    auto const pauses = v.node_pauses();
    for (auto const& [name, note] : pauses) require(find(gk::node_pause_key(group, name)) != nullptr, "a node pause has its key");
    for (auto const& [key, kv] : all) {
        auto const name = v.node_of(key);
        if (!name.empty() && key == gk::node_pause_key(group, name)) require(pauses.contains(name), "every node pause key counts");
    }

    auto const control = v.control();
    require(control.group_paused == (find(gk::pause_key(group)) != nullptr), "the group is paused when its pause key is there");
    if (!node.empty() && node.find('/') == std::string::npos)
        require(control.node_paused == (find(gk::node_pause_key(group, node)) != nullptr), "this node is paused when its key is there");
    auto const switchover = v.switchover();
    auto const* switchover_kv = find(gk::switchover_key(group));
    require(switchover.has_value() == (switchover_kv && !gk::decode_note(switchover_kv->value)->to.empty()),
            "a switchover is there when its key names a node");
    require(control.switchover_to == (switchover ? switchover->to : std::string()), "control names the switchover's target");
    if (control.switchover_target_ready) {
        auto const target = members.find(control.switchover_to);
        require(target != members.end() && target->second.candidate() && target->second.state == "standby" &&
                    !pauses.contains(control.switchover_to),
                "a ready target is a standby candidate member, not paused");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    auto text = nm::fuzz::as_text(data, size);
    auto next_line = [&]() -> std::optional<std::string_view> {
        if (text.empty()) return std::nullopt;
        auto const nl = text.find('\n');
        auto const line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        return line;
    };
    std::string group(next_line().value_or(""));
    if (group.empty()) group = "eos";
    std::string const node(next_line().value_or(""));

    gk::view v(group, node);
    std::map<std::string, key_value> all;  // the model: every key, as a plain map
    std::vector<key_value> read;
    std::int64_t number = 2;
    while (auto line = next_line()) {
        ++number;
        if (line->empty()) continue;
        static constexpr std::string_view ops = "PDKR";
        char op = (*line)[0];
        if (ops.find(op) == std::string_view::npos) op = ops[static_cast<unsigned char>(op) % ops.size()];
        auto const rest = line->substr(1);
        auto const tab = rest.find('\t');
        key_value kv{std::string(rest.substr(0, tab)),
                     tab == std::string_view::npos ? std::string() : std::string(rest.substr(tab + 1)), number, number};
        check_member(kv.value);
        check_note(kv.value);
        switch (op) {
        case 'P': v.apply({watch_event::type::put, kv}); all[kv.key] = kv; break;
        case 'D': v.apply({watch_event::type::del, kv}); all.erase(kv.key); break;
        case 'K': read.push_back(kv); break;
        case 'R':
            v.reset(read);
            all.clear();
            for (auto const& k : read) all[k.key] = k;
            read.clear();
            break;
        }
        // What the monitor asks after every event; the whole comparison (every record
        // decoded again) after each read and at the end keeps the runs fast.
        (void)v.control();
        if (op == 'R') check_view(v, all, group, node);
    }
    check_view(v, all, group, node);
    return 0;
}
