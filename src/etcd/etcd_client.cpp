// The gateway client: etcd's requests and answers over net/http_client.
//
//   grant/campaign/range/put/erase/revoke ─▶ request() ─▶ with_token() ─▶ send()
//   keepalive ─▶ request() ─▶ send() at once, with the token there is
//        send() ─▶ http_client::request (POST, JSON, Authorization: the token)
//        answered(): decode; a refused token: token_keeper::refused(), with_token() and
//                    send() once more within the request's deadline; an endpoint that
//                    cannot serve: move_on(); call the caller's handler (unless closed)
//        a keepalive's answer header (member, term) ─▶ leader_finder ─▶ a status question
//                    to a member (POST /v3/maintenance/status), or move_to() the leader
//   watch ─▶ with_token() ─▶ http_client::open_stream (POST /v3/watch): the chunked body
//            ─▶ on_watch_data ─▶ line_splitter ─▶ decode_watch_line ─▶ on_message; its end ─▶ on_end
//   with_token(): token_keeper::admit(): the token, a refusal, or a wait, bounded by the
//            caller's deadline, for the one authentication in flight (POST /v3/auth/authenticate)
//   move_on() / move_to(): the one place requests change member; token_keeper::moved()
//            then asks for a fresh simple token in the background
//
// Without a user, the keeper says go at once and no request is sent twice.
// The HTTP client calls nothing after close(); handlers hold the impl only weakly, and
// keep it alive while they run, so that an owner may destroy the client from a handler.
#include "etcd/etcd_client.hpp"

#include <algorithm>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/text.hpp"
#include "etcd/gateway_errors.hpp"
#include "etcd/gateway_json.hpp"
#include "etcd/leader_finder.hpp"
#include "etcd/line_splitter.hpp"
#include "etcd/token_keeper.hpp"

namespace nm {
namespace {

using net::http_answer;
using net::http_failure;
using net::http_result;
using net::http_verb;
using net::stream_end;
using net::stream_handlers;
using net::stream_request;
using steady = std::chrono::steady_clock;

constexpr std::size_t max_answer_body = 1024 * 1024;      // unary answers are a few hundred bytes
constexpr std::size_t max_error_body = 64 * 1024;         // body of a refused watch
constexpr std::size_t max_watch_line = 4 * 1024 * 1024;   // one watch message
// Connect, handshake and the answer's header; and, before that, the wait for a token.
constexpr auto watch_open_timeout = std::chrono::seconds(5);
constexpr auto report_repeat = std::chrono::minutes(1);  // a lasting problem is told again this often
constexpr std::size_t max_remembered_reports = 64;
constexpr auto longest_timeout = std::chrono::hours(24);  // keeps now() + timeout from overflowing
// A question for a member's status: off every deadline's path, so only bounded.
constexpr auto status_timeout = std::chrono::seconds(2);

etcd_error to_error(http_failure const& f) {
    switch (f.what) {
    case http_failure::kind::timeout: return etcd_error{etcd_error::kind::timeout, 0, 0, f.message};
    case http_failure::kind::too_large: return etcd_error{etcd_error::kind::malformed, 0, 0, f.message};
    case http_failure::kind::canceled: return etcd_error{etcd_error::kind::canceled, 0, 0, f.message};
    case http_failure::kind::transport: break;
    }
    return etcd_error{etcd_error::kind::transport, 0, 0, f.message};
}

// Failures that say the endpoint, not the request, is at fault: try the next one.
bool blames_endpoint(etcd_error const& e) {
    switch (e.what) {
    case etcd_error::kind::transport:
    case etcd_error::kind::timeout: return true;
    case etcd_error::kind::status: return e.http_status >= 500 || e.grpc_code == 14;  // 14: unavailable
    default: return false;
    }
}

steady::time_point deadline_after(std::chrono::nanoseconds t) {
    return steady::now() + std::chrono::duration_cast<steady::duration>(
                               std::clamp<std::chrono::nanoseconds>(t, std::chrono::nanoseconds::zero(), longest_timeout));
}

std::chrono::nanoseconds time_left(steady::time_point deadline) {
    return std::max<std::chrono::nanoseconds>(deadline - steady::now(), std::chrono::nanoseconds::zero());
}

// How a request meets etcd's token.
enum class token_use {
    checked,  // it waits for a token before it is sent
    renewal,  // a keepalive: it goes at once, with the token there is, so that it keeps its
              // schedule; etcd 3.4.42, 3.5.28, 3.6.9 and later check it all the same
};

// A request as the messages name it: what it does, and the keys it touches.
struct call_info {
    char const* name = "";
    token_use use = token_use::checked;
    std::string key;
    std::string range_end;  // empty: the one key
};

std::string keys_of(call_info const& c) {
    if (c.key.empty()) return "its keys";
    if (c.range_end.empty()) return cat("key \"", c.key, "\"");
    return cat("keys [\"", c.key, "\", \"", c.range_end, "\")");
}

// A lease ID of the client's choosing, positive as etcd's own: an answer that names
// another lease is then known to be wrong.
std::int64_t new_lease_id() {
    static std::random_device device;
    std::uniform_int_distribution<std::int64_t> pick(1, std::numeric_limits<std::int64_t>::max());
    return pick(device);
}

// Answers whose time counts for a lease deadline carry the send time of the attempt etcd
// answered.
template <class T>
constexpr bool carries_send_time = requires(T t) { t.sent; };

}  // namespace

// --- impl -----------------------------------------------------------------------------

struct etcd_client::impl : std::enable_shared_from_this<impl> {
    // nullopt: go on, with the token there is (none when none is needed).
    using token_outcome = std::optional<etcd_error>;

    // A request waiting for a token, until its deadline.
    struct token_waiter {
        token_waiter(boost::asio::io_context& io, std::function<void(token_outcome)> r) : resume(std::move(r)), timer(io) {}
        std::function<void(token_outcome)> resume;
        boost::asio::steady_timer timer;
    };

    // The one watch stream and what to tell its owner.
    struct watch_state {
        std::string key;
        std::string range_end;  // empty: the one key
        std::int64_t start_revision = 0;
        std::function<void(watch_message const&)> on_message;
        std::function<void(etcd_error const&)> on_end;
        gateway::line_splitter lines{max_watch_line};  // the body is a stream of lines cut anywhere
        net::http_stream stream;
        bool opened = false;              // a stream was opened (an endpoint to blame)
        bool delivered = false;           // a message reached the owner
        bool resent = false;              // opened once more with a new token already
        bool with_token = false;          // its stream carries a token
        std::uint64_t token_generation = 0;

        call_info call() const { return call_info{"watch", token_use::checked, key, range_end}; }
    };

    // Decodes an answer (status, body); it may hold what the request asked for, to check the answer.
    template <class T>
    using decoder = std::function<etcd_result<T>(int, std::string_view)>;

    // A unary request, kept until its answer: it may be sent twice.
    template <class T>
    struct pending {
        char const* target;
        std::string body;
        steady::time_point deadline;
        decoder<T> decode;
        handler<T> done;
        call_info call;
        bool resent = false;        // sent once more with a new token already
        time_point first_sent{};    // when its first attempt left (the core's clock)
        time_point sent{};          // when its latest attempt left
    };

    impl(boost::asio::io_context& io, std::vector<endpoint> endpoints, tls_files const& files,
         etcd_credentials credentials, debug_sink debug, report_sink report)
        : io_(io),
          password_(std::move(credentials.password)),
          debug_(debug),
          report_(std::move(report)),
          http_(io, std::move(endpoints), files, "etcd", std::move(debug)),
          leader_(http_.endpoints().size()),
          token_(std::move(credentials.user)) {}

    template <class T>
    void request(char const* target, std::string body, timeout t, decoder<T> decode, handler<T> done, call_info call) {
        if (closed_) return;
        auto p = std::make_shared<pending<T>>(
            pending<T>{target, std::move(body), deadline_after(t), decode, std::move(done), std::move(call)});
        if (p->call.use == token_use::renewal) return send(p);
        send_with_token(p);
    }

    template <class T>
    void send_with_token(std::shared_ptr<pending<T>> const& p) {
        with_token(p->deadline, [weak = weak_from_this(), p](token_outcome failed) {
            auto self = weak.lock();
            if (!self || self->closed_) return;
            if (failed) return p->done(*failed);
            self->send(p);
        });
    }

    template <class T>
    void send(std::shared_ptr<pending<T>> const& p) {
        auto const generation = token_.generation();
        bool const with_token = !token_.token().empty();
        // Taken before the request leaves: etcd cannot handle it earlier, so a deadline
        // counted from this instant is never later than the server's.
        p->sent = boot_clock::now();
        if (!p->resent) p->first_sent = p->sent;
        http_.request(http_verb::post, p->target, p->body, token_fields(), time_left(p->deadline), max_answer_body,
                      [weak = weak_from_this(), p, generation, with_token](http_result r) {
                          auto self = weak.lock();
                          if (!self || self->closed_) return;
                          self->answered(p, generation, with_token, std::move(r));
                      });
    }

    template <class T>
    void answered(std::shared_ptr<pending<T>> const& p, std::uint64_t generation, bool with_token, http_result r) {
        bool const may_resend = token_.enabled() && !p->resent;
        if (auto const* f = std::get_if<http_failure>(&r)) {
            // etcd 3.4.23 closes the connection instead of refusing a token (etcd #15256).
            if (may_resend && with_token && f->closed_without_answer) {
                return resend(p, generation, "etcd closed the connection without an answer");
            }
            auto const e = to_error(*f);
            if (blames_endpoint(e)) move_on(f->endpoint_index, nm::describe(e));
            return p->done(e);
        }
        auto const& a = std::get<http_answer>(r);
        auto result = p->decode(a.status, a.body);
        if constexpr (std::is_same_v<T, keepalive_reply>) {
            if (auto const* reply = std::get_if<keepalive_reply>(&result); reply && reply->origin)
                follow(leader_.answered(a.endpoint_index, *reply->origin, http_.current()));
        }
        if (auto* e = std::get_if<etcd_error>(&result)) {
            if (may_resend && gateway::token_refused(*e)) return resend(p, generation, nm::describe(*e));
            // "no leader", "timed out": another member may do better.
            if (blames_endpoint(*e)) move_on(a.endpoint_index, nm::describe(*e));
            *e = explain(*e, p->call);
        } else if constexpr (carries_send_time<T>) {
            std::get<T>(result).sent = p->sent;
            if (p->resent) {
                auto const now = boot_clock::now();
                debug_(cat("etcd: ", p->call.name, " answered after a new token, ", to_ms(now - p->first_sent),
                           " ms after its first send (", to_ms(now - p->sent), " ms for the second)"));
            }
        }
        p->done(std::move(result));
    }

    // The token a request carried was refused: a new one, and the request once more, within
    // its own deadline. A renewal too: its lease deadline then counts from the second send.
    template <class T>
    void resend(std::shared_ptr<pending<T>> const& p, std::uint64_t generation, std::string const& why) {
        p->resent = true;
        if (generation == token_.generation() && !token_.token().empty()) {
            debug_(cat("etcd refused the token of user ", token_.user(), " (", why, "): authenticating again"));
        }
        token_.refused(generation, why);
        send_with_token(p);
    }

    // A refusal that an operator must fix: said at level error, with what it concerns.
    etcd_error explain(etcd_error const& e, call_info const& call) {
        switch (gateway::refusal_of(e)) {
        case gateway::refusal::permission: {
            auto text = cat("permission denied for ", keys_of(call), " (", call.name, ")",
                            token_.enabled() ? cat(" as etcd user ", token_.user()) : std::string(), ": ", e.message);
            problem(level::error, text);
            return etcd_error{etcd_error::kind::permission_denied, e.http_status, e.grpc_code, text};
        }
        case gateway::refusal::token: {
            auto text = token_.enabled()
                            ? cat("etcd refuses the token of user ", token_.user(), " even when new: ", e.message)
                            : cat("etcd has authentication enabled and no user is configured: ", e.message);
            problem(token_.enabled() ? level::warning : level::error, text);
            return etcd_error{etcd_error::kind::refused_credentials, e.http_status, e.grpc_code, text};
        }
        default: return e;
        }
    }

    // --- the endpoint ---

    // The one place requests move to another member: after a failure that blames the
    // endpoint `failed` (unless another failure moved them on already), or to the leader.
    void move_on(std::size_t failed, std::string const& reason) {
        auto const before = http_.current();
        http_.rotate_from(failed, reason);
        moved(before);
    }

    void move_to(std::size_t endpoint, std::string const& reason) {
        auto const before = http_.current();
        http_.move_to(endpoint, reason);
        moved(before);
    }

    void moved(std::size_t before) {
        if (http_.current() == before) return;
        apply(token_.moved(cat("member ", endpoint_name(http_.current())), steady::now()));
    }

    std::string endpoint_name(std::size_t index) const { return describe(http_.endpoints()[index]); }

    // --- the leader ---

    void follow(std::optional<leader_finder::step> step) {
        if (!step) return;
        if (step->what == leader_finder::step::kind::move) {
            return move_to(step->endpoint, cat("member ", leader_.leader(), " leads (term ", leader_.term(), ")"));
        }
        auto const e = step->endpoint;
        http_.request_to(e, http_verb::post, "/v3/maintenance/status", "{}", token_fields(), status_timeout,
                         max_answer_body, [weak = weak_from_this(), e](http_result r) {
                             auto self = weak.lock();
                             if (!self || self->closed_) return;
                             std::optional<member_status> answer;
                             if (auto const* a = std::get_if<http_answer>(&r)) {
                                 auto decoded = gateway::decode_status(a->status, a->body);
                                 if (auto* s = std::get_if<member_status>(&decoded)) answer = std::move(*s);
                                 else self->debug_(cat("etcd status of ", self->endpoint_name(e), ": ",
                                                       nm::describe(std::get<etcd_error>(decoded))));
                             } else {
                                 auto const& f = std::get<http_failure>(r);
                                 self->move_on(e, describe(f));  // only if e is where requests go
                             }
                             self->follow(self->leader_.status(e, answer, self->http_.current()));
                         });
    }

    // --- the token ---

    // The token there is, as etcd wants it: the raw token ("Bearer x" is refused).
    net::header_fields token_fields() const {
        if (token_.token().empty()) return {};
        return {{"Authorization", token_.token()}};
    }

    // Calls resume once, never from inside this call: with nullopt when there is a token
    // (or none is needed), or with why there is none by the deadline.
    void with_token(steady::time_point deadline, std::function<void(token_outcome)> resume) {
        auto const now = steady::now();
        switch (token_.admit(now)) {
        case token_keeper::admission::go: return post(std::move(resume), std::nullopt);
        case token_keeper::admission::refused: return post(std::move(resume), token_.refusal());
        case token_keeper::admission::wait: break;
        }
        auto const id = ++waiter_ids_;
        auto w = std::make_shared<token_waiter>(io_, std::move(resume));
        waiters_.emplace(id, w);
        w->timer.expires_at(deadline);
        w->timer.async_wait([weak = weak_from_this(), id](boost::system::error_code ec) {
            auto self = weak.lock();
            if (ec || !self || self->closed_) return;
            self->apply(self->token_.expired(id));
        });
        apply(token_.wait(id, deadline, now));
    }

    void post(std::function<void(token_outcome)> resume, token_outcome outcome) {
        boost::asio::post(io_, [weak = weak_from_this(), resume = std::move(resume), outcome = std::move(outcome)] {
            auto self = weak.lock();
            if (self && !self->closed_) resume(outcome);
        });
    }

    // Carries out what the keeper decided: its lines, the authentication, then the
    // requests it resumes (which may send and wait again).
    void apply(token_keeper::steps const& steps) {
        if (steps.problems_over) reported_.clear();
        for (auto const& r : steps.reports) {
            if (r.lvl == level::debug) debug_(r.text);
            else if (r.problem) problem(r.lvl, r.text);
            else report_(r.lvl, r.text);
        }
        if (steps.authenticate) authenticate(*steps.authenticate);
        for (auto const& r : steps.resumed) {
            auto it = waiters_.find(r.id);
            if (it == waiters_.end()) continue;
            auto w = it->second;
            waiters_.erase(it);
            w->timer.cancel();
            w->resume(r.error);
            if (closed_) return;  // the owner closed the client from a handler
        }
    }

    void authenticate(steady::time_point deadline) {
        debug_(cat("etcd: authenticating as user ", token_.user()));
        http_.request(http_verb::post, "/v3/auth/authenticate", gateway::encode_authenticate(token_.user(), password_), {},
                      time_left(deadline), max_answer_body, [weak = weak_from_this()](http_result r) {
                          auto self = weak.lock();
                          if (self && !self->closed_) self->authenticated(std::move(r));
                      });
    }

    void authenticated(http_result r) {
        etcd_result<std::string> answer = etcd_error{};
        if (auto const* f = std::get_if<http_failure>(&r)) {
            answer = to_error(*f);
            if (blames_endpoint(std::get<etcd_error>(answer))) move_on(f->endpoint_index, describe(*f));
        } else {
            auto const& a = std::get<http_answer>(r);
            answer = gateway::decode_authenticate(a.status, a.body);
            if (auto const* e = std::get_if<etcd_error>(&answer); e && blames_endpoint(*e))
                move_on(a.endpoint_index, nm::describe(*e));
        }
        apply(token_.authenticated(answer, steady::now()));
    }

    // Tells a problem now unless the same was told within report_repeat.
    void problem(level lvl, std::string const& text) {
        auto const now = steady::now();
        auto [it, fresh] = reported_.try_emplace(text, now);
        if (!fresh) {
            if (now - it->second < report_repeat) return;
            it->second = now;
        }
        if (reported_.size() > max_remembered_reports) {
            reported_.clear();
            reported_.emplace(text, now);
        }
        report_(lvl, text);
    }

    // --- watch ---

    void watch(std::string const& key, std::string const& range_end, std::int64_t start_revision,
               std::function<void(watch_message const&)> on_message, std::function<void(etcd_error const&)> on_end) {
        if (closed_) return;
        stop_watch();
        auto w = std::make_shared<watch_state>();
        w->key = key;
        w->range_end = range_end;
        w->start_revision = start_revision;
        w->on_message = std::move(on_message);
        w->on_end = std::move(on_end);
        watch_ = w;
        open_watch_with_token(w);
    }

    void open_watch_with_token(std::shared_ptr<watch_state> const& w) {
        std::weak_ptr<watch_state> weak_watch = w;
        with_token(deadline_after(watch_open_timeout), [weak = weak_from_this(), weak_watch](token_outcome failed) {
            auto self = weak.lock();
            auto w = weak_watch.lock();
            if (!self || !w || !self->watching(w)) return;
            if (failed) return self->end_watch(w, *failed);
            self->open_watch(w);
        });
    }

    void open_watch(std::shared_ptr<watch_state> const& w) {
        w->lines = gateway::line_splitter{max_watch_line};
        w->opened = true;
        w->with_token = !token_.token().empty();
        w->token_generation = token_.generation();
        stream_request rq{"watch", http_verb::post, "/v3/watch",
                          gateway::encode_watch(w->key, w->range_end, w->start_revision), watch_open_timeout,
                          max_error_body};
        rq.headers = token_fields();
        std::weak_ptr<impl> weak_self = weak_from_this();
        std::weak_ptr<watch_state> weak_watch = w;
        w->stream = http_.open_stream(
            std::move(rq),
            stream_handlers{
                [weak_self, weak_watch](std::string_view bytes) {
                    auto self = weak_self.lock();
                    auto w = weak_watch.lock();
                    if (self && w) self->on_watch_data(w, bytes);
                },
                [weak_self, weak_watch](stream_end const& end) {
                    auto self = weak_self.lock();
                    auto w = weak_watch.lock();
                    if (self && w) self->stream_ended(w, end);
                },
            });
    }

    // The token of a watch was refused before it delivered anything: a new token, and the
    // same watch once more.
    bool may_reopen(watch_state const& w) const { return token_.enabled() && !w.resent && !w.delivered; }

    void reopen_watch(std::shared_ptr<watch_state> const& w, std::string const& why) {
        w->resent = true;
        w->stream.close();
        token_.refused(w->token_generation, why);
        open_watch_with_token(w);
    }

    bool watching(std::shared_ptr<watch_state> const& w) const { return !closed_ && watch_ == w; }

    // Forgets the watch without telling its owner.
    void stop_watch() {
        if (!watch_) return;
        watch_->stream.close();
        watch_.reset();
    }

    // The stream is over: close it, and tell the owner once.
    void end_watch(std::shared_ptr<watch_state> const& w, etcd_error const& e) {
        if (!watching(w)) return;
        auto const where = w->opened ? cat(" on ", endpoint_name(w->stream.endpoint_index())) : std::string();
        debug_(cat("etcd watch", where, " ended: ", nm::describe(e)));
        stop_watch();
        if (w->opened && blames_endpoint(e)) move_on(w->stream.endpoint_index(), nm::describe(e));
        auto on_end = std::move(w->on_end);
        on_end(e);
    }

    void stream_ended(std::shared_ptr<watch_state> const& w, stream_end const& end) {
        if (!watching(w)) return;
        auto const e = end_reason(end);
        bool const token_trouble = (end.what == stream_end::kind::refused && gateway::token_refused(e)) ||
                                   (end.what == stream_end::kind::failed && w->with_token &&
                                    end.failure.closed_without_answer);  // etcd #15256
        if (token_trouble && may_reopen(*w)) return reopen_watch(w, nm::describe(e));
        end_watch(w, explain(e, w->call()));
    }

    // Why the stream ended, when the HTTP client ended it.
    etcd_error end_reason(stream_end const& end) const {
        switch (end.what) {
        case stream_end::kind::failed: return to_error(end.failure);
        case stream_end::kind::refused: return gateway::decode_error(end.refusal.status, end.refusal.body);
        case stream_end::kind::not_chunked:
            return etcd_error{etcd_error::kind::malformed, 200, 0, "watch answer is not chunked"};
        case stream_end::kind::finished: break;
        }
        return etcd_error{etcd_error::kind::transport, 0, 0,
                          cat("watch stream on ", endpoint_name(end.endpoint_index), " ended")};
    }

    // Why a message ends the stream.
    static etcd_error end_reason(watch_message const& m) {
        if (m.error) return *m.error;
        if (m.compact_revision != 0)
            return etcd_error{etcd_error::kind::status, 0, 0,
                              cat("watch start revision was compacted (compact revision ", m.compact_revision, ")")};
        return etcd_error{etcd_error::kind::status, 0, 0, cat("watch canceled by etcd: ", m.cancel_reason)};
    }

    // Bytes of the stream: each complete line is one message, delivered in order; lines
    // completed before a failure are still delivered.
    void on_watch_data(std::shared_ptr<watch_state> const& w, std::string_view bytes) {
        if (!watching(w)) return;
        bool const too_long = !w->lines.feed(bytes);
        std::string line;
        while (w->lines.next(line)) {
            auto r = gateway::decode_watch_line(line, w->key, w->range_end);
            if (auto const* e = std::get_if<etcd_error>(&r)) return end_watch(w, *e);
            auto const& m = std::get<watch_message>(r);
            // etcd creates and cancels a watch whose token it refuses in one message.
            if (m.ends_stream() && gateway::token_refused(end_reason(m)) && may_reopen(*w)) {
                return reopen_watch(w, nm::describe(end_reason(m)));
            }
            if (m.created) debug_(cat("etcd watch on ", endpoint_name(w->stream.endpoint_index()), " created"));
            w->delivered = true;
            w->on_message(m);
            if (!watching(w)) return;  // the owner replaced the watch or closed the client
            if (m.ends_stream()) return end_watch(w, explain(end_reason(m), w->call()));
        }
        if (too_long)
            end_watch(w, etcd_error{etcd_error::kind::malformed, 200, 0,
                                    cat("watch message longer than ", max_watch_line, " bytes")});
    }

    void close() {
        if (closed_) return;
        closed_ = true;
        http_.close();  // every request and the stream: their handlers are not called
        for (auto const& [id, w] : waiters_) w->timer.cancel();
        waiters_.clear();
        watch_.reset();
    }

    boost::asio::io_context& io_;
    std::string const password_;
    debug_sink debug_;
    report_sink report_;
    net::http_client http_;
    leader_finder leader_;                // where keepalives cost etcd least
    token_keeper token_;                  // the user's token: when to authenticate, who waits
    bool closed_ = false;                 // no handler is called once set
    std::shared_ptr<watch_state> watch_;  // the current watch, if any
    std::map<token_keeper::waiter_id, std::shared_ptr<token_waiter>> waiters_;  // requests waiting for the token
    token_keeper::waiter_id waiter_ids_ = 0;
    std::map<std::string, steady::time_point> reported_;  // problems told, and when
};

// --- etcd_client ----------------------------------------------------------------------

etcd_client::etcd_client(boost::asio::io_context& io, std::vector<endpoint> endpoints, tls_files const& tls,
                         debug_sink debug)
    : etcd_client(io, std::move(endpoints), tls, etcd_credentials{}, std::move(debug), [](level, std::string const&) {}) {}

etcd_client::etcd_client(boost::asio::io_context& io, std::vector<endpoint> endpoints, tls_files const& tls,
                         etcd_credentials credentials, debug_sink debug, report_sink report)
    : impl_(std::make_shared<impl>(io, std::move(endpoints), tls, std::move(credentials), std::move(debug),
                                   std::move(report))) {}

etcd_client::~etcd_client() {
    if (impl_) impl_->close();
}

void etcd_client::grant(std::int64_t ttl_seconds, timeout t, handler<lease_grant> done) {
    grant(ttl_seconds, new_lease_id(), t, std::move(done));
}

void etcd_client::grant(std::int64_t ttl_seconds, std::int64_t id, timeout t, handler<lease_grant> done) {
    impl_->request<lease_grant>("/v3/lease/grant", gateway::encode_grant(ttl_seconds, id), t,
                                [id](int status, std::string_view body) { return gateway::decode_grant(status, body, id); },
                                std::move(done), call_info{"lease grant"});
}

void etcd_client::keepalive(std::int64_t lease, timeout t, handler<keepalive_reply> done) {
    impl_->request<keepalive_reply>(
        "/v3/lease/keepalive", gateway::encode_lease_id(lease), t,
        [lease](int status, std::string_view body) { return gateway::decode_keepalive(status, body, lease); },
        std::move(done), call_info{"keepalive", token_use::renewal});
}

void etcd_client::campaign(std::string const& key, std::string const& value, std::int64_t lease, timeout t,
                           handler<campaign_reply> done) {
    impl_->request<campaign_reply>("/v3/kv/txn", gateway::encode_campaign(key, value, lease), t,
                                   [key, value, lease](int status, std::string_view body) {
                                       return gateway::decode_campaign(status, body, key, value, lease);
                                   },
                                   std::move(done), call_info{"txn", token_use::checked, key});
}

void etcd_client::range(std::string const& key, std::string const& range_end, timeout t, handler<range_reply> done) {
    impl_->request<range_reply>("/v3/kv/range", gateway::encode_range(key, range_end), t, gateway::decode_range,
                                std::move(done), call_info{"range", token_use::checked, key, range_end});
}

void etcd_client::put(std::string const& key, std::string const& value, std::int64_t lease, timeout t,
                      handler<std::monostate> done) {
    impl_->request<std::monostate>("/v3/kv/put", gateway::encode_put(key, value, lease), t, gateway::decode_done,
                                   std::move(done), call_info{"put", token_use::checked, key});
}

void etcd_client::erase(std::string const& key, std::string const& range_end, timeout t, handler<std::monostate> done) {
    impl_->request<std::monostate>("/v3/kv/deleterange", gateway::encode_delete(key, range_end), t, gateway::decode_done,
                                   std::move(done), call_info{"delete", token_use::checked, key, range_end});
}

void etcd_client::time_to_live(std::int64_t lease, timeout t, handler<lease_time_left> done) {
    impl_->request<lease_time_left>("/v3/lease/timetolive", gateway::encode_lease_id(lease), t,
                                    gateway::decode_time_to_live, std::move(done), call_info{"lease time to live"});
}

void etcd_client::revoke(std::int64_t lease, timeout t, handler<std::monostate> done) {
    impl_->request<std::monostate>("/v3/lease/revoke", gateway::encode_lease_id(lease), t, gateway::decode_done,
                                   std::move(done), call_info{"lease revoke"});
}

void etcd_client::watch(std::string const& key, std::string const& range_end, std::int64_t start_revision,
                        std::function<void(watch_message const&)> on_message,
                        std::function<void(etcd_error const&)> on_end) {
    impl_->watch(key, range_end, start_revision, std::move(on_message), std::move(on_end));
}

void etcd_client::close() { impl_->close(); }

}  // namespace nm
