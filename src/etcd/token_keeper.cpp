#include "etcd/token_keeper.hpp"

#include <algorithm>
#include <utility>

#include "etcd/gateway_errors.hpp"

namespace nm {

namespace {
// A refresh after a move is off every request's path: it only has to end.
constexpr auto refresh_timeout = std::chrono::seconds(5);
}  // namespace

// A JWT is three base64url parts joined by dots (RFC 7519); etcd's simple token is 16
// letters, a dot and a number. Anything else is taken for a simple token: a move then
// costs one authentication more, never a refused renewal.
token_keeper::kind token_keeper::kind_of(std::string const& token) {
    if (token.empty()) return kind::none;
    return std::count(token.begin(), token.end(), '.') == 2 ? kind::jwt : kind::simple;
}

token_keeper::token_keeper(std::string user, std::chrono::nanoseconds refusal_hold)
    : user_(std::move(user)), refusal_hold_(refusal_hold) {}

token_keeper::admission token_keeper::admit(time_point now) const {
    if (!enabled() || disabled_ || !token_.empty()) return admission::go;
    if (now < refused_until_) return admission::refused;
    return admission::wait;
}

std::optional<token_keeper::time_point> token_keeper::start(time_point deadline, bool refresh) {
    if (flight_) return std::nullopt;
    flight_ = flight{deadline, refresh};
    return deadline;
}

token_keeper::steps token_keeper::wait(waiter_id id, time_point deadline, time_point) {
    waiters_.push_back(waiter{id, deadline});
    steps out;
    out.authenticate = start(deadline, false);
    return out;
}

token_keeper::steps token_keeper::expired(waiter_id id) {
    steps out;
    auto const before = waiters_.size();
    std::erase_if(waiters_, [&](waiter const& w) { return w.id == id; });
    if (waiters_.size() == before) return out;
    out.resumed.push_back(resume{id, etcd_error{etcd_error::kind::timeout, 0, 0,
                                                cat("no token for etcd user ", user_,
                                                    " in time: the authentication is still under way")}});
    return out;
}

void token_keeper::refused(std::uint64_t generation, std::string const& why) {
    if (generation != generation_) return;
    token_.clear();
    disabled_ = false;
    dropped_because_ = why;
}

token_keeper::steps token_keeper::moved(std::string const& why, time_point now) {
    steps out;
    if (token_kind() != kind::simple || disabled_ || now < refused_until_) return out;
    out.authenticate = start(now + refresh_timeout, true);
    if (out.authenticate) moved_because_ = why;
    return out;
}

token_keeper::steps token_keeper::accept(std::string token) {
    bool const refresh = flight_ && flight_->refresh && !token_.empty();
    token_ = std::move(token);
    ++generation_;
    refused_until_ = {};
    steps out = resume_all(std::nullopt);
    out.problems_over = true;
    if (generation_ == 1) {
        out.reports.push_back({level::info, cat("authenticated to etcd as user ", user_)});
    } else if (refresh) {
        out.reports.push_back({level::info, cat("authenticated to etcd again as user ", user_, ": requests moved to ",
                                                moved_because_, ", where a simple token may not be valid")});
    } else {
        out.reports.push_back({level::info, cat("authenticated to etcd again as user ", user_,
                                                ": the last token was refused (", dropped_because_, ")")});
    }
    return out;
}

token_keeper::steps token_keeper::resume_all(std::optional<etcd_error> const& outcome) {
    steps out;
    for (auto const& w : std::exchange(waiters_, {})) out.resumed.push_back(resume{w.id, outcome});
    return out;
}

token_keeper::steps token_keeper::authenticated(etcd_result<std::string> const& answer, time_point now) {
    if (!flight_) return {};
    auto const flown = *std::exchange(flight_, std::nullopt);
    if (auto const* token = std::get_if<std::string>(&answer)) {
        flight_ = flown;  // accept() reads whether it was a refresh
        auto out = accept(*token);
        flight_.reset();
        return out;
    }
    auto e = std::get<etcd_error>(answer);
    if (gateway::authentication_disabled(e)) {
        disabled_ = true;
        auto out = resume_all(std::nullopt);
        out.reports.push_back({level::warning,
                               cat("etcd has authentication disabled: user ", user_,
                                   " is not used, requests go without a token"),
                               true});
        return out;
    }
    // etcd gives the same answer for an unknown user and a wrong password; any other refusal
    // of an authentication as an invalid argument is the user's or the password's too.
    auto const refusal = gateway::refusal_of(e);
    if (refusal == gateway::refusal::credentials || (refusal == gateway::refusal::none && e.grpc_code == 3)) {
        bool const password = e.message.find("authentication failed") != std::string::npos;
        auto text = cat("etcd refuses user ", user_, ": ",
                        password ? "wrong password (or no such user)" : "authentication failed", " (", e.message, ")");
        refusal_ = etcd_error{etcd_error::kind::refused_credentials, e.http_status, e.grpc_code, text};
        refused_until_ = now + refusal_hold_;
        auto out = resume_all(refusal_);
        out.reports.push_back({level::error, std::move(text), true});
        return out;
    }
    e.message = cat("authenticate as user ", user_, ": ", e.message);
    // An authentication that ran out of the time of the request that started it: the
    // requests that joined it with more time left get one of their own, until the last of
    // their deadlines (so at most once more for each later deadline).
    if (e.what == etcd_error::kind::timeout) {
        auto later = time_point::min();
        for (auto const& w : waiters_) {
            if (w.deadline > flown.deadline) later = std::max(later, w.deadline);
        }
        if (later != time_point::min()) {
            steps out;
            std::erase_if(waiters_, [&](waiter const& w) {
                if (w.deadline > flown.deadline) return false;
                out.resumed.push_back(resume{w.id, e});
                return true;
            });
            out.authenticate = start(later, false);
            return out;
        }
    }
    auto out = resume_all(e);
    if (flown.refresh && out.resumed.empty()) {
        out.reports.push_back({level::debug, cat("etcd: a fresh token after the move failed (", describe(e),
                                                 "); requests go on with the one there is")});
    }
    return out;
}

}  // namespace nm
