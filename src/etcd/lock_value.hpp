#pragma once
// The lock key's value: who holds the lock, written by the holder, read by everyone.
// {"node":…,"instance":…,"pid":…}, as the original Go monitor's fleet can read it too; a
// value written by another tool decodes to a holder named by the value itself.
#include <string>
#include <sys/types.h>

#include "core/facts.hpp"
#include "etcd/etcd_types.hpp"

namespace nm::lock_value {

std::string encode(std::string const& node, std::string const& instance, pid_t pid);
lock_holder decode(key_value const& kv);

}  // namespace nm::lock_value
