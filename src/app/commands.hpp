#pragma once
// The operator commands, run once from the same binary, config file and etcd flags as the
// daemon; everything goes through the group's keys in etcd (etcd/group_keys.hpp):
//
//   status [--json]                      every member, who produces, pauses, a switchover;
//                                        exit 1 when no member produces
//   switchover [--to NODE] [--wait S]    hand production to a ready node, and wait for it
//   pause [--node NODE] [--reason TEXT]  no automatic takeover (the group), or never a
//                                        candidate (one node); the producer produces on
//   resume [--node NODE]
//
// A refusal says why in one line on stderr and exits 1; bad flags exit 2.
#include "app/options.hpp"

namespace nm {

int run_command(command_line const& cl);

}  // namespace nm
