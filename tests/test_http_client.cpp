// The HTTP client shared by the etcd and nodeos API clients, on loopback fakes: what it
// sends, how it pools, bounds and rotates, and its streams. What it does for etcd is also
// covered by test_etcd_client against a real etcd.
#define BOOST_TEST_MODULE http_client
#include <boost/test/unit_test.hpp>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "loopback.hpp"
#include "net/http_client.hpp"

namespace asio = boost::asio;
using steady = std::chrono::steady_clock;
using namespace std::chrono_literals;
using namespace nm;
using namespace nm::net;
using test::closed_port;
using test::fake_reply;
using test::fake_request;
using test::fake_server;
using test::ms_since;
using test::run_until;

namespace {

http_endpoint loopback(std::uint16_t port) { return http_endpoint{false, "127.0.0.1", port, "127.0.0.1"}; }

debug_sink test_debug() {
    if (!std::getenv("NM_TEST_DEBUG")) return [](std::string const&) {};
    return [](std::string const& line) { std::fprintf(stderr, "debug %s\n", line.c_str()); };
}

http_client make_client(asio::io_context& io, std::vector<http_endpoint> endpoints) {
    return http_client(io, std::move(endpoints), {}, "test", test_debug());
}

// A request whose result is collected, with when it came.
struct pending {
    std::optional<http_result> result;
    int calls = 0;
    long long after_ms = -1;
    steady::time_point start = steady::now();

    auto handler() {
        return [this](http_result r) {
            ++calls;
            after_ms = ms_since(start);
            result = std::move(r);
        };
    }
    bool done() const { return result.has_value(); }
};

// Sends one request and runs the loop until its handler has been called exactly once.
http_result send(asio::io_context& io, http_client& c, http_verb verb, std::string target, std::string body = {},
                 http_client::timeout t = 2s, std::size_t max_body = 1024) {
    pending p;
    c.request(verb, std::move(target), std::move(body), t, max_body, p.handler());
    BOOST_TEST(p.calls == 0);  // never called back from inside the call
    BOOST_REQUIRE_MESSAGE(run_until(io, [&] { return p.done(); }, 5s), "no answer in time");
    io.restart();
    io.poll();
    BOOST_TEST(p.calls == 1);
    return *p.result;
}

http_answer const& answer_of(http_result const& r) {
    if (auto const* f = std::get_if<http_failure>(&r)) BOOST_FAIL("unexpected failure: " << describe(*f));
    return std::get<http_answer>(r);
}

http_failure const& failure_of(http_result const& r) {
    BOOST_REQUIRE_MESSAGE(std::holds_alternative<http_failure>(r), "expected a failure");
    return std::get<http_failure>(r);
}

fake_reply keep_alive(std::string const& status_line, std::string const& body, std::chrono::milliseconds delay = {}) {
    return fake_reply{{test::answer_text(status_line, body)}, delay, fake_reply::then::next};
}

// What a stream delivered.
struct stream_log {
    std::string data;
    std::vector<stream_end> ends;
    int data_calls = 0;

    stream_handlers handlers() {
        return stream_handlers{[this](std::string_view bytes) {
                                   ++data_calls;
                                   data.append(bytes);
                               },
                               [this](stream_end const& e) { ends.push_back(e); }};
    }
};

stream_request stream_to(std::string target) {
    return stream_request{"feed", http_verb::post, std::move(target), "{}", 2s, 1024};
}

std::string const chunked_header = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

}  // namespace

// --- requests ------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(requests_as_sent) {
    asio::io_context io;
    fake_server server(io, [](fake_request const&) { return keep_alive("HTTP/1.1 200 OK", "{}"); });
    auto client = make_client(io, {loopback(server.port())});
    answer_of(send(io, client, http_verb::get, "/v1/chain/get_info"));
    answer_of(send(io, client, http_verb::post, "/v3/lease/grant", R"({"TTL":5})"));
    answer_of(send(io, client, http_verb::post, "/v1/producer/pause"));
    BOOST_REQUIRE(server.requests.size() == 3u);
    auto const& get = server.requests[0];
    BOOST_TEST(get.method == "GET");
    BOOST_TEST(get.target == "/v1/chain/get_info");
    BOOST_TEST(get.head.find("Host: 127.0.0.1:" + std::to_string(server.port()) + "\r\n") != std::string::npos);
    BOOST_TEST(get.head.find("Content-Type") == std::string::npos);
    BOOST_TEST(get.head.find("Content-Length") == std::string::npos);
    auto const& post = server.requests[1];
    BOOST_TEST(post.method == "POST");
    BOOST_TEST(post.body == R"({"TTL":5})");
    BOOST_TEST(post.head.find("Content-Type: application/json\r\n") != std::string::npos);
    auto const& empty = server.requests[2];
    BOOST_TEST(empty.body.empty());
    BOOST_TEST(empty.head.find("Content-Length: 0\r\n") != std::string::npos);
    BOOST_TEST(empty.head.find("Content-Type") == std::string::npos);
    BOOST_TEST(server.connections == 1);  // one after the other on one kept-alive connection
}

BOOST_AUTO_TEST_CASE(any_status_is_an_answer) {
    asio::io_context io;
    fake_server server(io, [](fake_request const& r) {
        if (r.target == "/missing") return keep_alive("HTTP/1.1 404 Not Found", R"({"code":404})");
        return keep_alive("HTTP/1.1 500 Internal Server Error", "oops");
    });
    auto client = make_client(io, {loopback(server.port()), loopback(closed_port())});
    auto const missing = answer_of(send(io, client, http_verb::get, "/missing"));
    BOOST_TEST(missing.status == 404);
    BOOST_TEST(missing.body == R"({"code":404})");
    BOOST_TEST(missing.endpoint_index == 0u);
    auto const failed = answer_of(send(io, client, http_verb::get, "/fail"));
    BOOST_TEST(failed.status == 500);
    BOOST_TEST(failed.body == "oops");
    BOOST_TEST(client.current() == 0u);  // what an answer means is the caller's to judge
}

BOOST_AUTO_TEST_CASE(answers_are_bounded) {
    asio::io_context io;
    fake_server server(io, [](fake_request const& r) {
        return keep_alive("HTTP/1.1 200 OK", std::string(r.target == "/big" ? 1025 : 1024, 'x'));
    });
    auto client = make_client(io, {loopback(server.port())});
    BOOST_TEST(answer_of(send(io, client, http_verb::get, "/fits")).body.size() == 1024u);
    auto const f = failure_of(send(io, client, http_verb::get, "/big"));
    BOOST_TEST((f.what == http_failure::kind::too_large));
    BOOST_TEST_MESSAGE("too large: " << describe(f));
    // A chunked body is bounded the same way.
    fake_server chunked(io, {chunked_header + test::chunk(std::string(1000, 'x')) + test::chunk(std::string(1000, 'x')) +
                             test::chunk("")});
    auto client2 = make_client(io, {loopback(chunked.port())});
    BOOST_TEST((failure_of(send(io, client2, http_verb::get, "/")).what == http_failure::kind::too_large));
}

BOOST_AUTO_TEST_CASE(a_line_without_end_is_cut_at_the_buffer_limit) {
    // A chunk-size line that never ends (an endless chunk extension): the bytes read but not
    // yet parsed are bounded, so the request fails as too large well before its deadline,
    // instead of buffering all it is sent.
    asio::io_context io;
    std::string const endless = chunked_header + "1;x=" + std::string(1024 * 1024, 'a');
    fake_server server(io, {endless}, /*hold_open=*/true);
    auto client = make_client(io, {loopback(server.port())});
    auto const start = steady::now();
    auto const f = failure_of(send(io, client, http_verb::get, "/", {}, 4s));
    BOOST_TEST((f.what == http_failure::kind::too_large), describe(f));
    BOOST_TEST(ms_since(start) < 2000);
    // A stream the same: it has no deadline once its header is read.
    stream_log log;
    auto stream = client.open_stream(stream_to("/"), log.handlers());
    BOOST_REQUIRE(run_until(io, [&] { return !log.ends.empty(); }, 3s));
    BOOST_TEST((log.ends[0].what == stream_end::kind::failed));
    BOOST_TEST((log.ends[0].failure.what == http_failure::kind::too_large), describe(log.ends[0].failure));
}

BOOST_AUTO_TEST_CASE(a_trickled_answer_ends_at_its_deadline) {
    // One byte every 20 ms: every read makes progress, and still the request ends at its
    // deadline, not when the answer is complete (about 2 s later).
    asio::io_context io;
    auto const text = test::answer_text("HTTP/1.1 200 OK", std::string(60, 'x'));
    std::vector<std::string> bytes;
    for (char ch : text) bytes.emplace_back(1, ch);
    fake_server server(io, bytes);
    auto client = make_client(io, {loopback(server.port())});
    auto const start = steady::now();
    auto const f = failure_of(send(io, client, http_verb::get, "/", {}, 500ms));
    auto const took = ms_since(start);
    BOOST_TEST((f.what == http_failure::kind::timeout), describe(f));
    BOOST_TEST(took >= 450);
    BOOST_TEST(took < 1000);
}

BOOST_AUTO_TEST_CASE(a_busy_connection_is_not_waited_for) {
    asio::io_context io;
    fake_server server(io, [](fake_request const& r) {
        if (r.target == "/hang") return fake_reply{{}, {}, fake_reply::then::hold};
        return keep_alive("HTTP/1.1 200 OK", "{}");
    });
    auto client = make_client(io, {loopback(server.port())});
    answer_of(send(io, client, http_verb::get, "/warm"));  // one idle connection

    pending hung, quick;
    client.request(http_verb::get, "/hang", {}, 800ms, 1024, hung.handler());
    io.restart();
    io.run_for(100ms);
    quick.start = steady::now();
    client.request(http_verb::get, "/quick", {}, 800ms, 1024, quick.handler());
    BOOST_REQUIRE(run_until(io, [&] { return quick.done(); }, 2s));
    answer_of(*quick.result);
    BOOST_TEST(quick.after_ms < 300);
    BOOST_TEST(!hung.done());
    BOOST_REQUIRE(run_until(io, [&] { return hung.done(); }, 2s));
    BOOST_TEST((failure_of(*hung.result).what == http_failure::kind::timeout));
    BOOST_TEST(hung.after_ms >= 790);
    BOOST_TEST(hung.after_ms < 1200);
    BOOST_TEST(server.connections == 2);
    // The timed-out connection is not reused: the next request goes over the idle one.
    answer_of(send(io, client, http_verb::get, "/again"));
    BOOST_TEST(server.connections == 2);
}

BOOST_AUTO_TEST_CASE(rotation) {
    asio::io_context io;
    fake_server server(io, [](fake_request const&) { return keep_alive("HTTP/1.1 200 OK", "{}"); });
    auto client = make_client(io, {loopback(closed_port()), loopback(server.port())});
    BOOST_TEST(client.current() == 0u);
    auto const f = failure_of(send(io, client, http_verb::get, "/"));
    BOOST_TEST((f.what == http_failure::kind::transport));
    BOOST_TEST(f.endpoint_index == 0u);
    BOOST_TEST(client.current() == 0u);  // whether the endpoint is to blame is the caller's to judge
    // A caller's blame moves the client on once, however many failures report it.
    client.rotate_from(0, "no answer");
    BOOST_TEST(client.current() == 1u);
    BOOST_TEST(answer_of(send(io, client, http_verb::get, "/")).endpoint_index == 1u);
    client.rotate_from(0, "stale report");
    BOOST_TEST(client.current() == 1u);
    client.rotate_from(1, "answered 503");
    BOOST_TEST(client.current() == 0u);
    client.rotate_from(1, "answered 503 again");
    BOOST_TEST(client.current() == 0u);
    BOOST_TEST(client.endpoints().size() == 2u);
    BOOST_TEST(describe(client.endpoints()[1]) == "127.0.0.1:" + std::to_string(server.port()));
}

BOOST_AUTO_TEST_CASE(a_request_to_a_chosen_endpoint_and_a_move) {
    asio::io_context io;
    fake_server server(io, [](fake_request const&) { return keep_alive("HTTP/1.1 200 OK", "{}"); });
    auto client = make_client(io, {loopback(server.port()), loopback(closed_port()), loopback(server.port())});
    auto to = [&](std::size_t endpoint) {
        pending p;
        client.request_to(endpoint, http_verb::post, "/v3/maintenance/status", "{}", {}, 2s, 1024, p.handler());
        BOOST_REQUIRE_MESSAGE(run_until(io, [&] { return p.done(); }, 5s), "no answer in time");
        return *p.result;
    };
    BOOST_TEST(answer_of(to(2)).endpoint_index == 2u);
    // Another endpoint than the current one failing takes nothing from the current one.
    BOOST_TEST(failure_of(to(1)).endpoint_index == 1u);
    BOOST_TEST(client.current() == 0u);
    client.move_to(2, "a test");
    BOOST_TEST(client.current() == 2u);
    BOOST_TEST(answer_of(send(io, client, http_verb::get, "/")).endpoint_index == 2u);
    client.move_to(7, "out of range");  // ignored
    BOOST_TEST(client.current() == 2u);
}

BOOST_AUTO_TEST_CASE(no_endpoint_throws) {
    asio::io_context io;
    BOOST_CHECK_THROW(http_client(io, {}, {}, "test"), std::runtime_error);
    BOOST_CHECK_THROW(http_client(io, {http_endpoint{true, "localhost", 1, "127.0.0.1"}}, tls_files{"/nonexistent/ca.pem", "", ""},
                                  "test"),
                      std::runtime_error);
}

// --- streams -------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(stream_delivers_bytes_in_order_then_its_end) {
    asio::io_context io;
    fake_server server(io, {chunked_header + test::chunk("one\ntw"), test::chunk("o\n") + test::chunk("three\n"),
                            test::chunk("")});
    auto client = make_client(io, {loopback(server.port())});
    stream_log log;
    auto stream = client.open_stream(stream_to("/feed"), log.handlers());
    BOOST_TEST(log.data_calls == 0);  // never called back from inside open_stream()
    BOOST_REQUIRE(run_until(io, [&] { return !log.ends.empty(); }, 3s));
    BOOST_TEST(log.data == "one\ntwo\nthree\n");
    BOOST_TEST(log.data_calls >= 2);
    BOOST_TEST((log.ends[0].what == stream_end::kind::finished));
    BOOST_TEST(server.requests[0].target == "/feed");
    BOOST_TEST(server.requests[0].body == "{}");
    io.restart();
    io.run_for(50ms);
    BOOST_TEST(log.ends.size() == 1u);

    // Closed by the server without the last chunk: a failure, after the bytes it sent.
    fake_server cut(io, {chunked_header + test::chunk("partial")});
    auto client2 = make_client(io, {loopback(cut.port())});
    stream_log log2;
    auto stream2 = client2.open_stream(stream_to("/"), log2.handlers());
    BOOST_REQUIRE(run_until(io, [&] { return !log2.ends.empty(); }, 3s));
    BOOST_TEST(log2.data == "partial");
    BOOST_TEST((log2.ends[0].what == stream_end::kind::failed));
    BOOST_TEST((log2.ends[0].failure.what == http_failure::kind::transport));
    BOOST_TEST(log2.ends[0].failure.message.rfind("read feed 127.0.0.1:", 0) == 0u, log2.ends[0].failure.message);
}

BOOST_AUTO_TEST_CASE(stream_refused_or_not_a_stream) {
    asio::io_context io;
    fake_server refusing(io, {test::answer_text("HTTP/1.1 503 Service Unavailable", R"({"message":"no leader"})")});
    auto client = make_client(io, {loopback(refusing.port())});
    stream_log log;
    auto stream = client.open_stream(stream_to("/"), log.handlers());
    BOOST_REQUIRE(run_until(io, [&] { return !log.ends.empty(); }, 3s));
    BOOST_TEST((log.ends[0].what == stream_end::kind::refused));
    BOOST_TEST(log.ends[0].refusal.status == 503);
    BOOST_TEST(log.ends[0].refusal.body == R"({"message":"no leader"})");
    BOOST_TEST(log.data.empty());
    BOOST_TEST(client.current() == 0u);  // the owner decides whether that blames the endpoint

    fake_server plain(io, {test::answer_text("HTTP/1.1 200 OK", "{}")});
    auto client2 = make_client(io, {loopback(plain.port())});
    stream_log log2;
    auto stream2 = client2.open_stream(stream_to("/"), log2.handlers());
    BOOST_REQUIRE(run_until(io, [&] { return !log2.ends.empty(); }, 3s));
    BOOST_TEST((log2.ends[0].what == stream_end::kind::not_chunked));

    // Nobody answers: the opening deadline ends it.
    asio::ip::tcp::acceptor blackhole(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    auto client3 = make_client(io, {loopback(blackhole.local_endpoint().port())});
    stream_log log3;
    auto request = stream_to("/");
    request.open_timeout = 300ms;
    auto const start = steady::now();
    auto stream3 = client3.open_stream(request, log3.handlers());
    BOOST_REQUIRE(run_until(io, [&] { return !log3.ends.empty(); }, 3s));
    BOOST_TEST((log3.ends[0].failure.what == http_failure::kind::timeout));
    BOOST_TEST(ms_since(start) >= 290);
    BOOST_TEST(ms_since(start) < 1000);
    BOOST_TEST(client3.current() == 0u);
}

BOOST_AUTO_TEST_CASE(closing_a_stream_silences_it) {
    asio::io_context io;
    std::vector<std::string> pieces{chunked_header};
    for (int i = 0; i < 10; ++i) pieces.push_back(test::chunk("tick\n"));
    fake_server server(io, pieces, /*hold_open=*/true);
    auto client = make_client(io, {loopback(server.port())});

    // Closed from its own on_data.
    http_stream stream;
    stream_log log;
    auto handlers = log.handlers();
    stream = client.open_stream(stream_to("/"),
                                stream_handlers{[&](std::string_view bytes) {
                                                    handlers.on_data(bytes);
                                                    stream.close();
                                                },
                                                handlers.on_end});
    BOOST_REQUIRE(run_until(io, [&] { return log.data_calls > 0; }, 3s));
    io.restart();
    io.run_for(300ms);
    BOOST_TEST(log.data_calls == 1);
    BOOST_TEST(log.ends.empty());

    // Destroyed, or replaced by another, while it streams.
    stream_log dropped, replaced, current;
    {
        auto gone = client.open_stream(stream_to("/"), dropped.handlers());
        BOOST_REQUIRE(run_until(io, [&] { return dropped.data_calls > 0; }, 3s));
    }
    auto next = client.open_stream(stream_to("/"), replaced.handlers());
    BOOST_REQUIRE(run_until(io, [&] { return replaced.data_calls > 0; }, 3s));
    next = client.open_stream(stream_to("/"), current.handlers());
    auto const seen = replaced.data_calls;
    BOOST_REQUIRE(run_until(io, [&] { return current.data_calls > 1; }, 3s));
    BOOST_TEST(dropped.data_calls == 1);
    BOOST_TEST(replaced.data_calls == seen);
    BOOST_TEST(dropped.ends.empty());
    BOOST_TEST(replaced.ends.empty());

    // Closing the client silences the rest, streams and requests alike.
    pending request;
    fake_server silent(io, [](fake_request const&) { return fake_reply{{}, {}, fake_reply::then::hold}; });
    auto client2 = make_client(io, {loopback(silent.port())});
    client2.request(http_verb::get, "/", {}, 300ms, 1024, request.handler());
    auto quiet = client2.open_stream(stream_to("/"), dropped.handlers());
    client.close();
    io.restart();
    io.run_for(50ms);
    client2.close();
    client2.request(http_verb::get, "/", {}, 300ms, 1024, request.handler());  // ignored after close()
    auto const after_close = client2.open_stream(stream_to("/"), dropped.handlers());
    auto const calls = current.data_calls;
    io.restart();
    io.run_for(500ms);
    BOOST_TEST(current.data_calls == calls);
    BOOST_TEST(current.ends.empty());
    BOOST_TEST(request.calls == 0);
    BOOST_TEST(dropped.ends.empty());
}

// Last: nothing above may have started a thread.
BOOST_AUTO_TEST_CASE(single_thread) { BOOST_TEST(test::threads_line() == "Threads:\t1"); }
