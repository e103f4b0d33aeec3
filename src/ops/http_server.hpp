#pragma once
// A small HTTP/1.1 server for the metrics, health and status endpoints, on the monitor's
// io_context. Everything Beast lives in http_server.cpp.
//
//   acceptor ──▶ at most max_connections sessions; past that, a new connection is closed at once
//   session: read one request (header and body limits, one deadline for the whole read)
//            ──▶ handler(method, path) ──▶ write the reply (with a deadline) ──▶ close
//
// A client that sends slowly or never reads costs one session slot until its deadline;
// nothing here ever blocks the loop.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace boost::asio {
class io_context;
}

namespace nm {

struct http_reply {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
};

class http_server {
public:
    using handler = std::function<http_reply(std::string_view method, std::string_view path)>;
    struct limits {
        std::size_t max_connections = 16;
        std::chrono::milliseconds deadline{5000};  // to read a request, and again to write its reply
        std::size_t max_header = 8 * 1024;
        std::size_t max_body = 1024;
    };

    // Listens on a numeric address; throws std::system_error when it cannot.
    http_server(boost::asio::io_context& io, std::string const& address, std::uint16_t port, handler on_request,
                limits l);
    ~http_server();
    http_server(http_server const&) = delete;
    http_server& operator=(http_server const&) = delete;

    // Stops listening and drops every session; the handler is not called after this.
    void close();

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

}  // namespace nm
