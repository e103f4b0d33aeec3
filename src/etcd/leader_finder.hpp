#pragma once
// Which of the configured endpoints is etcd's leader, from what etcd's answers say.
//
// A keepalive sent to a follower costs etcd about half as much again as one sent to the
// leader: the follower passes each renewal on to the leader over its peer connection
// (docs/measurements.md, "Where the requests go"). Every keepalive answer names the member that answered and
// its raft term; a status answer (POST /v3/maintenance/status) also names the leader. From
// them the finder tells the client to ask a member for its status, or to send its requests
// to the leader's endpoint.
//
// It only ever moves the client between the endpoints it was given; a failed request still
// moves the client on to the next one, and what the monitor decides never depends on where
// requests go. It moves the client only to an endpoint that has just answered a status
// question: a renewal that hangs costs the producer a fence (it waits up to TTL/3), so a
// leader the client cannot reach (its link to it cut) must cost a status question, off every
// deadline's path, never a renewal. Bounded: per raft term, and again after every 10
// renewals answered off the leader, one question to each endpoint (to learn who leads, and
// which endpoint is whose) and one to the leader's endpoint before the move. So a leader the
// client cannot reach costs it one status question in 10 renewals. Pure: no I/O.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "etcd/etcd_types.hpp"

namespace nm {

class leader_finder {
public:
    struct step {
        enum class kind { ask_status, move } what;
        std::size_t endpoint;
        bool operator==(step const&) const = default;
    };

    explicit leader_finder(std::size_t endpoints);

    // A renewal answered by endpoint `from`; `current` is where requests now go.
    std::optional<step> answered(std::size_t from, answer_origin const& origin, std::size_t current);
    // The status question to `from` answered (nullopt: it failed or was unreadable).
    std::optional<step> status(std::size_t from, std::optional<member_status> const& answer, std::size_t current);

    // The leader's member ID as last learned (empty: none known), and its term.
    std::string const& leader() const { return leader_; }
    std::int64_t term() const { return term_; }

private:
    std::optional<step> go_to_leader(std::size_t current, std::optional<std::size_t> just_answered);
    std::optional<step> ask_next(std::size_t first, bool unknown_only = false);
    std::optional<step> ask(std::size_t endpoint);
    std::optional<step> attempted(std::optional<step> s);
    void new_round(std::int64_t term);

    std::vector<std::string> members_;  // the member ID behind each endpoint, empty while unknown
    std::string leader_;
    std::int64_t term_ = 0;        // the term leader_ leads in
    std::int64_t round_term_ = 0;  // the newest term seen: questions and the move are counted for it
    std::vector<bool> asked_;      // endpoints asked for their status in round_term_
    bool tried_ = false;           // the leader's endpoint asked (or the client is there): no more for now
    int elsewhere_ = 0;            // renewals answered off the leader since
    bool asking_ = false;          // a status question is under way
};

}  // namespace nm
