#pragma once
// One call of the etcd client, run to its answer: shared by the client's tests.
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <utility>

#include "etcd/etcd_client.hpp"
#include "loopback.hpp"

namespace nm::test {

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

}  // namespace nm::test
