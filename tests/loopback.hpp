#pragma once
// Helpers of the client tests that run a real loop on loopback sockets: a bounded run of
// the loop, a port nothing listens on, and a scripted HTTP server for what a healthy server
// never does (a silent peer, a connection closed while idle, an answer cut at odd places).
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace nm::test {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;

inline long long ms_since(steady::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - start).count();
}

// Runs the loop until done() holds, the loop runs out of work, or the limit passes.
inline bool run_until(asio::io_context& io, std::function<bool()> const& done, steady::duration limit) {
    io.restart();
    auto const deadline = steady::now() + limit;
    while (!done()) {
        if (io.run_one_until(deadline) == 0) break;
    }
    return done();
}

// A loopback port nothing listens on.
inline std::uint16_t closed_port() {
    asio::io_context io;
    tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    return a.local_endpoint().port();
}

// "Threads:\t1" when the process runs one thread, from /proc/self/status.
inline std::string threads_line() {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("Threads:", 0) == 0) return line;
    return {};
}

// An HTTP answer with a Content-Length body.
inline std::string answer_text(std::string const& status_line, std::string const& body) {
    return status_line + "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\n\r\n" + body;
}

// One chunk of a chunked body.
inline std::string chunk(std::string const& data) {
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    return size + data + "\r\n";
}

// One request as the server read it.
struct fake_request {
    std::string method;
    std::string target;
    std::string head;  // request line and header fields
    std::string body;
    int connection = 0;  // 1 for the first connection accepted, and so on
};

// What the server does with one request.
struct fake_reply {
    std::vector<std::string> pieces;      // written in order, 20 ms apart so that they arrive in separate reads
    std::chrono::milliseconds delay{0};   // before the first piece
    enum class then {
        next,   // read the next request on the connection (keep-alive)
        close,  // close the connection
        hold,   // keep it open and say nothing more
    } after = then::close;
};

class fake_server {
public:
    using script = std::function<fake_reply(fake_request const&)>;

    fake_server(asio::io_context& io, script reply)
        : acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)), reply_(std::move(reply)) {
        accept();
    }
    // Sends the same pieces after each request, then closes the connection unless told to
    // hold it open.
    fake_server(asio::io_context& io, std::vector<std::string> pieces, bool hold_open = false)
        : fake_server(io, [pieces = std::move(pieces), hold_open](fake_request const&) {
              return fake_reply{pieces, {}, hold_open ? fake_reply::then::hold : fake_reply::then::close};
          }) {}

    std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

    int connections = 0;
    std::vector<fake_request> requests;

private:
    void accept() {
        acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket s) {
            if (ec) return;
            asio::co_spawn(acceptor_.get_executor(), serve(std::move(s), ++connections), asio::detached);
            accept();
        });
    }

    static std::size_t content_length(std::string const& head) {
        auto const name = std::string("content-length:");
        std::string lower;
        for (char ch : head) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        auto at = lower.find(name);
        return at == std::string::npos ? 0 : std::stoul(head.substr(at + name.size()));
    }

    // Reads one request (header and body); buffer keeps what follows it.
    static asio::awaitable<std::optional<fake_request>> read_request(tcp::socket& s, std::string& buffer) {
        constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
        auto [ec, n] = co_await asio::async_read_until(s, asio::dynamic_buffer(buffer), "\r\n\r\n", use_tuple);
        if (ec) co_return std::nullopt;
        fake_request r;
        r.head = buffer.substr(0, n);
        auto const want = content_length(r.head);
        if (buffer.size() - n < want) {
            auto [ec2, m] = co_await asio::async_read(s, asio::dynamic_buffer(buffer),
                                                      asio::transfer_exactly(want - (buffer.size() - n)), use_tuple);
            if (ec2) co_return std::nullopt;
        }
        r.body = buffer.substr(n, want);
        buffer.erase(0, n + want);
        auto const space = r.head.find(' ');
        r.method = r.head.substr(0, space);
        r.target = r.head.substr(space + 1, r.head.find(' ', space + 1) - space - 1);
        co_return r;
    }

    asio::awaitable<void> serve(tcp::socket s, int id) {
        constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
        std::string buffer;
        asio::steady_timer pause(s.get_executor());
        for (;;) {
            auto request = co_await read_request(s, buffer);
            if (!request) co_return;
            request->connection = id;
            requests.push_back(*request);
            auto const reply = reply_(*request);
            if (reply.delay.count() > 0) {
                pause.expires_after(reply.delay);
                co_await pause.async_wait(use_tuple);
            }
            for (auto const& piece : reply.pieces) {
                auto [ec, n] = co_await asio::async_write(s, asio::buffer(piece), use_tuple);
                if (ec) co_return;
                pause.expires_after(std::chrono::milliseconds(20));
                co_await pause.async_wait(use_tuple);
            }
            if (reply.after == fake_reply::then::next) continue;
            if (reply.after == fake_reply::then::hold) {
                held_.push_back(std::move(s));
                co_return;
            }
            boost::system::error_code ignored;
            s.shutdown(tcp::socket::shutdown_both, ignored);
            s.close(ignored);
            co_return;
        }
    }

    tcp::acceptor acceptor_;
    script reply_;
    std::vector<tcp::socket> held_;
};

}  // namespace nm::test
