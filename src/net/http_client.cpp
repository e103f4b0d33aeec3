// The HTTP client: the one translation unit of the clients that includes Beast and OpenSSL.
//
//   request() ─co_spawn─▶ exchange(): take an idle connection to endpoint[current_] or open
//                         one, write one request, read one answer, give the connection back
//             completion: the caller's handler (unless closed)
//   open_stream() ─co_spawn─▶ run_stream(): open, write, read the header, then read the
//                         chunked body until it ends: bytes ─▶ on_data
//
// Everything runs on the caller's io_context, in its one thread. Coroutines hold the impl
// alive; close() sets closed_, closes every socket, and from then on no handler is called.
#include "net/http_client.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <exception>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <tuple>
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

namespace nm {

std::string describe(http_endpoint const& e) { return cat(e.address, ":", e.port); }

}  // namespace nm

namespace nm::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using steady = std::chrono::steady_clock;
using timeout = http_client::timeout;

// Every async call reports its error as a value: nothing is thrown inside the loop.
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

constexpr std::size_t max_idle_connections = 4;
// Bytes read but not yet parsed: a header (Beast's limit is 8 KiB) or a chunk-size line.
// Without a limit, a chunk-size line that never ends would grow the buffer without end.
constexpr std::size_t max_unparsed = 64 * 1024;
constexpr auto longest_timeout = std::chrono::hours(24);  // keeps now() + timeout from overflowing

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
    beast::flat_buffer buffer{max_unparsed};  // bytes read past the last message (none without pipelining)
    bool open = false;          // connected and, for TLS, handshaken
};

// The steps of an exchange, each of which can fail.
enum class step {
    address,        // the endpoint's numeric address
    connect,
    tls_setup,      // SNI and the name check
    tls_handshake,
    write,          // the request
    read_answer,    // a request's whole answer
    read_header,    // a stream's header, before any of its body
    read_body,      // a stream's body
};

// A failed step of an exchange: which step, and why.
struct step_error {
    error_code ec;
    step what = step::address;
    std::string detail;  // what the error code does not say: why a certificate was refused
    explicit operator bool() const { return bool(ec); }
};

// A step as messages name it ("read watch header 10.0.1.10:2379: ..."); label: the stream's.
std::string step_name(step s, std::string_view label) {
    switch (s) {
    case step::address: return "address";
    case step::connect: return "connect";
    case step::tls_setup: return "tls setup";
    case step::tls_handshake: return "tls handshake";
    case step::write: return "write";
    case step::read_answer: return "read";
    case step::read_header: return cat("read ", label, " header");
    case step::read_body: return cat("read ", label);
    }
    return "step";
}

steady::time_point deadline_after(timeout t) {
    return steady::now() + std::chrono::duration_cast<steady::duration>(std::clamp<timeout>(t, timeout::zero(), longest_timeout));
}

// The peer closed the connection (with or without TLS's close_notify, or with a reset).
bool closed_by_peer(error_code const& ec) {
    return ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
           ec == ssl::error::stream_truncated;
}

// What a server's close of an idle keep-alive connection looks like on its next use.
bool looks_stale(step_error const& f) {
    if (f.what != step::write && f.what != step::read_answer) return false;
    return closed_by_peer(f.ec) || f.ec == asio::error::broken_pipe || f.ec == asio::error::connection_aborted;
}

http_failure to_failure(step_error const& f, http_endpoint const& ep, std::size_t index, std::string_view label = {}) {
    auto kind = http_failure::kind::transport;
    if (f.ec == beast::error::timeout) kind = http_failure::kind::timeout;
    if (f.ec == http::error::body_limit) kind = http_failure::kind::too_large;
    if (f.ec == http::error::buffer_overflow) kind = http_failure::kind::too_large;
    auto message = cat(step_name(f.what, label), " ", describe(ep), ": ", f.ec.message());
    if (!f.detail.empty()) message += cat(": ", f.detail);
    http_failure out{kind, std::move(message), index};
    bool const awaiting_answer = f.what == step::read_answer || f.what == step::read_header;
    out.closed_without_answer = awaiting_answer && closed_by_peer(f.ec);
    return out;
}

bool is_ip_literal(std::string const& host) {
    error_code ec;
    asio::ip::make_address(host, ec);
    return !ec;
}

std::string host_header(http_endpoint const& ep) {
    bool const ipv6 = ep.host.find(':') != std::string::npos;
    return cat(ipv6 ? "[" : "", ep.host, ipv6 ? "]" : "", ":", ep.port);
}

char const* name_of(http_verb v) { return v == http_verb::get ? "GET" : "POST"; }

http::request<http::string_body> make_request(http_verb verb, http_endpoint const& ep, std::string_view target,
                                              std::string body, header_fields const& headers = {}) {
    http::request<http::string_body> req{verb == http_verb::get ? http::verb::get : http::verb::post, target, 11};
    req.set(http::field::host, host_header(ep));
    if (!body.empty()) req.set(http::field::content_type, "application/json");
    for (auto const& [name, value] : headers) req.set(name, value);
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

error_code last_ssl_error() { return error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category()); }

// SNI and the name check are per connection: they depend on the endpoint's host. OpenSSL
// checks the name as part of the chain's verification (as X509_check_host and
// X509_check_ip_asc), so that a mismatch is a verify result that names itself.
error_code prepare_tls(tls_stream& s, std::string const& host) {
    auto* handle = s.native_handle();
    bool const ip = is_ip_literal(host);
    if (!ip && SSL_set_tlsext_host_name(handle, host.c_str()) != 1) return last_ssl_error();
    auto* param = SSL_get0_param(handle);
    int const ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str())
                      : X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
    if (ok != 1) return last_ssl_error();
    return {};
}

// Why the server's certificate was refused ("certificate has expired", "hostname
// mismatch"); empty when it was not.
std::string verify_failure(tls_stream& s) {
    auto const result = SSL_get_verify_result(s.native_handle());
    if (result == X509_V_OK) return {};
    return X509_verify_cert_error_string(result);
}

// A stream reads nothing for minutes: let the kernel notice a silently dead peer (~11 s).
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
asio::awaitable<step_error> open_connection(connection& c, http_endpoint const& ep, steady::time_point deadline) {
    error_code ec;
    auto const address = asio::ip::make_address(ep.address, ec);
    if (ec) co_return step_error{ec, step::address};
    c.tcp().expires_at(deadline);
    std::tie(ec) = co_await c.tcp().async_connect(tcp::endpoint(address, ep.port), use_tuple);
    if (ec) co_return step_error{ec, step::connect};
    if (auto* tls = std::get_if<tls_stream>(&c.stream)) {
        if ((ec = prepare_tls(*tls, ep.host))) co_return step_error{ec, step::tls_setup};
        c.tcp().expires_at(deadline);
        std::tie(ec) = co_await tls->async_handshake(ssl::stream_base::client, use_tuple);
        if (ec) co_return step_error{ec, step::tls_handshake, verify_failure(*tls)};
    }
    c.open = true;
    co_return step_error{};
}

// In TLS 1.3 the server checks the client's certificate after the client has finished its
// handshake: a refusal arrives as an alert or a reset on the first write or read of the
// new connection, whose error code alone does not say so.
void explain_refused_tls(connection const& c, step_error& f) {
    if (!std::holds_alternative<tls_stream>(c.stream) || f.ec == beast::error::timeout) return;
    bool const alert = f.ec.category() == asio::error::get_ssl_category();
    if (!alert && !closed_by_peer(f.ec) && f.ec != asio::error::broken_pipe) return;
    f.detail = "the server ended the TLS connection right after its handshake: it may refuse the client "
               "certificate (none, expired, or from a CA it does not trust)";
}

asio::awaitable<step_error> write_request(connection& c, http::request<http::string_body> const& req,
                                          steady::time_point deadline) {
    c.tcp().expires_at(deadline);
    auto [ec, n] = co_await std::visit([&](auto& s) { return http::async_write(s, req, use_tuple); }, c.stream);
    co_return step_error{ec, step::write};
}

// What one request/answer on one connection gave.
struct round_trip_result {
    step_error failure;
    http_answer answer;
    bool reusable = false;  // the connection may carry another request
};

asio::awaitable<round_trip_result> round_trip(connection& c, http_endpoint const& ep,
                                              http::request<http::string_body> const& req, std::size_t max_body,
                                              steady::time_point deadline) {
    round_trip_result r;
    bool const fresh = !c.open;
    if (fresh && (r.failure = co_await open_connection(c, ep, deadline))) co_return r;
    if ((r.failure = co_await write_request(c, req, deadline))) {
        if (fresh) explain_refused_tls(c, r.failure);
        co_return r;
    }

    http::response_parser<http::string_body> parser;
    parser.body_limit(max_body);
    c.tcp().expires_at(deadline);
    auto [ec, n] = co_await std::visit(
        [&](auto& s) { return http::async_read(s, c.buffer, parser, use_tuple); }, c.stream);
    if (ec) {
        r.failure = step_error{ec, step::read_answer};
        if (fresh) explain_refused_tls(c, r.failure);
        co_return r;
    }
    c.tcp().expires_never();  // an idle connection must not be closed by a stale deadline
    auto& res = parser.get();
    r.answer = http_answer{static_cast<int>(res.result_int()), std::move(res.body())};
    r.reusable = res.keep_alive() && c.buffer.size() == 0;
    co_return r;
}

http_failure internal_failure(std::exception_ptr ep) {
    try {
        std::rethrow_exception(ep);
    } catch (std::exception const& e) {
        return http_failure{http_failure::kind::transport, cat("internal error: ", e.what())};
    } catch (...) {
        return http_failure{http_failure::kind::transport, "internal error"};
    }
}

}  // namespace

std::string describe(http_failure const& f) {
    auto with_message = [&](std::string head) {
        if (!f.message.empty()) head.append(": ").append(f.message);
        return head;
    };
    switch (f.what) {
    case http_failure::kind::transport: return with_message("transport error");
    case http_failure::kind::timeout: return with_message("timeout");
    case http_failure::kind::too_large: return with_message("answer too large");
    case http_failure::kind::canceled: return with_message("canceled");
    }
    return with_message("failure");
}

// --- stream state ---------------------------------------------------------------------

struct http_stream::state {
    stream_handlers handlers;
    std::shared_ptr<connection> conn;
    bool ended = false;  // closed by its owner, by the client, or over: no handler is called any more

    void close() {
        ended = true;
        conn->close();
    }
};

http_stream& http_stream::operator=(http_stream&& other) noexcept {
    if (this != &other) {
        close();
        state_ = std::move(other.state_);
    }
    return *this;
}

http_stream::~http_stream() { close(); }

void http_stream::close() {
    if (state_ && !state_->ended) state_->close();
}

std::size_t http_stream::endpoint_index() const { return state_ ? state_->conn->endpoint_index : 0; }

// --- impl -----------------------------------------------------------------------------

struct http_client::impl : std::enable_shared_from_this<impl> {
    using stream_state = http_stream::state;

    impl(asio::io_context& io, std::vector<http_endpoint> endpoints, tls_files const& files, std::string name,
         debug_sink debug)
        : io_(io), endpoints_(std::move(endpoints)), name_(std::move(name)), debug_(std::move(debug)) {
        if (endpoints_.empty()) throw std::runtime_error(cat("no ", name_, " endpoint given"));
        // Only endpoints with tls use the context; without them the files are not needed.
        bool const any_tls = std::any_of(endpoints_.begin(), endpoints_.end(), [](auto& e) { return e.tls; });
        if (any_tls) tls_ = make_tls_context(files);
    }

    // to: an endpoint of the caller's choosing; nullopt: the current one.
    void request(std::optional<std::size_t> to, http_verb verb, std::string target, std::string body,
                 header_fields headers, timeout t, std::size_t max_body, handler done) {
        if (closed_) return;
        auto self = shared_from_this();
        asio::co_spawn(io_,
                       exchange(self, to, verb, std::move(target), std::move(body), std::move(headers), max_body,
                                deadline_after(t)),
                       [self, done = std::move(done)](std::exception_ptr ep, http_result r) {
                           if (self->closed_) return;
                           if (ep) return done(internal_failure(ep));
                           done(std::move(r));
                       });
    }

    // One request: on the current endpoint (or `to`), with one retry when a reused
    // connection turns out to have been closed by the server while idle.
    static asio::awaitable<http_result> exchange(std::shared_ptr<impl> self, std::optional<std::size_t> to,
                                                 http_verb verb, std::string target, std::string body,
                                                 header_fields headers, std::size_t max_body,
                                                 steady::time_point deadline) {
        co_await asio::post(self->io_, asio::use_awaitable);  // never complete inside the caller's call
        if (self->closed_) co_return canceled();
        auto const index = to && *to < self->endpoints_.size() ? *to : self->current_;
        auto const& ep = self->endpoints_[index];
        auto const req = make_request(verb, ep, target, std::move(body), headers);
        auto conn = self->take_idle(index);
        bool reused = conn != nullptr;
        for (;;) {
            if (!conn) conn = std::make_shared<connection>(self->io_, self->tls_for(ep), index);
            self->busy_.insert(conn);
            auto r = co_await round_trip(*conn, ep, req, max_body, deadline);
            self->busy_.erase(conn);
            if (self->closed_) co_return canceled();
            if (!r.failure) {
                self->release(std::move(conn), r.reusable);
                r.answer.endpoint_index = index;
                co_return std::move(r.answer);
            }
            conn->close();
            if (reused && looks_stale(r.failure)) {
                self->debug_(cat(self->name_, " ", describe(ep), ": idle connection was closed (",
                                 r.failure.ec.message(), "); retrying on a new one"));
                conn.reset();
                reused = false;
                continue;
            }
            auto f = to_failure(r.failure, ep, index);
            self->debug_(cat(self->name_, " ", name_of(verb), " ", target, " failed: ", describe(f)));
            co_return f;
        }
    }

    static http_failure canceled() { return http_failure{http_failure::kind::canceled, "client closed"}; }

    ssl::context* tls_for(http_endpoint const& ep) const { return ep.tls ? tls_.get() : nullptr; }

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
        switch_to((current_ + 1) % endpoints_.size(), cat("endpoint ", describe(endpoints_[failed]), " failed (",
                                                          reason, ")"));
    }

    void switch_to(std::size_t index, std::string const& reason) {
        if (index == current_ || index >= endpoints_.size()) return;
        current_ = index;
        debug_(cat(name_, " ", reason, "; switching to ", describe(endpoints_[current_])));
        std::erase_if(idle_, [&](auto const& c) {
            if (c->endpoint_index == current_) return false;
            c->close();
            return true;
        });
    }

    // --- streams ---

    http_stream open_stream(stream_request request, stream_handlers handlers) {
        http_stream out;
        if (closed_) return out;
        auto s = std::make_shared<stream_state>();
        s->handlers = std::move(handlers);
        s->conn = std::make_shared<connection>(io_, tls_for(endpoints_[current_]), current_);
        streams_.insert(s);
        asio::co_spawn(io_, run_stream(shared_from_this(), s, std::move(request)), [](std::exception_ptr ep) {
            // Only a handler of the owner can throw here: let it out of run() as any handler's would.
            if (ep) std::rethrow_exception(ep);
        });
        out.state_ = std::move(s);
        return out;
    }

    bool live(stream_state const& s) const { return !closed_ && !s.ended; }

    // The stream is over: close it, and tell the owner once.
    void end_stream(std::shared_ptr<stream_state> const& s, stream_end end) {
        if (!live(*s)) return;
        s->close();
        end.endpoint_index = s->conn->endpoint_index;
        auto on_end = std::move(s->handlers.on_end);
        if (on_end) on_end(end);
    }

    static stream_end failed(http_failure f) {
        stream_end end;
        end.what = stream_end::kind::failed;
        end.failure = std::move(f);
        return end;
    }

    static asio::awaitable<void> run_stream(std::shared_ptr<impl> self, std::shared_ptr<stream_state> s,
                                            stream_request rq) {
        // However the stream ends, the client forgets it and its handlers, which may hold
        // their owner.
        struct forget {
            impl& client;
            std::shared_ptr<stream_state> const& s;
            ~forget() {
                client.streams_.erase(s);
                s->handlers = {};
            }
        } const guard{*self, s};

        co_await asio::post(self->io_, asio::use_awaitable);  // never call back inside open_stream()
        if (!self->live(*s)) co_return;
        auto& c = *s->conn;
        auto const index = c.endpoint_index;
        auto const& ep = self->endpoints_[index];
        auto const deadline = deadline_after(rq.open_timeout);

        auto failure = co_await open_connection(c, ep, deadline);
        if (!failure) {
            if (!enable_tcp_keepalive(c.tcp().socket()))
                self->debug_(cat(self->name_, " ", rq.label, ": cannot enable TCP keepalive"));
            failure = co_await write_request(c, make_request(rq.verb, ep, rq.target, std::move(rq.body), rq.headers),
                                             deadline);
        }
        if (!self->live(*s)) co_return;
        if (failure) co_return self->end_stream(s, failed(to_failure(failure, ep, index, rq.label)));

        // Chunks are collected during a read and passed on after it, so that the owner may
        // close the stream from on_data while no parser is running.
        std::string arrived;
        auto on_chunk = [&](std::uint64_t, beast::string_view data, error_code&) -> std::size_t {
            arrived.append(data.data(), data.size());
            return data.size();
        };
        http::response_parser<http::empty_body> parser;
        parser.body_limit(boost::none);  // the stream is endless; each read brings at most a buffer's worth
        parser.on_chunk_body(on_chunk);

        c.tcp().expires_at(deadline);
        auto [ec, n] = co_await std::visit(
            [&](auto& stream) { return http::async_read_header(stream, c.buffer, parser, use_tuple); }, c.stream);
        if (!self->live(*s)) co_return;
        if (ec) co_return self->end_stream(s, failed(to_failure({ec, step::read_header}, ep, index, rq.label)));
        // From here on the stream may be silent for minutes; TCP keepalive watches the peer.
        c.tcp().expires_never();
        if (parser.get().result() != http::status::ok) {
            stream_end end;
            end.what = stream_end::kind::refused;
            end.refusal = co_await read_refusal(c, std::move(parser), rq.max_refusal_body, deadline);
            end.refusal.endpoint_index = index;
            co_return self->end_stream(s, std::move(end));
        }
        if (!parser.chunked()) co_return self->end_stream(s, stream_end{stream_end::kind::not_chunked, {}, {}, index});

        for (;;) {
            std::tie(ec, n) = co_await std::visit(
                [&](auto& stream) { return http::async_read_some(stream, c.buffer, parser, use_tuple); }, c.stream);
            if (!self->live(*s)) co_return;
            // Bytes that arrived before a failure are still passed on, in order.
            if (!arrived.empty()) {
                auto const data = std::exchange(arrived, {});
                if (s->handlers.on_data) s->handlers.on_data(data);
                if (!self->live(*s)) co_return;  // the owner closed the stream or the client
            }
            if (ec) co_return self->end_stream(s, failed(to_failure({ec, step::read_body}, ep, index, rq.label)));
            if (parser.is_done()) co_return self->end_stream(s, stream_end{stream_end::kind::finished, {}, {}, index});
        }
    }

    // The server refused the stream: read its answer's body, within the opening deadline.
    static asio::awaitable<http_answer> read_refusal(connection& c, http::response_parser<http::empty_body>&& header,
                                                     std::size_t max_body, steady::time_point deadline) {
        int const status = static_cast<int>(header.get().result_int());
        std::optional<http::response_parser<http::string_body>> parser;
        try {
            parser.emplace(std::move(header));  // throws only if the body was started
        } catch (std::exception const&) {
            co_return http_answer{status, {}};
        }
        parser->body_limit(max_body);
        c.tcp().expires_at(deadline);
        auto [ec, n] = co_await std::visit(
            [&](auto& s) { return http::async_read(s, c.buffer, *parser, use_tuple); }, c.stream);
        co_return http_answer{status, ec ? std::string() : std::move(parser->get().body())};
    }

    void close() {
        if (closed_) return;
        closed_ = true;
        for (auto& c : idle_) c->close();
        idle_.clear();
        for (auto& c : busy_) c->close();  // their coroutines end at once and call no handler
        for (auto& s : streams_) s->close();
    }

    asio::io_context& io_;
    std::vector<http_endpoint> const endpoints_;
    std::string const name_;
    debug_sink debug_;
    std::unique_ptr<ssl::context> tls_;              // null when no endpoint uses TLS
    std::size_t current_ = 0;                        // endpoint that new requests and streams go to
    bool closed_ = false;                            // no handler is called once set
    std::vector<std::shared_ptr<connection>> idle_;  // keep-alive connections, most recent last
    std::set<std::shared_ptr<connection>> busy_;     // connections with a request in flight
    std::set<std::shared_ptr<stream_state>> streams_;  // open streams (each forgets itself when it ends)
};

// --- http_client ----------------------------------------------------------------------

http_client::http_client(asio::io_context& io, std::vector<http_endpoint> endpoints, tls_files const& tls,
                         std::string name, debug_sink debug)
    : impl_(std::make_shared<impl>(io, std::move(endpoints), tls, std::move(name), std::move(debug))) {}

http_client::~http_client() {
    if (impl_) impl_->close();
}

void http_client::request(http_verb verb, std::string target, std::string body, timeout t, std::size_t max_body,
                          handler done) {
    impl_->request(std::nullopt, verb, std::move(target), std::move(body), {}, t, max_body, std::move(done));
}

void http_client::request(http_verb verb, std::string target, std::string body, header_fields headers, timeout t,
                          std::size_t max_body, handler done) {
    impl_->request(std::nullopt, verb, std::move(target), std::move(body), std::move(headers), t, max_body,
                   std::move(done));
}

void http_client::request_to(std::size_t endpoint, http_verb verb, std::string target, std::string body,
                             header_fields headers, timeout t, std::size_t max_body, handler done) {
    impl_->request(endpoint, verb, std::move(target), std::move(body), std::move(headers), t, max_body,
                   std::move(done));
}

http_stream http_client::open_stream(stream_request request, stream_handlers handlers) {
    return impl_->open_stream(std::move(request), std::move(handlers));
}

std::vector<http_endpoint> const& http_client::endpoints() const { return impl_->endpoints_; }

std::size_t http_client::current() const { return impl_->current_; }

void http_client::rotate_from(std::size_t failed, std::string const& reason) { impl_->rotate_from(failed, reason); }

void http_client::move_to(std::size_t endpoint, std::string const& reason) { impl_->switch_to(endpoint, reason); }

void http_client::close() { impl_->close(); }

}  // namespace nm::net
