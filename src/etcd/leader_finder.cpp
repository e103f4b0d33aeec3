#include "etcd/leader_finder.hpp"

#include <algorithm>

namespace nm {

namespace {
// Renewals answered off the leader before the questions of a term are asked again.
constexpr int renewals_before_return = 10;
}  // namespace

leader_finder::leader_finder(std::size_t endpoints) : members_(endpoints), asked_(endpoints) {}

void leader_finder::new_round(std::int64_t term) {
    round_term_ = term;
    std::fill(asked_.begin(), asked_.end(), false);
    tried_ = false;
    elsewhere_ = 0;
}

std::optional<leader_finder::step> leader_finder::answered(std::size_t from, answer_origin const& origin,
                                                            std::size_t current) {
    if (members_.size() < 2 || from >= members_.size() || current >= members_.size()) return std::nullopt;
    members_[from] = origin.member_id;
    if (origin.raft_term > round_term_) new_round(origin.raft_term);
    // Off the leader (or none known) for a while: the questions of the term may be asked again.
    if (members_[current] != leader_ && ++elsewhere_ >= renewals_before_return) new_round(round_term_);
    if (asking_) return std::nullopt;
    // A newer term than the leader known: who leads it? The member that answered knows.
    if (term_ < round_term_) return ask_next(from);
    return go_to_leader(current, std::nullopt);
}

std::optional<leader_finder::step> leader_finder::status(std::size_t from, std::optional<member_status> const& answer,
                                                          std::size_t current) {
    asking_ = false;
    if (members_.size() < 2 || from >= members_.size() || current >= members_.size()) return std::nullopt;
    if (answer) {
        members_[from] = answer->self.member_id;
        if (answer->self.raft_term > round_term_) new_round(answer->self.raft_term);
        if (!answer->leader_id.empty() && answer->self.raft_term >= term_) {
            leader_ = answer->leader_id;
            term_ = answer->self.raft_term;
        }
    }
    if (term_ < round_term_) return ask_next(from);
    return go_to_leader(current, answer ? std::optional(from) : std::nullopt);
}

std::optional<leader_finder::step> leader_finder::go_to_leader(std::size_t current,
                                                                std::optional<std::size_t> just_answered) {
    if (leader_.empty()) return std::nullopt;
    if (members_[current] == leader_) return attempted(std::nullopt);  // there already
    auto const at = std::find(members_.begin(), members_.end(), leader_);
    if (at == members_.end()) return ask_next(current, true);  // which endpoint is the leader's?
    auto const e = static_cast<std::size_t>(at - members_.begin());
    if (just_answered == e) return attempted(step{step::kind::move, e});  // reached just now: the move
    if (tried_) return std::nullopt;
    return attempted(ask(e));
}

// The leader is reached, or being tried: nothing more until 10 renewals off it, or a new term.
std::optional<leader_finder::step> leader_finder::attempted(std::optional<step> s) {
    tried_ = true;
    elsewhere_ = 0;
    return s;
}

std::optional<leader_finder::step> leader_finder::ask(std::size_t endpoint) {
    asked_[endpoint] = true;
    asking_ = true;
    return step{step::kind::ask_status, endpoint};
}

// The first endpoint from `first` on (round the list) not yet asked in this round; with
// unknown_only, only one whose member is not known yet.
std::optional<leader_finder::step> leader_finder::ask_next(std::size_t first, bool unknown_only) {
    for (std::size_t i = 0; i < asked_.size(); ++i) {
        auto const e = (first + i) % asked_.size();
        if (!asked_[e] && (!unknown_only || members_[e].empty())) return ask(e);
    }
    return std::nullopt;
}

}  // namespace nm
