// The gateway client: the one translation unit that includes Beast and OpenSSL.
//
//   grant/keepalive/campaign/revoke ─▶ request() ─co_spawn─▶ exchange()
//        exchange: take an idle connection to endpoint[current_] or open one,
//                  write one POST, read one answer, give the connection back
//        completion: decode the answer, call the caller's handler (unless closed)
//   watch ─▶ run_watch(): open, POST /v3/watch, read the header, then read the chunked
//            body forever: bytes ─▶ line_splitter ─▶ decode_watch_line ─▶ on_message
//
// Everything runs on the caller's io_context, in its one thread. Coroutines hold the impl
// alive; close() sets closed_, closes every socket, and from then on no handler is called.
#include "etcd/etcd_client.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <exception>
#include <functional>
#include <memory>
#include <set>
#include <stdexcept>
#include <utility>
#include <variant>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "core/text.hpp"
#include "etcd/gateway_json.hpp"

namespace nm {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using steady = std::chrono::steady_clock;

// Every async call reports its error as a value: nothing is thrown inside the loop.
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

constexpr std::size_t max_answer_body = 1024 * 1024;      // unary answers are a few hundred bytes
constexpr std::size_t max_error_body = 64 * 1024;         // body of a refused watch
constexpr std::size_t max_watch_line = 4 * 1024 * 1024;   // one watch message
constexpr std::size_t max_idle_connections = 4;
constexpr auto watch_open_timeout = std::chrono::seconds(5);  // connect + handshake + header
constexpr auto longest_timeout = std::chrono::hours(24);      // keeps now() + timeout from overflowing

using plain_stream = beast::tcp_stream;
using tls_stream = beast::ssl_stream<beast::tcp_stream>;

// One HTTP/1.1 connection to one endpoint, used by one request at a time.
struct connection {
    connection(asio::io_context& io, ssl::context* tls, std::size_t endpoint)
        : endpoint_index(endpoint), stream(std::in_place_type<plain_stream>, io) {
        if (tls) stream.emplace<tls_stream>(io, *tls);
    }

    beast::tcp_stream& tcp() {
        return std::visit([](auto& s) -> beast::tcp_stream& { return beast::get_lowest_layer(s); }, stream);
    }
    // Cancels whatever is pending on it; the connection is not used again.
    void close() { tcp().close(); }

    std::size_t endpoint_index;
    std::variant<plain_stream, tls_stream> stream;
    beast::flat_buffer buffer;  // bytes read past the last message (none without pipelining)
    bool open = false;          // connected and, for TLS, handshaken
};

// A failed step of an exchange: which step, and why.
struct step_error {
    error_code ec;
    char const* step = "";
    explicit operator bool() const { return bool(ec); }
};

struct http_answer {
    int status = 0;
    std::string body;
    std::size_t endpoint_index = 0;  // where it came from, to move on if it is an error of that endpoint
};

std::string describe(endpoint const& ep) { return cat(ep.address, ":", ep.port); }

etcd_error to_error(step_error const& f, endpoint const& ep) {
    auto kind = etcd_error::kind::transport;
    if (f.ec == beast::error::timeout) kind = etcd_error::kind::timeout;
    if (f.ec == http::error::body_limit) kind = etcd_error::kind::malformed;
    return etcd_error{kind, 0, 0, cat(f.step, " ", describe(ep), ": ", f.ec.message())};
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

// What a server's close of an idle keep-alive connection looks like on its next use.
bool looks_stale(step_error const& f) {
    if (std::string_view(f.step) != "write" && std::string_view(f.step) != "read") return false;
    return f.ec == http::error::end_of_stream || f.ec == asio::error::eof || f.ec == asio::error::connection_reset ||
           f.ec == asio::error::broken_pipe || f.ec == asio::error::connection_aborted ||
           f.ec == ssl::error::stream_truncated;
}

bool is_ip_literal(std::string const& host) {
    error_code ec;
    asio::ip::make_address(host, ec);
    return !ec;
}

std::string host_header(endpoint const& ep) {
    bool const ipv6 = ep.host.find(':') != std::string::npos;
    return cat(ipv6 ? "[" : "", ep.host, ipv6 ? "]" : "", ":", ep.port);
}

http::request<http::string_body> make_post(endpoint const& ep, std::string_view target, std::string body) {
    http::request<http::string_body> req{http::verb::post, target, 11};
    req.set(http::field::host, host_header(ep));
    req.set(http::field::content_type, "application/json");
    req.keep_alive(true);
    req.body() = std::move(body);
    req.prepare_payload();
    return req;
}

std::unique_ptr<ssl::context> make_tls_context(tls_files const& files) {
    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
    ctx->set_verify_mode(ssl::verify_peer);
    error_code ec;
    if (files.ca.empty()) {
        ctx->set_default_verify_paths(ec);
        if (ec) throw std::runtime_error(cat("cannot load the system's CA certificates: ", ec.message()));
    } else {
        ctx->load_verify_file(files.ca, ec);
        if (ec) throw std::runtime_error(cat("cannot load CA file ", files.ca, ": ", ec.message()));
    }
    if (!files.cert.empty()) {
        ctx->use_certificate_chain_file(files.cert, ec);
        if (ec) throw std::runtime_error(cat("cannot load certificate file ", files.cert, ": ", ec.message()));
        // Without a key file the key is expected in the certificate file.
        auto const& key = files.key.empty() ? files.cert : files.key;
        ctx->use_private_key_file(key, ssl::context::pem, ec);
        if (ec) throw std::runtime_error(cat("cannot load key file ", key, ": ", ec.message()));
    }
    return ctx;
}

// SNI and the name check are per connection: they depend on the endpoint's host.
error_code prepare_tls(tls_stream& s, std::string const& host) {
    error_code ec;
    if (!is_ip_literal(host) && SSL_set_tlsext_host_name(s.native_handle(), host.c_str()) != 1)
        return error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category());
    s.set_verify_callback(ssl::host_name_verification(host), ec);
    return ec;
}

// A watch reads nothing for minutes: let the kernel notice a silently dead peer (~11 s).
bool enable_tcp_keepalive(tcp::socket& socket) {
    auto const fd = socket.native_handle();
    int const on = 1, idle = 5, interval = 2, count = 3;
    bool ok = ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on) == 0;
    ok = ok && ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle) == 0;
    ok = ok && ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval) == 0;
    ok = ok && ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count) == 0;
    return ok;
}

// Connects (and handshakes) before the deadline.
asio::awaitable<step_error> open_connection(connection& c, endpoint const& ep, steady::time_point deadline) {
    error_code ec;
    auto const address = asio::ip::make_address(ep.address, ec);
    if (ec) co_return step_error{ec, "address"};
    c.tcp().expires_at(deadline);
    std::tie(ec) = co_await c.tcp().async_connect(tcp::endpoint(address, ep.port), use_tuple);
    if (ec) co_return step_error{ec, "connect"};
    if (auto* tls = std::get_if<tls_stream>(&c.stream)) {
        if ((ec = prepare_tls(*tls, ep.host))) co_return step_error{ec, "tls setup"};
        c.tcp().expires_at(deadline);
        std::tie(ec) = co_await tls->async_handshake(ssl::stream_base::client, use_tuple);
        if (ec) co_return step_error{ec, "tls handshake"};
    }
    c.open = true;
    co_return step_error{};
}

asio::awaitable<step_error> write_request(connection& c, http::request<http::string_body> const& req,
                                          steady::time_point deadline) {
    c.tcp().expires_at(deadline);
    auto [ec, n] = co_await std::visit([&](auto& s) { return http::async_write(s, req, use_tuple); }, c.stream);
    co_return step_error{ec, "write"};
}

// What one request/answer on one connection gave.
struct round_trip_result {
    step_error failure;
    http_answer answer;
    bool reusable = false;  // the connection may carry another request
};

asio::awaitable<round_trip_result> round_trip(connection& c, endpoint const& ep,
                                              http::request<http::string_body> const& req,
                                              steady::time_point deadline) {
    round_trip_result r;
    if (!c.open && (r.failure = co_await open_connection(c, ep, deadline))) co_return r;
    if ((r.failure = co_await write_request(c, req, deadline))) co_return r;

    http::response_parser<http::string_body> parser;
    parser.body_limit(max_answer_body);
    c.tcp().expires_at(deadline);
    auto [ec, n] = co_await std::visit(
        [&](auto& s) { return http::async_read(s, c.buffer, parser, use_tuple); }, c.stream);
    if (ec) {
        r.failure = step_error{ec, "read"};
        co_return r;
    }
    c.tcp().expires_never();  // an idle connection must not be closed by a stale deadline
    auto& res = parser.get();
    r.answer = http_answer{static_cast<int>(res.result_int()), std::move(res.body())};
    r.reusable = res.keep_alive() && c.buffer.size() == 0;
    co_return r;
}

}  // namespace

// --- impl -----------------------------------------------------------------------------

struct etcd_client::impl : std::enable_shared_from_this<impl> {
    // The one watch stream and what to tell its owner.
    struct watch_state {
        std::string key;
        std::int64_t start_revision = 0;
        std::function<void(watch_message const&)> on_message;
        std::function<void(etcd_error const&)> on_end;
        std::shared_ptr<connection> conn;
    };

    impl(asio::io_context& io, std::vector<endpoint> endpoints, tls_files const& files, debug_sink debug)
        : io_(io), endpoints_(std::move(endpoints)), debug_(std::move(debug)) {
        if (endpoints_.empty()) throw std::runtime_error("no etcd endpoint given");
        // Only endpoints with tls use the context; without them the files are not needed.
        bool const any_tls = std::any_of(endpoints_.begin(), endpoints_.end(), [](auto& e) { return e.tls; });
        if (any_tls) tls_ = make_tls_context(files);
    }

    template <class T>
    using decoder = etcd_result<T> (*)(int, std::string_view);

    template <class T>
    void request(char const* target, std::string body, timeout t, decoder<T> decode, handler<T> done) {
        if (closed_) return;
        auto const deadline = steady::now() + std::chrono::duration_cast<steady::duration>(
                                                  std::clamp<timeout>(t, timeout::zero(), longest_timeout));
        auto self = shared_from_this();
        asio::co_spawn(io_, exchange(self, target, std::move(body), deadline),
                       [self, decode, done = std::move(done)](std::exception_ptr ep, etcd_result<http_answer> r) {
                           if (self->closed_) return;
                           if (ep) return done(internal_error(ep));
                           if (auto const* e = std::get_if<etcd_error>(&r)) return done(*e);
                           auto const& a = std::get<http_answer>(r);
                           auto result = decode(a.status, a.body);
                           // "no leader", "timed out": another member may do better.
                           if (auto const* e = std::get_if<etcd_error>(&result); e && blames_endpoint(*e))
                               self->rotate_from(a.endpoint_index, nm::describe(*e));
                           done(std::move(result));
                       });
    }

    static etcd_error internal_error(std::exception_ptr ep) {
        try {
            std::rethrow_exception(ep);
        } catch (std::exception const& e) {
            return etcd_error{etcd_error::kind::transport, 0, 0, cat("internal error: ", e.what())};
        } catch (...) {
            return etcd_error{etcd_error::kind::transport, 0, 0, "internal error"};
        }
    }

    // One request: on the current endpoint, with one retry when a reused connection
    // turns out to have been closed by the server while idle.
    static asio::awaitable<etcd_result<http_answer>> exchange(std::shared_ptr<impl> self, char const* target,
                                                              std::string body, steady::time_point deadline) {
        co_await asio::post(self->io_, asio::use_awaitable);  // never complete inside the caller's call
        if (self->closed_) co_return canceled();
        auto const index = self->current_;
        auto const& ep = self->endpoints_[index];
        auto const req = make_post(ep, target, std::move(body));
        auto conn = self->take_idle(index);
        bool reused = conn != nullptr;
        for (;;) {
            if (!conn) conn = std::make_shared<connection>(self->io_, self->tls_for(ep), index);
            self->busy_.insert(conn);
            auto r = co_await round_trip(*conn, ep, req, deadline);
            self->busy_.erase(conn);
            if (self->closed_) co_return canceled();
            if (!r.failure) {
                self->release(std::move(conn), r.reusable);
                r.answer.endpoint_index = index;
                co_return std::move(r.answer);
            }
            conn->close();
            if (reused && looks_stale(r.failure)) {
                self->debug_(cat("etcd ", describe(ep), ": idle connection was closed (",
                                      r.failure.ec.message(), "); retrying on a new one"));
                conn.reset();
                reused = false;
                continue;
            }
            auto e = to_error(r.failure, ep);
            self->debug_(cat("etcd POST ", target, " failed: ", nm::describe(e)));
            self->rotate_from(index, nm::describe(e));
            co_return e;
        }
    }

    static etcd_error canceled() { return etcd_error{etcd_error::kind::canceled, 0, 0, "client closed"}; }

    ssl::context* tls_for(endpoint const& ep) const { return ep.tls ? tls_.get() : nullptr; }

    // The most recently used idle connection to that endpoint, if any.
    std::shared_ptr<connection> take_idle(std::size_t index) {
        for (auto it = idle_.rbegin(); it != idle_.rend(); ++it) {
            if ((*it)->endpoint_index != index) continue;
            auto conn = std::move(*it);
            idle_.erase(std::next(it).base());
            return conn;
        }
        return nullptr;
    }

    void release(std::shared_ptr<connection> conn, bool reusable) {
        bool const keep = reusable && !closed_ && conn->endpoint_index == current_ &&
                          idle_.size() < max_idle_connections;
        if (keep) idle_.push_back(std::move(conn));
        else conn->close();
    }

    // Moves on to the next endpoint, unless another failure already did.
    void rotate_from(std::size_t failed, std::string const& reason) {
        if (failed != current_ || endpoints_.size() < 2) return;
        current_ = (current_ + 1) % endpoints_.size();
        debug_(cat("etcd endpoint ", describe(endpoints_[failed]), " failed (", reason,
                              "); switching to ", describe(endpoints_[current_])));
        std::erase_if(idle_, [&](auto const& c) {
            if (c->endpoint_index == current_) return false;
            c->close();
            return true;
        });
    }

    // --- watch ---

    void watch(std::string const& key, std::int64_t start_revision, std::function<void(watch_message const&)> on_message,
               std::function<void(etcd_error const&)> on_end) {
        if (closed_) return;
        stop_watch();
        auto w = std::make_shared<watch_state>();
        w->key = key;
        w->start_revision = start_revision;
        w->on_message = std::move(on_message);
        w->on_end = std::move(on_end);
        w->conn = std::make_shared<connection>(io_, tls_for(endpoints_[current_]), current_);
        watch_ = w;
        asio::co_spawn(io_, run_watch(shared_from_this(), w), [](std::exception_ptr ep) {
            // Only a callback of the owner can throw here: let it out of run() as any handler's would.
            if (ep) std::rethrow_exception(ep);
        });
    }

    bool watching(std::shared_ptr<watch_state> const& w) const { return !closed_ && watch_ == w; }

    // Forgets the watch without telling its owner.
    void stop_watch() {
        if (!watch_) return;
        watch_->conn->close();
        watch_.reset();
    }

    // The stream is over: close it, and tell the owner once.
    void end_watch(std::shared_ptr<watch_state> const& w, etcd_error const& e) {
        if (!watching(w)) return;
        debug_(cat("etcd watch on ", describe(endpoints_[w->conn->endpoint_index]),
                              " ended: ", nm::describe(e)));
        stop_watch();
        if (blames_endpoint(e)) rotate_from(w->conn->endpoint_index, nm::describe(e));
        auto on_end = std::move(w->on_end);
        on_end(e);
    }

    static etcd_error end_reason(watch_message const& m) {
        if (m.error) return *m.error;
        if (m.compact_revision != 0)
            return etcd_error{etcd_error::kind::status, 0, 0,
                              cat("watch start revision was compacted (compact revision ", m.compact_revision, ")")};
        return etcd_error{etcd_error::kind::status, 0, 0, cat("watch canceled by etcd: ", m.cancel_reason)};
    }

    static asio::awaitable<void> run_watch(std::shared_ptr<impl> self, std::shared_ptr<watch_state> w) {
        co_await asio::post(self->io_, asio::use_awaitable);  // never call back inside watch()
        if (!self->watching(w)) co_return;
        auto& c = *w->conn;
        auto const& ep = self->endpoints_[c.endpoint_index];
        auto const deadline = steady::now() + watch_open_timeout;

        auto failure = co_await open_connection(c, ep, deadline);
        if (!failure) {
            if (!enable_tcp_keepalive(c.tcp().socket())) self->debug_("etcd watch: cannot enable TCP keepalive");
            failure = co_await write_request(c, make_post(ep, "/v3/watch", gateway::encode_watch(w->key, w->start_revision)),
                                             deadline);
        }
        if (!self->watching(w)) co_return;
        if (failure) co_return self->end_watch(w, to_error(failure, ep));

        // The body is a stream of lines cut anywhere by the chunking; the callback must
        // outlive the parser, which only keeps a reference to it.
        gateway::line_splitter lines(max_watch_line);
        bool too_long = false;
        auto on_chunk = [&](std::uint64_t, beast::string_view data, error_code& ec) -> std::size_t {
            if (!lines.feed(std::string_view(data.data(), data.size()))) {
                too_long = true;
                ec = http::error::body_limit;
            }
            return data.size();
        };
        http::response_parser<http::empty_body> parser;
        parser.body_limit(boost::none);  // the stream is endless; the splitter bounds each line
        parser.on_chunk_body(on_chunk);

        c.tcp().expires_at(deadline);
        auto [ec, n] = co_await std::visit(
            [&](auto& s) { return http::async_read_header(s, c.buffer, parser, use_tuple); }, c.stream);
        if (!self->watching(w)) co_return;
        if (ec) co_return self->end_watch(w, to_error({ec, "read watch header"}, ep));
        // From here on the stream may be silent for minutes; TCP keepalive watches the peer.
        c.tcp().expires_never();
        if (parser.get().result() != http::status::ok) {
            auto e = co_await read_refusal(c, std::move(parser), deadline);
            co_return self->end_watch(w, e);
        }
        if (!parser.chunked())
            co_return self->end_watch(w, etcd_error{etcd_error::kind::malformed, 200, 0, "watch answer is not chunked"});

        for (;;) {
            std::tie(ec, n) = co_await std::visit(
                [&](auto& s) { return http::async_read_some(s, c.buffer, parser, use_tuple); }, c.stream);
            if (!self->watching(w)) co_return;
            // Lines completed before a failure are still delivered, in order.
            std::string line;
            while (lines.next(line)) {
                auto r = gateway::decode_watch_line(line);
                if (auto const* e = std::get_if<etcd_error>(&r)) co_return self->end_watch(w, *e);
                auto const& m = std::get<watch_message>(r);
                for (auto const& event : m.events) {
                    if (event.kv.key != w->key)
                        co_return self->end_watch(w, etcd_error{etcd_error::kind::malformed, 200, 0,
                                                                "watch event for another key"});
                }
                if (m.created) self->debug_(cat("etcd watch on ", describe(ep), " created"));
                w->on_message(m);
                if (!self->watching(w)) co_return;  // the owner replaced the watch or closed the client
                if (m.ends_stream()) co_return self->end_watch(w, end_reason(m));
            }
            if (too_long)
                co_return self->end_watch(
                    w, etcd_error{etcd_error::kind::malformed, 200, 0, cat("watch message longer than ", max_watch_line, " bytes")});
            if (ec) co_return self->end_watch(w, to_error({ec, "read watch"}, ep));
            if (parser.is_done())
                co_return self->end_watch(w, etcd_error{etcd_error::kind::transport, 0, 0,
                                                        cat("watch stream on ", describe(ep), " ended")});
        }
    }

    // The gateway refused the watch: read its error object, within the opening deadline.
    static asio::awaitable<etcd_error> read_refusal(connection& c, http::response_parser<http::empty_body>&& header,
                                                    steady::time_point deadline) {
        int const status = static_cast<int>(header.get().result_int());
        std::optional<http::response_parser<http::string_body>> parser;
        try {
            parser.emplace(std::move(header));  // throws only if the body was started
        } catch (std::exception const&) {
            co_return gateway::decode_error(status, {});
        }
        parser->body_limit(max_error_body);
        c.tcp().expires_at(deadline);
        auto [ec, n] = co_await std::visit(
            [&](auto& s) { return http::async_read(s, c.buffer, *parser, use_tuple); }, c.stream);
        co_return gateway::decode_error(status, ec ? std::string_view() : std::string_view(parser->get().body()));
    }

    void close() {
        if (closed_) return;
        closed_ = true;
        for (auto& c : idle_) c->close();
        idle_.clear();
        for (auto& c : busy_) c->close();  // their coroutines end at once and call no handler
        stop_watch();
    }

    asio::io_context& io_;
    std::vector<endpoint> const endpoints_;
    debug_sink debug_;
    std::unique_ptr<ssl::context> tls_;          // null when no endpoint uses TLS
    std::size_t current_ = 0;                    // endpoint that new requests go to
    bool closed_ = false;                        // no handler is called once set
    std::vector<std::shared_ptr<connection>> idle_;  // keep-alive connections, most recent last
    std::set<std::shared_ptr<connection>> busy_;     // connections with a request in flight
    std::shared_ptr<watch_state> watch_;             // the current watch, if any
};

// --- etcd_client ----------------------------------------------------------------------

etcd_client::etcd_client(asio::io_context& io, std::vector<endpoint> endpoints, tls_files const& tls,
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

void etcd_client::revoke(std::int64_t lease, timeout t, handler<std::monostate> done) {
    impl_->request<std::monostate>("/v3/lease/revoke", gateway::encode_lease_id(lease), t, gateway::decode_revoke,
                                   std::move(done));
}

void etcd_client::watch(std::string const& key, std::int64_t start_revision,
                        std::function<void(watch_message const&)> on_message,
                        std::function<void(etcd_error const&)> on_end) {
    impl_->watch(key, start_revision, std::move(on_message), std::move(on_end));
}

void etcd_client::close() { impl_->close(); }

}  // namespace nm
