// The HTTP endpoint (/metrics, /healthz, /status, /producer, /standby): anyone who can reach
// its port can send it anything. The monitor's own endpoint (operations, on a real
// http_server on the loop) is fed the input over a loopback connection; it must answer with
// a well-formed reply or close, never crash, and never stall the loop.
//
// Input: the bytes a client sends before it shuts its side of the connection.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "check.hpp"
#include "core/failover.hpp"
#include "ops/operations.hpp"

using namespace nm;
using nm::fuzz::require;

namespace {

struct endpoint {
    boost::asio::io_context io;
    failover core{policy::from(policy::settings{}), identity{"bp1", "fuzz"}};
    std::uint16_t port = 0;
    std::unique_ptr<operations> ops;
};
endpoint* server = nullptr;

// A free loopback port: bound by the kernel's choice, then let go for the endpoint to take.
std::uint16_t free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof a;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &length) != 0)
        std::abort();
    ::close(fd);
    return ntohs(a.sin_port);
}

int connect_to(std::uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    // Loopback: the kernel completes the handshake against the listening socket at once.
    // After millions of connections it may run short of local ports for a moment (one
    // long run stopped so, at 5,056,685 runs): that is this harness's trouble, not the
    // endpoint's, so it waits and tries again before it gives up, saying why.
    for (int attempt = 0;; ++attempt) {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
            ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
            return fd;
        }
        int const e = errno;
        if (fd >= 0) ::close(fd);
        if (attempt == 200) {
            std::fprintf(stderr, "the harness cannot connect to the endpoint: %s\n", std::strerror(e));
            std::abort();
        }
        ::usleep(10000);
    }
}

// Closed with a reset: neither side keeps the connection in TIME_WAIT, so millions of
// runs do not use up the loopback's ports.
void drop(int fd) {
    linger l{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    ::close(fd);
}

void check_reply(std::string const& reply) {
    if (reply.empty()) return;  // the endpoint closed without a word: the client had not finished a request
    require(reply.starts_with("HTTP/") && reply.size() > 12 && reply[6] == '.' && reply[8] == ' ', "a reply starts with a status line");
    auto const status = std::string_view(reply).substr(9, 4);
    require(status == "200 " || status == "400 " || status == "404 " || status == "405 " || status == "503 ",
            "the status is one the endpoint gives");
    require(reply.find("\r\n\r\n") != std::string::npos, "a reply has a whole header");
    // HTTP/1.1 keeps connections open unless told: the endpoint serves one request per connection.
    if (reply.starts_with("HTTP/1.1 "))
        require(reply.find("\r\nConnection: close\r\n") != std::string::npos, "an HTTP/1.1 reply says it closes");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    server = new endpoint;
    server->port = free_port();
    server->ops = std::make_unique<operations>(
        server->io, operations::settings{"bp1", "eos", std::pair<std::string, std::uint16_t>{"127.0.0.1", server->port}},
        server->core, [] { return std::optional<operations::process>{}; });  // no nodeos runs
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    int const fd = connect_to(server->port);
    auto const deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    std::size_t sent = 0;
    bool shut = false;
    std::string reply;
    char buffer[16 * 1024];
    while (true) {
        if (!shut && sent < size) {
            auto const n = ::send(fd, data + sent, size - sent, MSG_NOSIGNAL);
            if (n > 0) sent += static_cast<std::size_t>(n);
            else if (errno != EAGAIN && errno != EWOULDBLOCK) shut = true;  // the endpoint closed: it read enough
        }
        if (!shut && sent == size) {
            ::shutdown(fd, SHUT_WR);
            shut = true;
        }
        auto const n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n > 0) {
            reply.append(buffer, static_cast<std::size_t>(n));
            continue;
        }
        if (n == 0) break;                                  // answered (or not) and closed
        if (errno != EAGAIN && errno != EWOULDBLOCK) break;  // reset: it closed with bytes unread
        require(std::chrono::steady_clock::now() < deadline, "the endpoint answers or closes within its deadline");
        server->io.run_one_for(std::chrono::milliseconds(10));
    }
    drop(fd);
    server->io.poll();  // the session's end, and the next accept
    check_reply(reply);
    return 0;
}
