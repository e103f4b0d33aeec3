#pragma once
// etcd's token for the client's user, as a machine with no I/O (as leader_finder is): when
// to authenticate, which requests wait for a token and until when, what a refusal means,
// and what operators are told. etcd_client does the I/O: it sends the one authentication
// this asks for, keeps a timer for each request that waits, and says what etcd answered.
//
//   a request etcd checks ── admit() ─▶ go, with token() | refused: refusal() | wait()
//   a renewal (keepalive) ── goes at once with token(), whatever it is (none: none)
//   an answer that refuses the token of generation g ── refused(g): it is forgotten; the
//        request waits for a new one (wait()) and is sent once more, within its deadline
//   the client moved to another member ── moved(): a simple token lives in each member's
//        memory with its own expiry there, so a fresh one is asked for at once, in the
//        background; requests meanwhile go with the token there is
//   wait(), expired(), moved(), authenticated() ─▶ steps: an authentication to start, the
//        waiting requests to resume, lines for operators
//
// One authentication at a time: every request that waits joins the one in flight. After
// etcd refuses the password, requests fail at once for refusal_hold instead of each asking
// again: a bound on what a wrong password costs etcd (bcrypt). Since etcd 3.4.42, 3.5.28
// and 3.6.9 keepalives are checked too (GHSA-q8m4-xhhv-38mg): a renewal refused for its
// token is sent again like any request, and never waits for a token before its first send.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/text.hpp"
#include "etcd/etcd_types.hpp"

namespace nm {

class token_keeper {
public:
    using clock = std::chrono::steady_clock;
    using time_point = clock::time_point;
    using waiter_id = std::uint64_t;

    // etcd's two kinds of token (--auth-token): a simple token is valid on a member only
    // while that member's own timer for it runs (--auth-token-ttl since its last use
    // there, and not past a restart); a JWT is valid on every member until it expires.
    enum class kind { none, simple, jwt };
    static kind kind_of(std::string const& token);

    enum class admission { go, wait, refused };

    struct report {
        level lvl;
        std::string text;
        bool problem = false;  // something to fix: told when it first shows, then at most once a minute
    };
    struct resume {
        waiter_id id;
        std::optional<etcd_error> error;  // none: go on, with token()
    };
    struct steps {
        std::optional<time_point> authenticate;  // start the authentication, answered by then
        std::vector<resume> resumed;
        std::vector<report> reports;
        bool problems_over = false;  // a token came: a problem that comes back is told at once
    };

    // user empty: no authentication; every request goes without a token.
    explicit token_keeper(std::string user, std::chrono::nanoseconds refusal_hold = std::chrono::seconds(1));

    bool enabled() const { return !user_.empty(); }
    std::string const& user() const { return user_; }
    // The Authorization value to send now: empty when none is known or needed.
    std::string const& token() const { return token_; }
    // Counts the tokens received: a refusal names the one its request carried.
    std::uint64_t generation() const { return generation_; }
    kind token_kind() const { return kind_of(token_); }
    bool authenticating() const { return flight_.has_value(); }

    // Before a request that etcd checks is first sent.
    admission admit(time_point now) const;
    // Why a request is refused without asking etcd (admission::refused).
    etcd_error const& refusal() const { return refusal_; }

    // A request waits until its deadline for a token.
    steps wait(waiter_id id, time_point deadline, time_point now);
    // Its deadline passed first.
    steps expired(waiter_id id);
    // etcd refused the token of `generation` (why: for the log): the next request gets a
    // new one. A newer token (another request got one meanwhile) is kept and tried.
    void refused(std::uint64_t generation, std::string const& why);
    // Requests now go to another member (why: for the log).
    steps moved(std::string const& why, time_point now);
    // The authentication in flight was answered: a token, or why there is none.
    steps authenticated(etcd_result<std::string> const& answer, time_point now);

private:
    struct waiter {
        waiter_id id;
        time_point deadline;
    };
    struct flight {
        time_point deadline;
        bool refresh;  // asked for after a move, while the token there is still goes out
    };

    std::optional<time_point> start(time_point deadline, bool refresh);
    steps accept(std::string token);
    steps resume_all(std::optional<etcd_error> const& outcome);

    std::string const user_;
    std::chrono::nanoseconds const refusal_hold_;
    std::string token_;              // empty: none yet, refused, or none needed
    std::uint64_t generation_ = 0;
    bool disabled_ = false;          // etcd said it has no authentication: no token needed
    std::optional<flight> flight_;   // the one authentication in flight
    std::vector<waiter> waiters_;    // requests waiting for a token, in the order they came
    std::string dropped_because_;    // why the last token was dropped, for the next line
    std::string moved_because_;      // why a refresh was asked for, for its line
    time_point refused_until_{};     // requests are refused with refusal_ until then
    etcd_error refusal_;
};

}  // namespace nm
