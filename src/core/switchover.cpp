#include "core/switchover.hpp"

namespace nm {

// A paused node says so in its candidacy too, once it has seen its pause; the key says it
// at once.
switchover_verdict switchover_readiness(member_standing const& m) {
    if (m.paused || m.candidacy == "node_paused") return switchover_verdict::paused;
    if (m.candidacy != "candidate") return switchover_verdict::not_candidate;
    if (m.state != "standby") return switchover_verdict::not_standby;
    return switchover_verdict::ready;
}

}  // namespace nm
