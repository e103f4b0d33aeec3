// The nodeos API client against the nodeos simulator (tests/nodeos_sim.py, path in
// NM_NODEOS_SIM, run with NM_PYTHON), each test starting its own on a free loopback port and
// stopping it by its PID, plus loopback fakes for what the simulator never does (answers
// nodeos would not give, a slow second request, an oversized body).
#define BOOST_TEST_MODULE nodeos_api
#include <boost/test/unit_test.hpp>

#include <boost/asio/io_context.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/text.hpp"
#include "loopback.hpp"
#include "nodeos/api_client.hpp"
#include "result_checks.hpp"

namespace asio = boost::asio;
namespace fs = std::filesystem;
using steady = std::chrono::steady_clock;
using namespace std::chrono_literals;
using namespace nm;
using test::closed_port;
using test::fake_reply;
using test::fake_request;
using test::fake_server;
using test::ms_since;
using test::run_until;

extern char** environ;

namespace {

http_endpoint loopback(std::uint16_t port) { return http_endpoint{false, "127.0.0.1", port, "127.0.0.1"}; }

// NM_TEST_DEBUG=1 shows the client's debug log.
debug_sink test_debug() {
    if (!std::getenv("NM_TEST_DEBUG")) return [](std::string const&) {};
    return [](std::string const& line) { std::fprintf(stderr, "debug %s\n", line.c_str()); };
}

std::string env(char const* name) {
    char const* value = std::getenv(name);
    BOOST_REQUIRE_MESSAGE(value, name << " is not set: run this test through meson test");
    return value;
}

// The API plugins a simulated nodeos runs.
struct plugins {
    bool chain_api = true;
    bool producer_api = true;
};

// nodeos as the simulator plays it: a producer (bp1) with stale production enabled, in a
// directory of its own, HTTP on a free loopback port read from its `ready` record.
class simulator {
public:
    explicit simulator(plugins p = {}) {
        auto const python = env("NM_PYTHON"), script = env("NM_NODEOS_SIM");
        char pattern[] = "/tmp/nm-api-XXXXXX";
        BOOST_REQUIRE(::mkdtemp(pattern));
        dir_ = pattern;
        fs::create_directories(dir_ / "config");
        fs::create_directories(dir_ / "control");
        {
            std::ofstream config(dir_ / "config" / "config.ini");
            if (p.chain_api) config << "plugin = eosio::chain_api_plugin\n";
            if (p.producer_api) config << "plugin = eosio::producer_api_plugin\n";
            config << "producer-name = bp1\n";
        }
        std::vector<std::string> args{python,
                                      script,
                                      "--config-dir",
                                      (dir_ / "config").string(),
                                      "--data-dir",
                                      (dir_ / "data").string(),
                                      "--http-server-address=127.0.0.1:0",
                                      "-e",
                                      "--sim-node",
                                      "api-test",
                                      "--sim-ledger",
                                      (dir_ / "ledger").string(),
                                      "--sim-control",
                                      (dir_ / "control").string()};
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t files;
        ::posix_spawn_file_actions_init(&files);
        auto const log = (dir_ / "nodeos.log").string();
        ::posix_spawn_file_actions_addopen(&files, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        ::posix_spawn_file_actions_adddup2(&files, 1, 2);
        int const rc = ::posix_spawn(&pid_, argv[0], &files, nullptr, argv.data(), environ);
        ::posix_spawn_file_actions_destroy(&files);
        if (rc != 0) {
            pid_ = 0;
            fail(cat("cannot start the simulator: ", std::strerror(rc)));
        }
        wait_ready();
    }

    ~simulator() { clean_up(); }

    simulator(simulator const&) = delete;
    simulator& operator=(simulator const&) = delete;

    http_endpoint endpoint() const { return loopback(port_); }

    // A fault switch (see the simulator's docstring), read at its next request; written
    // whole through a rename.
    void set_fault(std::string const& name, std::string const& value) {
        auto const tmp = dir_ / "control" / ("." + name);
        std::ofstream(tmp) << value;
        fs::rename(tmp, dir_ / "control" / name);
    }
    void clear_fault(std::string const& name) { fs::remove(dir_ / "control" / name); }

    // The ledger's events, in order.
    std::vector<std::string> events() const {
        std::vector<std::string> out;
        std::ifstream ledger(dir_ / "ledger");
        std::string line;
        while (std::getline(ledger, line)) {
            auto record = nlohmann::json::parse(line, nullptr, false);
            if (record.is_object() && record.contains("event")) out.push_back(record["event"].get<std::string>());
        }
        return out;
    }

private:
    void clean_up() {
        stop();
        std::error_code ignored;
        fs::remove_all(dir_, ignored);
    }

    // A failure in the constructor: the destructor will not run.
    [[noreturn]] void fail(std::string const& why) {
        auto const message = cat(why, ": ", log_tail());
        clean_up();
        BOOST_FAIL(message);
        std::abort();  // BOOST_FAIL throws
    }

    void wait_ready() {
        auto const deadline = steady::now() + 10s;
        while (steady::now() < deadline) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = 0;
                fail("the simulator exited at start");
            }
            std::ifstream ledger(dir_ / "ledger");
            std::string line;
            while (std::getline(ledger, line)) {
                auto record = nlohmann::json::parse(line, nullptr, false);
                if (!record.is_object() || record.value("event", "") != "ready") continue;
                auto const http = record.value("http", "");
                port_ = static_cast<std::uint16_t>(std::stoi(http.substr(http.rfind(':') + 1)));
                return;
            }
            std::this_thread::sleep_for(20ms);
        }
        fail("the simulator was not ready within 10 s");
    }

    // SIGTERM, then SIGKILL if it is still there after 5 s.
    void stop() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGTERM);
        auto const deadline = steady::now() + 5s;
        int status = 0;
        while (::waitpid(pid_, &status, WNOHANG) == 0) {
            if (steady::now() > deadline) {
                ::kill(pid_, SIGKILL);
                ::waitpid(pid_, &status, 0);
                break;
            }
            std::this_thread::sleep_for(10ms);
        }
        pid_ = 0;
    }

    std::string log_tail() const {
        std::ifstream log(dir_ / "nodeos.log");
        std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
        return text.size() > 2000 ? text.substr(text.size() - 2000) : text;
    }

    fs::path dir_;
    pid_t pid_ = 0;
    std::uint16_t port_ = 0;
};

using test::error_of;
using test::value_of;

// A call whose answer is collected, with when it came.
template <class T>
struct pending {
    std::optional<api_result<T>> result;
    int calls = 0;
    long long after_ms = -1;  // since start

    explicit pending(steady::time_point start = steady::now()) : start_(start) {}
    auto handler() {
        return [this](api_result<T> r) {
            ++calls;
            after_ms = ms_since(start_);
            result = std::move(r);
        };
    }
    bool done() const { return result.has_value(); }

private:
    steady::time_point start_;
};

// Starts one call and runs the loop until its handler has been called exactly once.
template <class T>
api_result<T> wait_for(asio::io_context& io, std::function<void(nodeos_api::handler<T>)> const& start,
                       steady::duration limit = 10s) {
    pending<T> p;
    start(p.handler());
    BOOST_TEST(p.calls == 0);  // never called back from inside the call
    BOOST_REQUIRE_MESSAGE(run_until(io, [&] { return p.done(); }, limit), "no answer in time");
    io.restart();
    io.poll();
    BOOST_TEST(p.calls == 1);
    return *p.result;
}

api_result<chain_info> get_info(asio::io_context& io, nodeos_api& api, nodeos_api::timeout t = 2s) {
    return wait_for<chain_info>(io, [&](auto done) { api.get_info(t, done); });
}

api_result<bool> set_paused(asio::io_context& io, nodeos_api& api, bool paused, nodeos_api::timeout t = 2s) {
    return wait_for<bool>(io, [&](auto done) { api.set_paused(paused, t, done); });
}

std::int64_t unix_ms_now() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// A fake nodeos: answers by target, keeping its connections alive.
fake_reply answer(std::string const& status_line, std::string const& body, std::chrono::milliseconds delay = {}) {
    return fake_reply{{test::answer_text(status_line, body)}, delay, fake_reply::then::next};
}
fake_reply silence() { return fake_reply{{}, {}, fake_reply::then::hold}; }

std::string const created = "HTTP/1.1 201 Created";

}  // namespace

// --- against the simulator -------------------------------------------------------------

BOOST_AUTO_TEST_CASE(get_info_decodes) {
    simulator sim;
    asio::io_context io;
    nodeos_api api(io, sim.endpoint(), test_debug());
    auto first = value_of(get_info(io, api));
    BOOST_TEST(first.chain_id.size() == 64u);
    BOOST_TEST(first.server_version == "v1.2.2");
    BOOST_TEST(first.last_irreversible_block_num <= first.head_block_num);
    // The producer signs a block every 500 ms: the head moves, and its time is now.
    std::optional<chain_info> later;
    auto const limit = steady::now() + 5s;
    while (steady::now() < limit) {
        auto info = value_of(get_info(io, api));
        if (info.head_block_num > first.head_block_num + 1) {
            later = info;
            break;
        }
        std::this_thread::sleep_for(100ms);
    }
    BOOST_REQUIRE_MESSAGE(later, "the head did not move in 5 s");
    BOOST_TEST(later->head_block_producer == "bp1");
    BOOST_TEST(later->chain_id == first.chain_id);
    BOOST_TEST(later->last_irreversible_block_num == later->head_block_num - 2);
    auto const lag = unix_ms_now() - later->head_block_time_ms;
    BOOST_TEST(lag > -1000);
    BOOST_TEST(lag < 2000);
}

BOOST_AUTO_TEST_CASE(pause_resume_round_trip) {
    simulator sim;
    asio::io_context io;
    nodeos_api api(io, sim.endpoint(), test_debug());
    // Each change shows in the simulator's ledger: a pause after the block it lets
    // through, a resume at once.
    auto const logged = [&](char const* event, long expected) {
        auto const limit = steady::now() + 3s;
        for (;;) {
            auto const events = sim.events();
            if (std::count(events.begin(), events.end(), event) >= expected) return true;
            if (steady::now() > limit) return false;
            std::this_thread::sleep_for(20ms);
        }
    };
    BOOST_TEST(value_of(set_paused(io, api, true)) == true);
    BOOST_TEST(logged("paused", 1));
    BOOST_TEST(value_of(set_paused(io, api, true)) == true);  // pausing a paused node changes nothing
    BOOST_TEST(value_of(set_paused(io, api, false)) == false);
    BOOST_TEST(logged("producing", 2));  // at start, and at the resume
    BOOST_TEST(value_of(set_paused(io, api, true)) == true);
    BOOST_TEST(logged("paused", 2));
}

BOOST_AUTO_TEST_CASE(missing_plugins_answer_404) {
    simulator chain_only(plugins{true, false});
    asio::io_context io;
    nodeos_api api(io, chain_only.endpoint(), test_debug());
    auto const e = error_of(set_paused(io, api, true));
    BOOST_TEST((e.what == api_error::kind::status));
    BOOST_TEST(e.http_status == 404);
    BOOST_TEST(e.message == "Not Found: Unknown Endpoint");
    BOOST_TEST((kind_of(e) == failure::rejected));
    value_of(get_info(io, api));

    simulator producer_only(plugins{false, true});
    nodeos_api api2(io, producer_only.endpoint(), test_debug());
    BOOST_TEST(error_of(get_info(io, api2)).http_status == 404);
    BOOST_TEST(value_of(set_paused(io, api2, true)) == true);
}

BOOST_AUTO_TEST_CASE(hung_api_times_out_while_another_call_answers) {
    simulator sim;
    asio::io_context io;
    nodeos_api api(io, sim.endpoint(), test_debug());
    value_of(get_info(io, api));  // leaves an idle connection behind, to be taken by the next call

    // The health poll hangs in a stuck nodeos...
    sim.set_fault("api", "hang");
    auto const start = steady::now();
    pending<chain_info> poll(start);
    api.get_info(1500ms, poll.handler());
    io.restart();
    io.run_for(300ms);  // the simulator reads the request and keeps it
    BOOST_TEST(!poll.done());
    // ...and a pause, sent meanwhile, does not wait for it.
    sim.clear_fault("api");
    pending<bool> pause(start);
    api.set_paused(true, 1s, pause.handler());
    BOOST_REQUIRE(run_until(io, [&] { return pause.done(); }, 2s));
    BOOST_TEST(value_of(*pause.result) == true);
    BOOST_TEST(!poll.done());
    BOOST_TEST(pause.after_ms < 1000);

    BOOST_REQUIRE(run_until(io, [&] { return poll.done(); }, 3s));
    auto const e = error_of(*poll.result);
    BOOST_TEST((e.what == api_error::kind::timed_out));
    BOOST_TEST((kind_of(e) == failure::timed_out));
    BOOST_TEST(poll.after_ms >= 1490);
    BOOST_TEST(poll.after_ms < 2000);
    BOOST_TEST_MESSAGE("hung get_info: " << describe(e));

    // The other way round: a pause stuck in nodeos, and the health poll still answers.
    sim.set_fault("pause", "hang");
    auto const start2 = steady::now();
    pending<bool> stuck(start2);
    api.set_paused(true, 1s, stuck.handler());
    io.restart();
    io.run_for(200ms);
    auto const info = get_info(io, api);
    value_of(info);
    BOOST_TEST(!stuck.done());
    BOOST_REQUIRE(run_until(io, [&] { return stuck.done(); }, 3s));
    BOOST_TEST((error_of(*stuck.result).what == api_error::kind::timed_out));
    BOOST_TEST(stuck.after_ms >= 990);
    BOOST_TEST(stuck.after_ms < 1500);
}

BOOST_AUTO_TEST_CASE(api_answering_500) {
    simulator sim;
    asio::io_context io;
    nodeos_api api(io, sim.endpoint(), test_debug());
    sim.set_fault("api", "500");
    auto const e = error_of(get_info(io, api));
    BOOST_TEST((e.what == api_error::kind::status));
    BOOST_TEST(e.http_status == 500);
    BOOST_TEST(e.message == "Internal Service Error: simulated fault: api = 500");
    BOOST_TEST(error_of(set_paused(io, api, true)).http_status == 500);
    sim.clear_fault("api");

    // A pause that fails in nodeos: the error, not the state that follows it.
    sim.set_fault("pause", "error");
    auto const p = error_of(set_paused(io, api, true));
    BOOST_TEST(p.http_status == 500);
    BOOST_TEST(p.message == "Internal Service Error: simulated fault: pause = error");
    // A pause that nodeos acknowledges and ignores: paused tells the truth.
    sim.set_fault("pause", "ignore");
    BOOST_TEST(value_of(set_paused(io, api, true)) == false);
}

BOOST_AUTO_TEST_CASE(connection_refused_is_unavailable) {
    asio::io_context io;
    nodeos_api api(io, loopback(closed_port()), test_debug());
    auto const start = steady::now();
    auto const e = error_of(get_info(io, api, 3s));
    BOOST_TEST((e.what == api_error::kind::unavailable));
    BOOST_TEST((kind_of(e) == failure::unavailable));
    BOOST_TEST(ms_since(start) < 1000);
    BOOST_TEST_MESSAGE("refused: " << describe(e));
    BOOST_TEST((error_of(set_paused(io, api, false, 3s)).what == api_error::kind::unavailable));
}

BOOST_AUTO_TEST_CASE(nothing_is_called_after_close) {
    simulator sim;
    asio::io_context io;
    sim.set_fault("api", "hang");
    bool closed = false;
    int late_calls = 0;  // calls after close()
    auto count = [&](auto const&) { late_calls += closed ? 1 : 0; };
    {
        nodeos_api api(io, sim.endpoint(), test_debug());
        for (int i = 0; i < 5; ++i) {
            api.get_info(400ms, count);
            api.set_paused(i % 2 == 0, 400ms, count);
        }
        io.restart();
        io.run_for(100ms);
        api.close();
        closed = true;
        api.get_info(400ms, count);  // ignored after close()
        api.set_paused(true, 400ms, count);
        io.restart();
        io.run_for(700ms);  // past every deadline
    }
    BOOST_TEST(late_calls == 0);

    // Destroying the client with calls in flight is the same as closing it.
    closed = false;
    auto api = std::make_unique<nodeos_api>(io, sim.endpoint());
    for (int i = 0; i < 5; ++i) api->get_info(400ms, count);
    io.restart();
    io.run_for(100ms);
    api.reset();
    closed = true;
    io.restart();
    io.run_for(700ms);
    BOOST_TEST(late_calls == 0);
}

// --- against fakes -------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(requests_as_nodeos_expects_them) {
    asio::io_context io;
    fake_server nodeos(io, [](fake_request const& r) {
        if (r.target == "/v1/chain/get_info")
            return answer("HTTP/1.1 200 OK", R"({"head_block_num":7,"last_irreversible_block_num":5,)"
                                             R"("head_block_time":"2025-09-04T12:00:00.500","chain_id":"ab"})");
        if (r.target == "/v1/producer/paused") return answer(created, "true");
        return answer(created, R"({"result":"ok"})");
    });
    nodeos_api api(io, loopback(nodeos.port()), test_debug());
    auto const info = value_of(get_info(io, api));
    BOOST_TEST(info.head_block_num == 7);
    BOOST_TEST(info.head_block_time_ms == 1756987200500);
    BOOST_TEST(value_of(set_paused(io, api, true)) == true);
    set_paused(io, api, false);

    BOOST_REQUIRE(nodeos.requests.size() == 5u);
    auto const& g = nodeos.requests[0];
    BOOST_TEST(g.method == "GET");
    BOOST_TEST(g.target == "/v1/chain/get_info");
    BOOST_TEST(g.body.empty());
    BOOST_TEST(g.head.find("Host: 127.0.0.1:" + std::to_string(nodeos.port()) + "\r\n") != std::string::npos);
    std::vector<std::string> targets;
    for (auto const& r : nodeos.requests) targets.push_back(r.method + " " + r.target);
    std::vector<std::string> const expected{"GET /v1/chain/get_info", "POST /v1/producer/pause", "POST /v1/producer/paused",
                                            "POST /v1/producer/resume", "POST /v1/producer/paused"};
    BOOST_TEST(targets == expected, boost::test_tools::per_element());
    for (std::size_t i = 1; i < nodeos.requests.size(); ++i) {
        BOOST_TEST(nodeos.requests[i].body.empty());  // nodeos refuses a body other than empty or {}
        BOOST_TEST(nodeos.requests[i].head.find("Content-Length: 0\r\n") != std::string::npos);
    }
    BOOST_TEST(nodeos.connections == 1);  // one kept-alive connection, one call after the other
}

BOOST_AUTO_TEST_CASE(one_deadline_covers_both_requests) {
    asio::io_context io;
    fake_server nodeos(io, [](fake_request const& r) {
        if (r.target == "/v1/producer/paused") return answer(created, "true", 300ms);
        return answer(created, R"({"result":"ok"})", 300ms);
    });
    nodeos_api api(io, loopback(nodeos.port()), test_debug());
    auto const start = steady::now();
    auto const e = error_of(set_paused(io, api, true, 500ms));
    auto const took = ms_since(start);
    BOOST_TEST((e.what == api_error::kind::timed_out));
    BOOST_TEST(took >= 490);
    BOOST_TEST(took < 750);  // not 300 + 500
    BOOST_REQUIRE(nodeos.requests.size() == 2u);
    BOOST_TEST(nodeos.requests[1].target == "/v1/producer/paused");

    // A second request that gets no answer ends with what is left of the deadline.
    fake_server slow(io, [](fake_request const& r) {
        if (r.target == "/v1/producer/paused") return silence();
        return answer(created, R"({"result":"ok"})", 100ms);
    });
    nodeos_api api2(io, loopback(slow.port()), test_debug());
    auto const start2 = steady::now();
    BOOST_TEST((error_of(set_paused(io, api2, true, 300ms)).what == api_error::kind::timed_out));
    auto const took2 = ms_since(start2);
    BOOST_TEST(took2 >= 290);
    BOOST_TEST(took2 < 500);
    BOOST_TEST(slow.requests.size() == 2u);
}

BOOST_AUTO_TEST_CASE(close_between_the_two_requests) {
    asio::io_context io;
    fake_server nodeos(io, [](fake_request const& r) {
        if (r.target == "/v1/producer/paused") return silence();
        return answer(created, R"({"result":"ok"})");
    });
    nodeos_api api(io, loopback(nodeos.port()), test_debug());
    int calls = 0;
    api.set_paused(true, 500ms, [&](auto const&) { ++calls; });
    BOOST_REQUIRE(run_until(io, [&] { return nodeos.requests.size() == 2u; }, 2s));  // asking paused now
    api.close();
    io.restart();
    io.run_for(700ms);  // past the deadline
    BOOST_TEST(calls == 0);
}

BOOST_AUTO_TEST_CASE(answers_nodeos_would_not_give) {
    asio::io_context io;
    std::string const huge(100 * 1024, 'x');
    fake_server odd(io, [&](fake_request const& r) {
        if (r.target == "/v1/chain/get_info") return answer("HTTP/1.1 200 OK", R"({"head_block_num":"x"})");
        if (r.target == "/v1/producer/pause") return answer("HTTP/1.1 200 OK", R"({"result":"ok"})");
        if (r.target == "/v1/producer/resume") return answer(created, R"({"result":"ok"})");
        return answer(created, R"("false")");
    });
    nodeos_api api(io, loopback(odd.port()), test_debug());
    auto const bad_info = error_of(get_info(io, api));
    BOOST_TEST((bad_info.what == api_error::kind::malformed));
    BOOST_TEST((kind_of(bad_info) == failure::malformed));
    auto const wrong_status = error_of(set_paused(io, api, true));
    BOOST_TEST((wrong_status.what == api_error::kind::status));
    BOOST_TEST(wrong_status.http_status == 200);
    BOOST_TEST((error_of(set_paused(io, api, false)).what == api_error::kind::malformed));

    // An answer larger than any nodeos writes is refused, whatever it says.
    fake_server flood(io, [&](fake_request const&) { return answer("HTTP/1.1 200 OK", huge); });
    nodeos_api api2(io, loopback(flood.port()), test_debug());
    auto const big = error_of(get_info(io, api2));
    BOOST_TEST((big.what == api_error::kind::malformed));
    BOOST_TEST(big.message.find("answer longer than 65536 bytes") == 0u);

    // Not HTTP at all.
    fake_server garbage(io, {"SSH-2.0-OpenSSH_9.2\r\n"});
    nodeos_api api3(io, loopback(garbage.port()), test_debug());
    auto const e = error_of(get_info(io, api3));
    BOOST_TEST((e.what == api_error::kind::unavailable));
    BOOST_TEST_MESSAGE("not HTTP: " << describe(e));
}

BOOST_AUTO_TEST_CASE(connections_closed_while_idle_are_replaced) {
    asio::io_context io;
    fake_server closing(io, [](fake_request const&) {
        return fake_reply{{test::answer_text(created, "false")}, {}, fake_reply::then::close};
    });
    nodeos_api api(io, loopback(closing.port()), test_debug());
    // Each answer leaves an idle connection that the server then closes: the next call
    // finds it closed and goes on over a new one, without an error.
    for (int i = 0; i < 3; ++i) {
        io.restart();
        io.run_for(50ms);
        auto const e = error_of(get_info(io, api));  // "false" is no get_info, but it is an answer
        BOOST_TEST((e.what == api_error::kind::status));
    }
    BOOST_TEST(closing.connections == 3);
}

BOOST_AUTO_TEST_CASE(https_is_refused) {
    asio::io_context io;
    BOOST_CHECK_THROW(nodeos_api(io, http_endpoint{true, "localhost", 8888, "127.0.0.1"}), std::runtime_error);
}

// Last: nothing above may have started a thread.
BOOST_AUTO_TEST_CASE(single_thread) { BOOST_TEST(test::threads_line() == "Threads:\t1"); }
