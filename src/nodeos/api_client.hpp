#pragma once
// A client for nodeos's HTTP API: the health of the chain (chain_api_plugin) and pausing
// and resuming production (producer_api_plugin), on the monitor's one io_context.
//
//   get_info ─────▶ GET  /v1/chain/get_info ─────────────────────────────▶ chain_info
//   set_paused ───▶ POST /v1/producer/pause|resume ─▶ POST /v1/producer/paused ─▶ bool
//
// The HTTP side is net/http_client's: calls never wait behind each other (a call that
// finds no idle connection opens its own, so a health poll stuck on a hung nodeos never
// delays a pause), every call ends by its deadline, and answers are bounded. Beast stays
// out of this header and of api_client.cpp.
#include <chrono>
#include <functional>
#include <memory>

#include "net/http_client.hpp"
#include "nodeos/api_types.hpp"

namespace nm {

class nodeos_api {
public:
    template <class T>
    using handler = std::function<void(api_result<T>)>;
    using timeout = std::chrono::nanoseconds;

    // base: the --nodeos-api URL parsed and resolved at start-up (numeric address; plain
    // http only: throws std::runtime_error for a TLS endpoint).
    nodeos_api(boost::asio::io_context& io, http_endpoint base, debug_sink debug = [](std::string const&) {});
    ~nodeos_api();  // closes
    nodeos_api(nodeos_api const&) = delete;
    nodeos_api& operator=(nodeos_api const&) = delete;

    // GET /v1/chain/get_info.
    void get_info(timeout t, handler<chain_info> done);

    // POST /v1/producer/pause (paused=true) or /v1/producer/resume, expecting 201
    // {"result":"ok"}, then POST /v1/producer/paused, expecting 201 and a bare true/false:
    // answers what nodeos reports after the call. One deadline covers both requests. An
    // error leaves the state unknown: the pause or resume may have taken effect.
    void set_paused(bool paused, timeout t, handler<bool> done);

    // Cancels every call; no handler is called after close(). Handlers are never called
    // from inside the call that started them.
    void close();

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

}  // namespace nm
