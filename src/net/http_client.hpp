#pragma once
// An asynchronous HTTP/1.1 client on one io_context, shared by the etcd gateway client and
// the nodeos API client.
//
// Beast, Asio and OpenSSL live in http_client.cpp alone; this header keeps them out of the
// files that use the client.
//
//   request()     ─▶ an idle keep-alive connection to endpoints[current] (request_to():
//                    to the endpoint given) or a new one
//                    ─▶ one request, one answer (or a failure) before the deadline
//   open_stream() ─▶ a connection of its own ─▶ the body of a chunked 200, as it arrives
//
// Requests never wait behind each other: one that finds no idle connection opens its own,
// so a request hanging on a stuck server cannot delay the next one. Which endpoint is to
// blame for a failure or an answer is the caller's to judge: it moves the client on with
// rotate_from(), or to an endpoint of its choosing with move_to().
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace boost::asio {
class io_context;
}

// The types every client's owner names are in nm; the client's own are in nm::net, so that
// headers that include this one add few names to nm.
namespace nm {

// Where a client tells what it does on the way (endpoint changes, retries): debug detail.
using debug_sink = std::function<void(std::string const&)>;

struct http_endpoint {
    bool tls = false;
    std::string host;  // as written in the URL (brackets removed for IPv6): Host header, SNI, name check
    std::uint16_t port = 0;
    std::string address;  // numeric address the host resolved to at start-up
};

// "address:port", as logs name an endpoint.
std::string describe(http_endpoint const& e);

struct tls_files {
    std::string ca;    // empty: the system store
    std::string cert;  // empty: no client certificate
    std::string key;
};

}  // namespace nm

namespace nm::net {

enum class http_verb { get, post };

// Header fields a caller adds to a request (etcd's Authorization), sent as given.
using header_fields = std::vector<std::pair<std::string, std::string>>;

struct http_answer {
    int status = 0;
    std::string body;
    std::size_t endpoint_index = 0;  // where it came from, to move on if the caller blames that endpoint
};

// Why a request got no answer.
struct http_failure {
    enum class kind {
        transport,  // connect, TLS, write or read failed
        timeout,    // no complete answer before the deadline
        too_large,  // the answer's body is longer than the caller allows
        canceled,   // the client was closed (never passed to a handler)
    };
    kind what = kind::transport;
    std::string message;  // step, endpoint, reason: "connect 10.0.1.10:2379: Connection refused"
    std::size_t endpoint_index = 0;
    // The request was sent whole and the server closed the connection before answering
    // (etcd 3.4.23 answers a request with an invalid token so, etcd #15256).
    bool closed_without_answer = false;
};

std::string describe(http_failure const& f);

using http_result = std::variant<http_answer, http_failure>;

// How a stream ended, when it was not closed by its owner.
struct stream_end {
    enum class kind {
        failed,       // it could not be opened, or it broke: see failure
        refused,      // the answer was not 200: see refusal (its body, empty if it could not be read)
        not_chunked,  // a 200 whose body is not chunked, so not a stream
        finished,     // the server ended the body
    };
    kind what = kind::failed;
    http_failure failure;
    http_answer refusal;
    std::size_t endpoint_index = 0;
};

// A long-lived request whose answer streams in (an etcd watch).
struct stream_request {
    std::string label;  // names the stream in messages: "watch" gives "read watch header 10.0.1.10:2379: ..."
    http_verb verb = http_verb::post;
    std::string target;
    std::string body;
    std::chrono::nanoseconds open_timeout{};  // connect, TLS, write, and the answer's header (and a refusal's body)
    std::size_t max_refusal_body = 64 * 1024;
    header_fields headers;
};

struct stream_handlers {
    // Body bytes in order, cut anywhere, passed on after each read. The stream may be
    // closed, or the client closed, from inside.
    std::function<void(std::string_view)> on_data;
    // Called once when the stream ends, unless it was closed first.
    std::function<void(stream_end const&)> on_end;
};

// Owns an open stream: closing or destroying it ends the stream, and none of its handlers
// is called afterwards.
class http_stream {
public:
    http_stream() = default;
    http_stream(http_stream&&) noexcept = default;
    http_stream& operator=(http_stream&& other) noexcept;
    ~http_stream();

    void close();
    std::size_t endpoint_index() const;  // the endpoint it was opened to

private:
    friend class http_client;
    struct state;
    std::shared_ptr<state> state_;
};

class http_client {
public:
    using timeout = std::chrono::nanoseconds;
    using handler = std::function<void(http_result)>;

    // name tells the client's lines apart in the debug log ("etcd", "nodeos API").
    // Throws std::runtime_error without endpoints, or when an endpoint uses TLS and the
    // files cannot be loaded (without TLS endpoints they are not read).
    http_client(boost::asio::io_context& io, std::vector<http_endpoint> endpoints, tls_files const& tls,
                std::string name, debug_sink debug = [](std::string const&) {});
    ~http_client();  // closes
    http_client(http_client const&) = delete;
    http_client& operator=(http_client const&) = delete;

    // Sends one request to the current endpoint and calls done once with its answer, whatever
    // the status, or with why there is none: never from inside this call, never after
    // close(). A body is sent as application/json. A reused idle connection that turns out
    // closed by the server is replaced once, within the same deadline.
    void request(http_verb verb, std::string target, std::string body, timeout t, std::size_t max_body,
                 handler done);
    // The same, with header fields of the caller's.
    void request(http_verb verb, std::string target, std::string body, header_fields headers, timeout t,
                 std::size_t max_body, handler done);

    // The same, to endpoints()[endpoint] whichever is current (out of range: the current one).
    void request_to(std::size_t endpoint, http_verb verb, std::string target, std::string body,
                    header_fields headers, timeout t, std::size_t max_body, handler done);

    // Opens a stream to the current endpoint. It is not moved on from when the stream
    // fails: its owner decides whether the failure blames the endpoint.
    http_stream open_stream(stream_request request, stream_handlers handlers);

    std::vector<http_endpoint> const& endpoints() const;
    std::size_t current() const;  // the endpoint new requests and streams go to
    // Moves on to the next endpoint, unless another failure already moved on from `failed`.
    void rotate_from(std::size_t failed, std::string const& reason);
    // Sends new requests and streams to endpoints()[endpoint] from now on (reason: why, for
    // the debug log). Open streams stay where they are.
    void move_to(std::size_t endpoint, std::string const& reason);

    // Cancels every request and stream; no handler is called after this.
    void close();

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

}  // namespace nm::net
