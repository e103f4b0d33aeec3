#include "etcd/group_keys.hpp"

#include <nlohmann/json.hpp>

#include "core/switchover.hpp"

namespace nm::group_keys {
namespace {

using json = nlohmann::json;

std::string text_of(json const& j, char const* name) {
    auto it = j.find(name);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::optional<std::int64_t> int_of(json const& j, char const* name) {
    auto it = j.find(name);
    if (it == j.end() || !it->is_number_integer()) return std::nullopt;
    return it->get<std::int64_t>();
}

// The values this project writes are under a kilobyte: a longer one is not one of them, and
// is not parsed (megabytes of JSON would cost the loop seconds, at every change of the group).
constexpr std::size_t max_parsed = 64 * 1024;

std::optional<json> object_of(std::string_view value) {
    if (value.size() > max_parsed) return std::nullopt;
    auto j = json::parse(value, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) return std::nullopt;
    return j;
}

template <class T>
json or_null(std::optional<T> const& v) {
    return v ? json(*v) : json(nullptr);
}

}  // namespace

std::string members_prefix(std::string const& group) { return group + "/members/"; }
std::string member_key(std::string const& group, std::string const& node) { return members_prefix(group) + node; }
std::string pause_key(std::string const& group) { return group + "/pause"; }
std::string node_pause_key(std::string const& group, std::string const& node) { return pause_key(group) + "/" + node; }
std::string switchover_key(std::string const& group) { return group + "/switchover"; }
std::string range_end(std::string const& group) { return group + "0"; }  // '0' follows '/'

std::string encode(member_record const& r) {
    return json{{"node", r.node},
                {"instance", r.instance},
                {"version", r.version},
                {"state", r.state},
                {"candidacy", r.candidacy},
                {"standby_mode", r.standby_mode},
                {"health", or_null(r.health)},
                {"head_block_num", or_null(r.head_block_num)},
                {"head_lag_ms", or_null(r.head_lag_ms)},
                {"database_dirty", r.database_dirty},
                {"since", r.since},
                {"updated", r.updated}}
        .dump(-1, ' ', false, json::error_handler_t::replace);
}

std::optional<member_record> decode_member(std::string_view value) {
    auto j = object_of(value);
    if (!j) return std::nullopt;
    member_record r;
    r.node = text_of(*j, "node");
    if (r.node.empty()) return std::nullopt;
    r.instance = text_of(*j, "instance");
    r.version = text_of(*j, "version");
    r.state = text_of(*j, "state");
    r.candidacy = text_of(*j, "candidacy");
    r.standby_mode = text_of(*j, "standby_mode");
    if (auto h = text_of(*j, "health"); !h.empty()) r.health = h;
    r.head_block_num = int_of(*j, "head_block_num");
    r.head_lag_ms = int_of(*j, "head_lag_ms");
    auto dirty = j->find("database_dirty");
    r.database_dirty = dirty != j->end() && dirty->is_boolean() && dirty->get<bool>();
    r.since = text_of(*j, "since");
    r.updated = text_of(*j, "updated");
    return r;
}

std::string encode(operator_note const& n) {
    json j{{"by", n.by}, {"at", n.at}};
    if (!n.to.empty()) j["to"] = n.to;
    if (!n.reason.empty()) j["reason"] = n.reason;
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// A note written by hand (any value) still counts: its presence is what matters.
std::optional<operator_note> decode_note(std::string_view value) {
    operator_note n;
    if (auto j = object_of(value)) {
        n.to = text_of(*j, "to");
        n.by = text_of(*j, "by");
        n.at = text_of(*j, "at");
        n.reason = text_of(*j, "reason");
    } else {
        n.reason = std::string(value.substr(0, 200));
    }
    return n;
}

view::view(std::string group, std::string node) : group_(std::move(group)), node_(std::move(node)) {}

view::kind view::classify(std::string const& key) const {
    if (key == group_) return kind::lock;
    if (!key.starts_with(group_ + "/")) return kind::other;  // another group's, in the same range
    if (key == switchover_key(group_)) return kind::switchover;
    if (key == pause_key(group_)) return kind::group_pause;
    if (!node_of(key).empty()) return key.starts_with(members_prefix(group_)) ? kind::member : kind::node_pause;
    return kind::other;
}

std::string view::node_of(std::string const& key) const {
    for (auto const& prefix : {members_prefix(group_), pause_key(group_) + "/"}) {
        if (key.size() > prefix.size() && key.starts_with(prefix)) {
            auto node = key.substr(prefix.size());
            if (node.find('/') == std::string::npos) return node;
        }
    }
    return {};
}

void view::reset(std::vector<key_value> const& kvs) {
    keys_.clear();
    for (auto const& kv : kvs) {
        if (classify(kv.key) != kind::other) keys_[kv.key] = kv;
    }
}

view::kind view::apply(watch_event const& event) {
    auto k = classify(event.kv.key);
    if (k == kind::other) return k;
    if (event.what == watch_event::type::del) {
        keys_.erase(event.kv.key);
    } else {
        keys_[event.kv.key] = event.kv;
    }
    return k;
}

std::optional<key_value> view::lock() const {
    auto it = keys_.find(group_);
    if (it == keys_.end()) return std::nullopt;
    return it->second;
}

std::map<std::string, member_record> view::members() const {
    std::map<std::string, member_record> out;
    for (auto const& [key, kv] : keys_) {
        if (classify(key) != kind::member) continue;
        if (auto r = decode_member(kv.value); r && r->node == node_of(key)) {
            r->lease = kv.lease;
            out[r->node] = *r;
        }
    }
    return out;
}

std::optional<operator_note> view::group_pause() const {
    auto it = keys_.find(pause_key(group_));
    if (it == keys_.end()) return std::nullopt;
    return decode_note(it->second.value);
}

std::map<std::string, operator_note> view::node_pauses() const {
    std::map<std::string, operator_note> out;
    for (auto const& [key, kv] : keys_) {
        if (classify(key) == kind::node_pause) out[node_of(key)] = *decode_note(kv.value);
    }
    return out;
}

std::optional<operator_note> view::switchover() const {
    auto it = keys_.find(switchover_key(group_));
    if (it == keys_.end()) return std::nullopt;
    auto n = decode_note(it->second.value);
    if (!n || n->to.empty()) return std::nullopt;  // names nobody: nothing to do
    return n;
}

group_control view::control() const {
    group_control c;
    c.group_paused = group_pause().has_value();
    c.node_paused = keys_.contains(node_pause_key(group_, node_));
    if (auto s = switchover()) {
        c.switchover_to = s->to;
        auto members = this->members();
        auto target = members.find(s->to);
        c.switchover_target_ready =
            target != members.end() &&
            switchover_readiness({target->second.state, target->second.candidacy,
                                  keys_.contains(node_pause_key(group_, s->to))}) == switchover_verdict::ready;
    }
    return c;
}

}  // namespace nm::group_keys
