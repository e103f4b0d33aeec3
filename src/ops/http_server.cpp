// The HTTP endpoint: the second of the two translation units that include Beast.
#include "ops/http_server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <set>
#include <system_error>

namespace nm {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// Errors that mean the client is gone or too slow: nothing left to answer.
bool client_gone(error_code const& ec) {
    return ec == beast::error::timeout || ec == http::error::end_of_stream || ec == asio::error::operation_aborted ||
           ec == asio::error::connection_reset || ec == asio::error::eof || ec == http::error::partial_message;
}

std::string_view path_of(std::string_view target) { return target.substr(0, target.find('?')); }

}  // namespace

struct http_server::impl : std::enable_shared_from_this<impl> {
    impl(asio::io_context& io, handler h, limits l) : io_(io), acceptor_(io), on_request_(std::move(h)), limits_(l) {}

    void listen(std::string const& address, std::uint16_t port) {
        tcp::endpoint where(asio::ip::make_address(address), port);
        acceptor_.open(where.protocol());
        acceptor_.set_option(asio::socket_base::reuse_address(true));
        acceptor_.bind(where);
        acceptor_.listen(asio::socket_base::max_listen_connections);
        asio::co_spawn(io_, accept_loop(shared_from_this()), asio::detached);
    }

    static asio::awaitable<void> accept_loop(std::shared_ptr<impl> self) {
        while (!self->closed_) {
            auto [ec, socket] = co_await self->acceptor_.async_accept(use_tuple);
            if (self->closed_) co_return;
            if (ec) {
                // Out of descriptors, say: wait rather than spin on the same error.
                asio::steady_timer pause(self->io_, std::chrono::milliseconds(100));
                co_await pause.async_wait(use_tuple);
                continue;
            }
            if (self->sessions_.size() >= self->limits_.max_connections) {
                socket.close();  // bounded: a flood of connections costs no memory
                continue;
            }
            asio::co_spawn(self->io_, serve(self, std::move(socket)), asio::detached);
        }
    }

    static asio::awaitable<void> serve(std::shared_ptr<impl> self, tcp::socket socket) {
        beast::tcp_stream stream(std::move(socket));
        self->sessions_.insert(&stream);
        co_await self->exchange(stream);
        self->sessions_.erase(&stream);
        error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream.close();
    }

    asio::awaitable<void> exchange(beast::tcp_stream& stream) {
        beast::flat_buffer buffer(limits_.max_header + limits_.max_body);
        http::request_parser<http::string_body> parser;
        parser.header_limit(static_cast<std::uint32_t>(limits_.max_header));
        parser.body_limit(limits_.max_body);
        stream.expires_after(limits_.deadline);
        auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_tuple);
        if (closed_ || (ec && client_gone(ec))) co_return;
        http_reply reply;
        unsigned version = 11;
        if (ec) {
            reply = {400, "text/plain; charset=utf-8", "bad request: " + ec.message() + "\n"};
        } else {
            auto const& req = parser.get();
            version = req.version();
            reply = on_request_(req.method_string(), path_of(req.target()));
        }
        http::response<http::string_body> res{static_cast<http::status>(reply.status), version};
        res.set(http::field::server, "nodeos-monitor");
        res.set(http::field::content_type, reply.content_type);
        res.set(http::field::cache_control, "no-store");
        res.keep_alive(false);
        res.body() = std::move(reply.body);
        res.prepare_payload();
        stream.expires_after(limits_.deadline);
        co_await http::async_write(stream, res, use_tuple);
    }

    void close() {
        closed_ = true;
        error_code ignored;
        acceptor_.close(ignored);
        for (auto* s : sessions_) s->socket().close(ignored);
    }

    asio::io_context& io_;
    tcp::acceptor acceptor_;
    handler on_request_;
    limits limits_;
    std::set<beast::tcp_stream*> sessions_;
    bool closed_ = false;
};

http_server::http_server(asio::io_context& io, std::string const& address, std::uint16_t port, handler on_request,
                         limits l)
    : impl_(std::make_shared<impl>(io, std::move(on_request), l)) {
    try {
        impl_->listen(address, port);
    } catch (boost::system::system_error const& e) {
        throw std::system_error(e.code().value(), std::system_category(), e.what());
    }
}

http_server::~http_server() { close(); }

void http_server::close() {
    if (impl_) impl_->close();
}

}  // namespace nm
