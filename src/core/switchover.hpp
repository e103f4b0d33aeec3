#pragma once
// Whether a member may be handed the lock by a planned switchover: one rule, for the
// monitor that hands over (its view of the group's keys tells the core whether the target
// is ready, row O1) and for the operator's command that asks (`nodeos-monitor switchover`).
#include <string>

namespace nm {

// What a member's record and the group's keys say of it.
struct member_standing {
    std::string state;      // its role, as its record names it ("standby", "active", ...)
    std::string candidacy;  // "candidate", or why not
    bool paused = false;    // an operator paused it (<group>/pause/<node>)
};

enum class switchover_verdict {
    ready,          // a standby that is a candidate and not paused
    not_candidate,  // its nodeos is not healthy, its database dirty, it is held off, ...
    not_standby,    // it is starting, stopping, or the producer itself
    paused,         // an operator paused it
};

switchover_verdict switchover_readiness(member_standing const& m);

}  // namespace nm
