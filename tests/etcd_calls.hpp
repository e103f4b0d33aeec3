#pragma once
// What the etcd client's tests share: a loopback endpoint, the debug log, one call run to
// its answer.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

#include "etcd/etcd_client.hpp"
#include "loopback.hpp"

namespace nm::test {

inline endpoint loopback(std::uint16_t port) { return endpoint{false, "127.0.0.1", port, "127.0.0.1"}; }

// NM_TEST_DEBUG=1 shows the client's debug log (endpoint switches, retries, watch ends).
inline etcd_client::debug_sink test_debug() {
    if (!std::getenv("NM_TEST_DEBUG")) return [](std::string const&) {};
    return [](std::string const& line) { std::fprintf(stderr, "debug %s\n", line.c_str()); };
}

// Starts one request and runs the loop until its handler has been called exactly once.
template <class T>
etcd_result<T> wait_for(asio::io_context& io, std::function<void(etcd_client::handler<T>)> const& start,
                        steady::duration limit = std::chrono::seconds(15)) {
    std::optional<etcd_result<T>> out;
    int calls = 0;
    start([&](etcd_result<T> r) {
        ++calls;
        out = std::move(r);
    });
    BOOST_TEST(calls == 0);  // never called back from inside the call
    BOOST_REQUIRE_MESSAGE(run_until(io, [&] { return out.has_value(); }, limit), "no answer in time");
    io.restart();
    io.poll();
    BOOST_TEST(calls == 1);
    return *out;
}

// What a watch delivered.
struct watch_log {
    std::vector<watch_message> messages;
    std::vector<etcd_error> ends;

    auto on_message() {
        return [this](watch_message const& m) { messages.push_back(m); };
    }
    auto on_end() {
        return [this](etcd_error const& e) { ends.push_back(e); };
    }
    std::vector<watch_event> events() const {
        std::vector<watch_event> out;
        for (auto const& m : messages) out.insert(out.end(), m.events.begin(), m.events.end());
        return out;
    }
    // How many messages said the watch was created.
    int created() const {
        return static_cast<int>(std::count_if(messages.begin(), messages.end(), [](auto const& m) { return m.created; }));
    }
};

inline etcd_result<keepalive_reply> keepalive(asio::io_context& io, etcd_client& c, std::int64_t lease) {
    return wait_for<keepalive_reply>(io, [&](auto done) { c.keepalive(lease, std::chrono::seconds(5), done); });
}

}  // namespace nm::test
