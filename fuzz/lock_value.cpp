// The lock key's value, read by every monitor of the group: written by a monitor of this
// project, by the original Go monitor, or by anything else that can write to etcd.
//
// Input: the value. It is also split at its first NUL into a node and an instance name, which
// encode() writes and decode() must read back.
#include <string>

#include <nlohmann/json.hpp>

#include "check.hpp"
#include "etcd/lock_value.hpp"

using namespace nm;
using nm::fuzz::require;

namespace {

bool utf8(std::string const& text) {
    try {
        (void)nlohmann::json(text).dump();
        return true;
    } catch (nlohmann::json::type_error const&) {
        return false;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    auto const value = nm::fuzz::as_text(data, size);
    key_value kv{"eos", std::string(value), 7587869151224577546, 42};
    auto const h = lock_value::decode(kv);
    require(h.lease == kv.lease, "the holder's lease is the key's");
    require(h.raw.size() <= 120 && value.starts_with(h.raw), "the raw value is the value's start, bounded");
    require(!h.node.empty() || h.instance.empty(), "an instance only with a node");

    auto const nul = value.find('\0');
    std::string const node(value.substr(0, nul));
    std::string const instance(nul == std::string_view::npos ? std::string_view() : value.substr(nul + 1));
    auto const mine = lock_value::decode({"eos", lock_value::encode(node, instance, 4242), 1, 1});
    // Names that are UTF-8 come back as written; others with U+FFFD for their bad bytes.
    if (utf8(node)) require(mine.node == node, "the node written is the node read");
    else require(!mine.node.empty(), "a node that is not UTF-8 is still named");
    if (!node.empty() && utf8(instance)) require(mine.instance == instance, "the instance written is the instance read");
    return 0;
}
