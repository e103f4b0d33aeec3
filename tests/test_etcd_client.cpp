// The gateway client against a real etcd (URL in NM_TEST_ETCD, set by run_with_etcd.py),
// plus a few loopback fakes for what a healthy etcd never does: a silent peer, a server
// that closes idle connections, a watch stream cut at odd places.
#define BOOST_TEST_MODULE etcd_client
#include <boost/test/unit_test.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "etcd/etcd_client.hpp"
#include "etcd_calls.hpp"
#include "loopback.hpp"
#include "result_checks.hpp"
#include "core/text.hpp"

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;
using namespace std::chrono_literals;
using namespace nm;

namespace {

using test::closed_port;
using test::fake_server;
using test::ms_since;
using test::run_until;
using test::keepalive;
using test::loopback;
using test::test_debug;
using test::wait_for;
using test::watch_log;

constexpr auto request_timeout = 5s;

// NM_TEST_ETCD is http://127.0.0.1:PORT, or https://HOST:PORT with the client's files in
// NM_TEST_ETCD_CA, NM_TEST_ETCD_CERT and NM_TEST_ETCD_KEY. HOST is connected to at
// NM_TEST_ETCD_ADDRESS when set, else 127.0.0.1 for localhost, else HOST itself.
endpoint etcd_endpoint() {
    char const* url = std::getenv("NM_TEST_ETCD");
    BOOST_REQUIRE_MESSAGE(url, "NM_TEST_ETCD is not set: run this test through tests/run_with_etcd.py");
    std::string text(url);
    bool const tls = text.rfind("https://", 0) == 0;
    BOOST_REQUIRE(tls || text.rfind("http://", 0) == 0);
    auto const host_start = text.find("//") + 2;
    auto const colon = text.rfind(':');
    auto host = text.substr(host_start, colon - host_start);
    auto port = static_cast<std::uint16_t>(std::stoi(text.substr(colon + 1)));
    std::string address = host == "localhost" ? "127.0.0.1" : host;
    if (char const* a = std::getenv("NM_TEST_ETCD_ADDRESS")) address = a;
    return endpoint{tls, host, port, address};
}

tls_files etcd_tls() {
    auto env = [](char const* name) { return std::string(std::getenv(name) ? std::getenv(name) : ""); };
    return tls_files{env("NM_TEST_ETCD_CA"), env("NM_TEST_ETCD_CERT"), env("NM_TEST_ETCD_KEY")};
}

std::string unique_key(std::string const& name) {
    return "/nm-test/" + name + "/" + std::to_string(::getpid()) + "/" +
           std::to_string(steady::now().time_since_epoch().count());
}

using test::value_of;
using test::error_of;

lease_grant grant(asio::io_context& io, etcd_client& c, std::int64_t ttl = 10) {
    return value_of(wait_for<lease_grant>(io, [&](auto done) { c.grant(ttl, request_timeout, done); }));
}

etcd_result<std::monostate> revoke(asio::io_context& io, etcd_client& c, std::int64_t lease) {
    return wait_for<std::monostate>(io, [&](auto done) { c.revoke(lease, request_timeout, done); });
}

etcd_result<campaign_reply> campaign(asio::io_context& io, etcd_client& c, std::string const& key,
                                     std::string const& value, std::int64_t lease) {
    return wait_for<campaign_reply>(io, [&](auto done) { c.campaign(key, value, lease, request_timeout, done); });
}

// --- loopback fakes (test::fake_server) ---

// What a member without a leader answers, with HTTP 503.
std::string const no_leader_answer =
    test::answer_text("HTTP/1.1 503 Service Unavailable", R"({"error":"etcdserver: no leader","message":"etcdserver: no leader","code":14})");
// The start of a watch stream: the header, and the line that says the watch is created.
std::string const watch_header = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
std::string const watch_created = R"({"result":{"header":{"revision":"5"},"created":true}})" "\n";

}  // namespace

// --- against the real etcd -------------------------------------------------------------

BOOST_AUTO_TEST_CASE(grant_and_keepalive) {
    asio::io_context io;
    etcd_client client(io, {etcd_endpoint()}, etcd_tls(), test_debug());
    auto lease = grant(io, client, 5);
    BOOST_TEST(lease.id != 0);
    BOOST_TEST(lease.ttl_seconds == 5);
    // Several keepalives, one after the other on the same kept-alive connection.
    for (int i = 0; i < 3; ++i) {
        auto k = value_of(keepalive(io, client, lease.id));
        BOOST_REQUIRE(k.ttl_seconds.has_value());
        BOOST_TEST(*k.ttl_seconds == 5);
    }
    BOOST_TEST(std::holds_alternative<std::monostate>(revoke(io, client, lease.id)));
}

// The monitor asks for a lease ID of its choosing, and again for the same one when it had
// no answer (L13): etcd grants it once, then says it exists.
BOOST_AUTO_TEST_CASE(grant_of_a_chosen_id_then_exists) {
    asio::io_context io;
    etcd_client client(io, {etcd_endpoint()}, etcd_tls(), test_debug());
    std::int64_t const id = 0x5eed0000 + ::getpid();
    auto ask = [&] { return wait_for<lease_grant>(io, [&](auto done) { client.grant(5, id, request_timeout, done); }); };
    auto const lease = value_of(ask());
    BOOST_TEST(lease.id == id);
    auto const again = error_of(ask());
    BOOST_TEST((kind_of(again) == failure::exists), describe(again));
    BOOST_TEST(value_of(keepalive(io, client, id)).ttl_seconds.has_value());
    BOOST_TEST(std::holds_alternative<std::monostate>(revoke(io, client, id)));
}

// A monitor given a user while etcd has authentication off: etcd says so when asked for a
// token (HTTP 412), and every request goes without one.
BOOST_AUTO_TEST_CASE(a_user_for_an_etcd_without_authentication) {
    asio::io_context io;
    std::vector<std::string> reports;
    etcd_client client(io, {etcd_endpoint()}, etcd_tls(), etcd_credentials{"bp", "secret"}, test_debug(),
                       [&](level, std::string const& text) { reports.push_back(text); });
    auto lease = grant(io, client, 5);
    auto const key = unique_key("no-auth");
    BOOST_TEST(value_of(campaign(io, client, key, "node-a", lease.id)).won);
    BOOST_TEST(std::holds_alternative<std::monostate>(revoke(io, client, lease.id)));
    BOOST_TEST_REQUIRE(reports.size() == 1u);
    BOOST_TEST(reports[0] == "etcd has authentication disabled: user bp is not used, requests go without a token");
}

BOOST_AUTO_TEST_CASE(concurrent_requests) {
    asio::io_context io;
    etcd_client client(io, {etcd_endpoint()}, etcd_tls(), test_debug());
    int answers = 0;
    for (int i = 0; i < 8; ++i)
        client.grant(5, request_timeout, [&](etcd_result<lease_grant> r) {
            BOOST_TEST(std::holds_alternative<lease_grant>(r));
            ++answers;
        });
    BOOST_TEST(run_until(io, [&] { return answers == 8; }, 10s));
}

BOOST_AUTO_TEST_CASE(campaign_win_lose_and_watch) {
    asio::io_context io;
    etcd_client client(io, {etcd_endpoint()}, etcd_tls(), test_debug());
    auto const key = unique_key("campaign");
    auto a = grant(io, client);
    auto b = grant(io, client);

    auto won = value_of(campaign(io, client, key, "node-a", a.id));
    BOOST_TEST(won.won);
    BOOST_TEST(won.revision > 0);

    auto lost = value_of(campaign(io, client, key, "node-b", b.id));
    BOOST_TEST(!lost.won);
    BOOST_REQUIRE(lost.holder.has_value());
    BOOST_TEST(lost.holder->key == key);
    BOOST_TEST(lost.holder->value == "node-a");
    BOOST_TEST(lost.holder->lease == a.id);
    BOOST_TEST(lost.holder->mod_revision == won.revision);

    watch_log log;
    client.watch(key, "", lost.revision + 1, log.on_message(), log.on_end());
    BOOST_REQUIRE(run_until(io, [&] { return log.created(); }, 5s));

    // Revoking the holder's lease deletes the key.
    BOOST_TEST(std::holds_alternative<std::monostate>(revoke(io, client, a.id)));
    BOOST_REQUIRE(run_until(io, [&] { return !log.events().empty(); }, 5s));
    auto events = log.events();
    BOOST_TEST((events[0].what == watch_event::type::del));
    BOOST_TEST(events[0].kv.key == key);

    // Now b can take it, and the watch sees the put.
    BOOST_TEST(value_of(campaign(io, client, key, "node-b", b.id)).won);
    BOOST_REQUIRE(run_until(io, [&] { return log.events().size() >= 2; }, 5s));
    events = log.events();
    BOOST_TEST((events[1].what == watch_event::type::put));
    BOOST_TEST(events[1].kv.value == "node-b");
    BOOST_TEST(events[1].kv.lease == b.id);
    BOOST_TEST(log.ends.empty());

    // A new watch replaces it: the old one's events and end are never delivered.
    auto const seen = log.messages.size();
    client.watch(key + "-other", "", 0, [](auto const&) {}, [](auto const&) {});
    revoke(io, client, b.id);
    io.restart();
    io.run_for(100ms);
    BOOST_TEST(log.ends.empty());
    BOOST_TEST(log.messages.size() == seen);
}

BOOST_AUTO_TEST_CASE(the_group_keys_put_read_watched_and_erased) {
    asio::io_context io;
    etcd_client client(io, {etcd_endpoint()}, etcd_tls(), test_debug());
    auto const group = unique_key("group");
    auto lease = grant(io, client);
    auto put = [&](std::string const& key, std::string const& value, std::int64_t on) {
        return wait_for<std::monostate>(io, [&](auto done) { client.put(key, value, on, request_timeout, done); });
    };
    auto read = [&] {
        return value_of(wait_for<range_reply>(io, [&](auto done) {
            client.range(group, group + "0", request_timeout, done);
        }));
    };
    value_of(put(group + "/members/a", "{}", lease.id));
    value_of(put(group + "/pause", "by hand", 0));
    value_of(put(group + "-other", "another group, in the same range", 0));
    auto first = read();
    BOOST_TEST_REQUIRE(first.kvs.size() == 3u);
    BOOST_TEST(first.kvs[0].key == group + "-other");  // in key order
    BOOST_TEST(first.kvs[1].key == group + "/members/a");
    BOOST_TEST(first.kvs[1].lease == lease.id);
    BOOST_TEST(first.kvs[2].value == "by hand");

    watch_log log;
    client.watch(group, group + "0", first.revision + 1, log.on_message(), log.on_end());
    BOOST_REQUIRE(run_until(io, [&] { return log.created(); }, 5s));
    value_of(wait_for<std::monostate>(io, [&](auto done) { client.erase(group + "/pause", "", request_timeout, done); }));
    BOOST_REQUIRE(run_until(io, [&] { return !log.events().empty(); }, 5s));
    BOOST_TEST((log.events()[0].what == watch_event::type::del));
    BOOST_TEST(log.events()[0].kv.key == group + "/pause");
    // A key bound to a revoked lease goes with it.
    value_of(revoke(io, client, lease.id));
    BOOST_REQUIRE(run_until(io, [&] { return log.events().size() >= 2; }, 5s));
    BOOST_TEST(log.events()[1].kv.key == group + "/members/a");
    BOOST_TEST(read().kvs.size() == 1u);
    BOOST_TEST(log.ends.empty());
    // A put under a lease that is gone is refused as "not found".
    auto refused = put(group + "/members/a", "{}", lease.id);
    BOOST_REQUIRE(std::holds_alternative<etcd_error>(refused));
    BOOST_TEST((kind_of(std::get<etcd_error>(refused)) == failure::not_found));
}

BOOST_AUTO_TEST_CASE(revoked_lease) {
    asio::io_context io;
    etcd_client client(io, {etcd_endpoint()}, etcd_tls(), test_debug());
    auto lease = grant(io, client);
    BOOST_TEST(std::holds_alternative<std::monostate>(revoke(io, client, lease.id)));

    auto k = value_of(keepalive(io, client, lease.id));
    BOOST_TEST(!k.ttl_seconds.has_value());  // etcd no longer knows the lease

    auto again = error_of(revoke(io, client, lease.id));
    BOOST_TEST((kind_of(again) == failure::not_found));
    BOOST_TEST(again.http_status == 404);

    auto c = error_of(campaign(io, client, unique_key("revoked"), "node-a", lease.id));
    BOOST_TEST((kind_of(c) == failure::not_found));
}

BOOST_AUTO_TEST_CASE(new_watch_replaces_the_previous_silently) {
    asio::io_context io;
    etcd_client client(io, {etcd_endpoint()}, etcd_tls(), test_debug());
    watch_log first, second;
    auto const key = unique_key("replace");
    client.watch(key, "", 0, first.on_message(), first.on_end());
    BOOST_REQUIRE(run_until(io, [&] { return first.created(); }, 5s));
    client.watch(key, "", 0, second.on_message(), second.on_end());
    BOOST_REQUIRE(run_until(io, [&] { return second.created(); }, 5s));
    auto lease = grant(io, client);
    BOOST_TEST(value_of(campaign(io, client, key, "x", lease.id)).won);
    BOOST_REQUIRE(run_until(io, [&] { return !second.events().empty(); }, 5s));
    BOOST_TEST(first.events().empty());
    BOOST_TEST(first.ends.empty());
    BOOST_TEST(second.ends.empty());
    revoke(io, client, lease.id);
}

// --- failures ------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(closed_port_fails_promptly) {
    asio::io_context io;
    etcd_client client(io, {loopback(closed_port())}, {}, test_debug());
    auto const start = steady::now();
    auto e = error_of(wait_for<lease_grant>(io, [&](auto done) { client.grant(5, 3s, done); }));
    BOOST_TEST((e.what == etcd_error::kind::transport));
    BOOST_TEST(ms_since(start) < 1000);
    BOOST_TEST_MESSAGE("closed port: " << describe(e));
}

BOOST_AUTO_TEST_CASE(rotation_to_the_next_endpoint) {
    asio::io_context io;
    etcd_client client(io, {loopback(closed_port()), etcd_endpoint()}, etcd_tls(), test_debug());
    auto first = wait_for<lease_grant>(io, [&](auto done) { client.grant(5, 3s, done); });
    BOOST_TEST((error_of(first).what == etcd_error::kind::transport));
    // The failure moved the client on: the retry and the ones after it succeed.
    for (int i = 0; i < 3; ++i) grant(io, client, 5);

    // A member without a leader answers 503: that moves the client on too.
    fake_server leaderless(io, {no_leader_answer});
    etcd_client client2(io, {loopback(leaderless.port()), etcd_endpoint()}, etcd_tls(), test_debug());
    auto refused = error_of(wait_for<lease_grant>(io, [&](auto done) { client2.grant(5, 3s, done); }));
    BOOST_TEST(refused.http_status == 503);
    BOOST_TEST(refused.grpc_code == 14);
    grant(io, client2, 5);

    // The watch rotates the same way.
    etcd_client watcher(io, {loopback(closed_port()), etcd_endpoint()}, etcd_tls(), test_debug());
    watch_log failed, ok;
    watcher.watch(unique_key("rotate"), "", 0, failed.on_message(), failed.on_end());
    BOOST_REQUIRE(run_until(io, [&] { return !failed.ends.empty(); }, 5s));
    BOOST_TEST((failed.ends[0].what == etcd_error::kind::transport));
    watcher.watch(unique_key("rotate"), "", 0, ok.on_message(), ok.on_end());
    BOOST_TEST(run_until(io, [&] { return ok.created(); }, 5s));
    io.restart();
    io.poll();
    BOOST_TEST(failed.ends.size() == 1u);
}

BOOST_AUTO_TEST_CASE(silent_peer_times_out) {
    asio::io_context io;
    // Connections complete in the kernel's backlog, and nobody ever answers.
    tcp::acceptor blackhole(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    etcd_client client(io, {loopback(blackhole.local_endpoint().port())}, {}, test_debug());
    auto const start = steady::now();
    auto e = error_of(wait_for<keepalive_reply>(io, [&](auto done) { client.keepalive(1, 300ms, done); }));
    auto const took = ms_since(start);
    BOOST_TEST((e.what == etcd_error::kind::timeout));
    BOOST_TEST(took >= 290);
    BOOST_TEST(took < 1000);
    BOOST_TEST_MESSAGE("silent peer: " << describe(e));

    // A zero timeout is a timeout too, not a hang.
    auto z = error_of(wait_for<lease_grant>(io, [&](auto done) { client.grant(5, 0ms, done); }, 2s));
    BOOST_TEST((z.what == etcd_error::kind::timeout));

    // A watch that gets no header gives up after its opening timeout.
    watch_log log;
    client.watch("k", "", 0, log.on_message(), log.on_end());
    BOOST_REQUIRE(run_until(io, [&] { return !log.ends.empty(); }, 10s));
    BOOST_TEST((log.ends[0].what == etcd_error::kind::timeout));
}

BOOST_AUTO_TEST_CASE(idle_connection_closed_by_server_is_retried) {
    asio::io_context io;
    auto const body = R"({"result":{"header":{"revision":"1"},"ID":"77","TTL":"5"}})";
    fake_server server(io, {test::answer_text("HTTP/1.1 200 OK", body)});
    etcd_client client(io, {loopback(server.port())}, {}, test_debug());
    for (int i = 0; i < 3; ++i) {
        auto k = value_of(wait_for<keepalive_reply>(io, [&](auto done) { client.keepalive(77, 2s, done); }));
        BOOST_TEST((k.ttl_seconds == 5));
    }
    BOOST_TEST(server.connections == 3);
}

BOOST_AUTO_TEST_CASE(refused_watch_reports_the_status) {
    asio::io_context io;
    fake_server server(io, {no_leader_answer});
    etcd_client client(io, {loopback(server.port())}, {}, test_debug());
    watch_log log;
    client.watch("k", "", 0, log.on_message(), log.on_end());
    BOOST_REQUIRE(run_until(io, [&] { return !log.ends.empty(); }, 5s));
    BOOST_TEST((log.ends[0].what == etcd_error::kind::status));
    BOOST_TEST(log.ends[0].http_status == 503);
    BOOST_TEST(log.ends[0].grpc_code == 14);
    BOOST_TEST(log.ends[0].message == "etcdserver: no leader");
}

BOOST_AUTO_TEST_CASE(watch_reopened_from_on_end) {
    asio::io_context io;
    fake_server server(io, {no_leader_answer});
    etcd_client client(io, {loopback(server.port())}, {}, test_debug());
    int ends = 0;
    std::function<void(etcd_error const&)> reopen = [&](etcd_error const&) {
        if (++ends < 3) client.watch("k", "", 0, [](auto const&) {}, reopen);
    };
    client.watch("k", "", 0, [](auto const&) {}, reopen);
    BOOST_REQUIRE(run_until(io, [&] { return ends == 3; }, 5s));
    io.restart();
    io.run_for(100ms);
    BOOST_TEST(ends == 3);
    BOOST_TEST(server.connections == 3);
}

BOOST_AUTO_TEST_CASE(client_closed_from_on_message) {
    asio::io_context io;
    std::string const progress = R"({"result":{"header":{"revision":"5"}}})" "\n";
    // Both lines in one chunk: they are decoded from the same read.
    fake_server server(io, {watch_header + test::chunk(watch_created + progress + progress)}, /*hold_open=*/true);
    etcd_client client(io, {loopback(server.port())}, {}, test_debug());
    int messages = 0, ends = 0;
    client.watch("k", "", 0, [&](auto const&) {
        ++messages;
        client.close();
    }, [&](auto const&) { ++ends; });
    BOOST_REQUIRE(run_until(io, [&] { return messages > 0; }, 5s));
    io.restart();
    io.run_for(100ms);
    BOOST_TEST(messages == 1);
    BOOST_TEST(ends == 0);
}

BOOST_AUTO_TEST_CASE(watch_stream_cut_anywhere) {
    asio::io_context io;
    std::string const created = R"({"result":{"header":{"revision":"5"},"created":true}})";
    std::string const put =
        R"({"result":{"header":{"revision":"6"},"events":[{"kv":{"key":"aw==","value":"bm9kZS1h","lease":"9","mod_revision":"6"}}]}})";
    std::string const progress = R"({"result":{"header":{"revision":"6"}}})";
    std::string const stream = created + "\n" + put + "\n" + progress + "\n";
    // Objects cut across chunks, chunks cut across reads.
    auto const cut1 = created.size() + 10, cut2 = created.size() + put.size() - 3;
    std::string const header = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    auto c1 = test::chunk(stream.substr(0, cut1)), c2 = test::chunk(stream.substr(cut1, cut2 - cut1)),
         c3 = test::chunk(stream.substr(cut2));
    fake_server server(io, {header + c1.substr(0, 3), c1.substr(3) + c2.substr(0, 40), c2.substr(40) + c3,
                            test::chunk("this is not json\n")},
                       /*hold_open=*/true);
    etcd_client client(io, {loopback(server.port())}, {}, test_debug());
    watch_log log;
    client.watch("k", "", 0, log.on_message(), log.on_end());
    BOOST_REQUIRE(run_until(io, [&] { return !log.ends.empty(); }, 5s));
    BOOST_REQUIRE(log.messages.size() == 3u);
    BOOST_TEST(log.messages[0].created);
    BOOST_REQUIRE(log.messages[1].events.size() == 1u);
    BOOST_TEST(log.messages[1].events[0].kv.value == "node-a");
    BOOST_TEST(log.messages[1].events[0].kv.lease == 9);
    BOOST_TEST(log.messages[2].events.empty());  // a progress notification
    BOOST_TEST((log.ends[0].what == etcd_error::kind::malformed));
    io.restart();
    io.run_for(100ms);
    BOOST_TEST(log.ends.size() == 1u);
}

BOOST_AUTO_TEST_CASE(watch_ended_by_server) {
    asio::io_context io;
    std::string const canceled = R"({"result":{"header":{},"canceled":true,"compact_revision":"4"}})" "\n";
    fake_server server(io, {watch_header + test::chunk(watch_created) + test::chunk(canceled)}, /*hold_open=*/true);
    etcd_client client(io, {loopback(server.port())}, {}, test_debug());
    watch_log log;
    client.watch("k", "", 0, log.on_message(), log.on_end());
    BOOST_REQUIRE(run_until(io, [&] { return !log.ends.empty(); }, 5s));
    BOOST_TEST(log.messages.size() == 2u);  // the ending message is delivered too
    BOOST_TEST((log.ends[0].what == etcd_error::kind::status));
    BOOST_TEST_MESSAGE("compacted: " << describe(log.ends[0]));

    // A stream whose connection simply closes.
    fake_server closing(io, {watch_header + test::chunk(watch_created)});
    etcd_client client2(io, {loopback(closing.port())}, {}, test_debug());
    watch_log log2;
    client2.watch("k", "", 0, log2.on_message(), log2.on_end());
    BOOST_REQUIRE(run_until(io, [&] { return !log2.ends.empty(); }, 5s));
    BOOST_TEST(log2.created());
    BOOST_TEST((log2.ends[0].what == etcd_error::kind::transport));
    BOOST_TEST_MESSAGE("closed stream: " << describe(log2.ends[0]));

    // An event for a key this watch is not about (a confused or hostile gateway): the
    // stream is abandoned, and the event never reaches the owner.
    std::string const stray =
        R"({"result":{"header":{"revision":"6"},"events":[{"kv":{"key":"b3RoZXI=","value":"eA==","lease":"9","mod_revision":"6"}}]}})" "\n";
    fake_server confused(io, {watch_header + test::chunk(watch_created) + test::chunk(stray)}, /*hold_open=*/true);
    etcd_client client3(io, {loopback(confused.port())}, {}, test_debug());
    watch_log log3;
    client3.watch("k", "", 0, log3.on_message(), log3.on_end());
    BOOST_REQUIRE(run_until(io, [&] { return !log3.ends.empty(); }, 5s));
    BOOST_TEST(log3.events().empty());
    BOOST_TEST((log3.ends[0].what == etcd_error::kind::malformed));
}

// --- lifetime ------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(close_stops_callbacks) {
    asio::io_context io;
    bool closed = false;
    int late_calls = 0;  // calls after close()
    auto count = [&](auto const&...) { late_calls += closed ? 1 : 0; };
    {
        etcd_client client(io, {etcd_endpoint()}, etcd_tls(), test_debug());
        for (int i = 0; i < 20; ++i) {
            client.grant(5, request_timeout, count);
            client.keepalive(1, request_timeout, count);
        }
        client.watch("k", "", 0, count, count);
        io.run_for(3ms);  // some of it starts, some may even finish
        client.close();
        closed = true;
        client.grant(5, request_timeout, count);  // ignored after close()
        client.watch("k", "", 0, count, count);
        io.restart();
        io.run_for(300ms);
    }
    BOOST_TEST(late_calls == 0);

    // Destroying the client with requests in flight is the same as closing it.
    closed = false;
    auto client = std::make_unique<etcd_client>(io, std::vector<endpoint>{etcd_endpoint()}, etcd_tls());
    for (int i = 0; i < 20; ++i) client->grant(5, request_timeout, count);
    client->watch("k", "", 0, count, count);
    io.restart();
    io.run_for(3ms);
    client.reset();
    closed = true;
    io.restart();
    io.run_for(300ms);
    BOOST_TEST(late_calls == 0);
}

BOOST_AUTO_TEST_CASE(unloadable_tls_files_throw) {
    asio::io_context io;
    endpoint tls_endpoint{true, "localhost", 2379, "127.0.0.1"};
    BOOST_CHECK_THROW(etcd_client(io, {tls_endpoint}, tls_files{"/nonexistent/ca.pem", "", ""}), std::runtime_error);
    BOOST_CHECK_THROW(etcd_client(io, {tls_endpoint}, tls_files{"", "/nonexistent/cert.pem", "/nonexistent/key.pem"}),
                      std::runtime_error);
    // Without a TLS endpoint the files are not needed.
    BOOST_CHECK_NO_THROW(etcd_client(io, {loopback(1)}, tls_files{"/nonexistent/ca.pem", "", ""}));
}

// Last: nothing above may have started a thread.
BOOST_AUTO_TEST_CASE(single_thread) {
    std::ifstream status("/proc/self/status");
    std::string line;
    std::string threads;
    while (std::getline(status, line))
        if (line.rfind("Threads:", 0) == 0) threads = line;
    BOOST_TEST(threads == "Threads:\t1");
}
