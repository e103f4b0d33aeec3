#include "etcd/lock_value.hpp"

#include <nlohmann/json.hpp>

namespace nm::lock_value {
namespace {

constexpr std::size_t raw_length = 120;  // of a foreign value, to name its holder in logs
// Ours is under 200 bytes: a longer value is another tool's, and is not parsed (a value of
// megabytes of JSON would cost the loop seconds and the monitor a hundred megabytes).
constexpr std::size_t max_parsed = 64 * 1024;

std::string string_member(nlohmann::json const& j, char const* name) {
    auto it = j.find(name);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

// A node name that is not UTF-8 (--node-name takes any bytes) is written with U+FFFD in
// place of the bad bytes, as the member record writes it: throwing here would stop the
// monitor at start-up. Ownership is told by the instance and the lease, never by the name.
std::string encode(std::string const& node, std::string const& instance, pid_t pid) {
    return nlohmann::json{{"node", node}, {"instance", instance}, {"pid", pid}}.dump(
        -1, ' ', false, nlohmann::json::error_handler_t::replace);
}

lock_holder decode(key_value const& kv) {
    lock_holder h{{}, {}, kv.lease, kv.value.substr(0, raw_length)};
    if (kv.value.size() > max_parsed) return h;
    auto j = nlohmann::json::parse(kv.value, nullptr, /*allow_exceptions=*/false);
    if (j.is_object()) {
        h.node = string_member(j, "node");
        if (!h.node.empty()) h.instance = string_member(j, "instance");
    }
    return h;
}

}  // namespace nm::lock_value
