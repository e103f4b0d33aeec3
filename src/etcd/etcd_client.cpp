// The gateway client: etcd's requests and answers over net/http_client.
//
//   grant/keepalive/campaign/revoke ─▶ request() ─▶ http_client::request (POST, JSON)
//        completion: decode the answer, move on from an endpoint that cannot serve,
//                    call the caller's handler (unless closed)
//   watch ─▶ http_client::open_stream (POST /v3/watch): the chunked body ─▶ on_watch_data
//            ─▶ line_splitter ─▶ decode_watch_line ─▶ on_message; its end ─▶ on_end
//
// The HTTP client calls nothing after close(); handlers hold the impl only weakly, and
// keep it alive while they run, so that an owner may destroy the client from a handler.
#include "etcd/etcd_client.hpp"

#include <memory>
#include <string_view>
#include <utility>
#include <variant>

#include "core/text.hpp"
#include "etcd/gateway_json.hpp"

namespace nm {
namespace {

using net::http_answer;
using net::http_failure;
using net::http_result;
using net::http_verb;
using net::stream_end;
using net::stream_handlers;
using net::stream_request;

constexpr std::size_t max_answer_body = 1024 * 1024;      // unary answers are a few hundred bytes
constexpr std::size_t max_error_body = 64 * 1024;         // body of a refused watch
constexpr std::size_t max_watch_line = 4 * 1024 * 1024;   // one watch message
constexpr auto watch_open_timeout = std::chrono::seconds(5);  // connect + handshake + header

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

}  // namespace

// --- impl -----------------------------------------------------------------------------

struct etcd_client::impl : std::enable_shared_from_this<impl> {
    // The one watch stream and what to tell its owner.
    struct watch_state {
        std::string key;
        std::string range_end;  // empty: the one key
        std::function<void(watch_message const&)> on_message;
        std::function<void(etcd_error const&)> on_end;
        gateway::line_splitter lines{max_watch_line};  // the body is a stream of lines cut anywhere
        net::http_stream stream;
    };

    impl(boost::asio::io_context& io, std::vector<endpoint> endpoints, tls_files const& files, debug_sink debug)
        : debug_(debug), http_(io, std::move(endpoints), files, "etcd", std::move(debug)) {}

    template <class T>
    using decoder = etcd_result<T> (*)(int, std::string_view);

    template <class T>
    void request(char const* target, std::string body, timeout t, decoder<T> decode, handler<T> done) {
        if (closed_) return;
        http_.request(http_verb::post, target, std::move(body), t, max_answer_body,
                      [weak = weak_from_this(), decode, done = std::move(done)](http_result r) {
                          auto self = weak.lock();
                          if (!self || self->closed_) return;
                          if (auto const* f = std::get_if<http_failure>(&r)) return done(to_error(*f));
                          auto const& a = std::get<http_answer>(r);
                          auto result = decode(a.status, a.body);
                          // "no leader", "timed out": another member may do better.
                          if (auto const* e = std::get_if<etcd_error>(&result); e && blames_endpoint(*e))
                              self->http_.rotate_from(a.endpoint_index, nm::describe(*e));
                          done(std::move(result));
                      });
    }

    // --- watch ---

    void watch(std::string const& key, std::string const& range_end, std::int64_t start_revision,
               std::function<void(watch_message const&)> on_message, std::function<void(etcd_error const&)> on_end) {
        if (closed_) return;
        stop_watch();
        auto w = std::make_shared<watch_state>();
        w->key = key;
        w->range_end = range_end;
        w->on_message = std::move(on_message);
        w->on_end = std::move(on_end);
        watch_ = w;
        std::weak_ptr<impl> weak_self = weak_from_this();
        std::weak_ptr<watch_state> weak_watch = w;
        w->stream = http_.open_stream(
            stream_request{"watch", http_verb::post, "/v3/watch", gateway::encode_watch(key, range_end, start_revision),
                           watch_open_timeout, max_error_body},
            stream_handlers{
                [weak_self, weak_watch](std::string_view bytes) {
                    auto self = weak_self.lock();
                    auto w = weak_watch.lock();
                    if (self && w) self->on_watch_data(w, bytes);
                },
                [weak_self, weak_watch](stream_end const& end) {
                    auto self = weak_self.lock();
                    auto w = weak_watch.lock();
                    if (self && w) self->end_watch(w, self->end_reason(end));
                },
            });
    }

    bool watching(std::shared_ptr<watch_state> const& w) const { return !closed_ && watch_ == w; }

    std::string endpoint_name(std::size_t index) const { return describe(http_.endpoints()[index]); }

    // Forgets the watch without telling its owner.
    void stop_watch() {
        if (!watch_) return;
        watch_->stream.close();
        watch_.reset();
    }

    // The stream is over: close it, and tell the owner once.
    void end_watch(std::shared_ptr<watch_state> const& w, etcd_error const& e) {
        if (!watching(w)) return;
        debug_(cat("etcd watch on ", endpoint_name(w->stream.endpoint_index()), " ended: ", nm::describe(e)));
        stop_watch();
        if (blames_endpoint(e)) http_.rotate_from(w->stream.endpoint_index(), nm::describe(e));
        auto on_end = std::move(w->on_end);
        on_end(e);
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
            auto r = gateway::decode_watch_line(line);
            if (auto const* e = std::get_if<etcd_error>(&r)) return end_watch(w, *e);
            auto const& m = std::get<watch_message>(r);
            for (auto const& event : m.events) {
                bool const watched = w->range_end.empty() ? event.kv.key == w->key
                                                          : event.kv.key >= w->key && event.kv.key < w->range_end;
                if (!watched)
                    return end_watch(w, etcd_error{etcd_error::kind::malformed, 200, 0, "watch event for another key"});
            }
            if (m.created) debug_(cat("etcd watch on ", endpoint_name(w->stream.endpoint_index()), " created"));
            w->on_message(m);
            if (!watching(w)) return;  // the owner replaced the watch or closed the client
            if (m.ends_stream()) return end_watch(w, end_reason(m));
        }
        if (too_long)
            end_watch(w, etcd_error{etcd_error::kind::malformed, 200, 0,
                                    cat("watch message longer than ", max_watch_line, " bytes")});
    }

    void close() {
        if (closed_) return;
        closed_ = true;
        http_.close();  // every request and the stream: their handlers are not called
        watch_.reset();
    }

    debug_sink debug_;
    net::http_client http_;
    bool closed_ = false;                 // no handler is called once set
    std::shared_ptr<watch_state> watch_;  // the current watch, if any
};

// --- etcd_client ----------------------------------------------------------------------

etcd_client::etcd_client(boost::asio::io_context& io, std::vector<endpoint> endpoints, tls_files const& tls,
                         debug_sink debug)
    : impl_(std::make_shared<impl>(io, std::move(endpoints), tls, std::move(debug))) {}

etcd_client::~etcd_client() {
    if (impl_) impl_->close();
}

void etcd_client::grant(std::int64_t ttl_seconds, timeout t, handler<lease_grant> done) {
    impl_->request<lease_grant>("/v3/lease/grant", gateway::encode_grant(ttl_seconds), t, gateway::decode_grant,
                                std::move(done));
}

void etcd_client::keepalive(std::int64_t lease, timeout t, handler<keepalive_reply> done) {
    impl_->request<keepalive_reply>("/v3/lease/keepalive", gateway::encode_lease_id(lease), t,
                                    gateway::decode_keepalive, std::move(done));
}

void etcd_client::campaign(std::string const& key, std::string const& value, std::int64_t lease, timeout t,
                           handler<campaign_reply> done) {
    impl_->request<campaign_reply>("/v3/kv/txn", gateway::encode_campaign(key, value, lease), t,
                                   gateway::decode_campaign, std::move(done));
}

void etcd_client::range(std::string const& key, std::string const& range_end, timeout t, handler<range_reply> done) {
    impl_->request<range_reply>("/v3/kv/range", gateway::encode_range(key, range_end), t, gateway::decode_range,
                                std::move(done));
}

void etcd_client::put(std::string const& key, std::string const& value, std::int64_t lease, timeout t,
                      handler<std::monostate> done) {
    impl_->request<std::monostate>("/v3/kv/put", gateway::encode_put(key, value, lease), t, gateway::decode_revoke,
                                   std::move(done));
}

void etcd_client::erase(std::string const& key, std::string const& range_end, timeout t, handler<std::monostate> done) {
    impl_->request<std::monostate>("/v3/kv/deleterange", gateway::encode_delete(key, range_end), t,
                                   gateway::decode_revoke, std::move(done));
}

void etcd_client::time_to_live(std::int64_t lease, timeout t, handler<lease_time_left> done) {
    impl_->request<lease_time_left>("/v3/lease/timetolive", gateway::encode_lease_id(lease), t,
                                    gateway::decode_time_to_live, std::move(done));
}

void etcd_client::revoke(std::int64_t lease, timeout t, handler<std::monostate> done) {
    impl_->request<std::monostate>("/v3/lease/revoke", gateway::encode_lease_id(lease), t, gateway::decode_revoke,
                                   std::move(done));
}

void etcd_client::watch(std::string const& key, std::string const& range_end, std::int64_t start_revision,
                        std::function<void(watch_message const&)> on_message,
                        std::function<void(etcd_error const&)> on_end) {
    impl_->watch(key, range_end, start_revision, std::move(on_message), std::move(on_end));
}

void etcd_client::close() { impl_->close(); }

}  // namespace nm
