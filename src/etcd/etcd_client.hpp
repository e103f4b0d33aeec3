#pragma once
// An asynchronous client for the etcd v3 HTTP/JSON gateway, on one io_context.
//
// The HTTP side (connections, TLS, deadlines, endpoints) is net/http_client's; this client
// encodes requests, decodes answers and follows the watch stream. Beast and OpenSSL stay
// out of this header and of etcd_client.cpp.
//
//   caller ──grant/keepalive/campaign/revoke──▶ pool of keep-alive connections ──▶ endpoint[i]
//   caller ──watch────────────────────────────▶ one streaming connection      ──▶ endpoint[i]
//
// A request that etcd cannot serve (no answer, no leader) moves the client on to the next
// endpoint, so retries rotate through the cluster; keepalive answers lead it to etcd's
// leader (leader_finder). Each request carries its own timeout, chosen by the caller.
//
// With a user (etcd's authentication), the client gets a token (POST /v3/auth/authenticate)
// before the first request that etcd checks, sends it as the raw Authorization value, and
// gets a new one when etcd refuses it (expired, unknown to a restarted member, older than
// the auth store; or, etcd 3.4.23, a connection closed without an answer): then the
// request is sent once more, within its own timeout (token_keeper.hpp). A keepalive goes
// at once with the token there is and never waits for one before it is first sent; etcd
// 3.4.42, 3.5.28, 3.6.9 and later check it too, and one refused is sent again the same way.
// Its answer carries the send time of the attempt etcd acknowledged (keepalive_reply::sent),
// which is what a lease deadline may count from. After a move to another member with a
// simple token, a fresh one is asked for at once, in the background.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/text.hpp"
#include "etcd/etcd_types.hpp"
#include "net/http_client.hpp"

namespace nm {

// An etcd member: the URL's host and port, and the address it resolved to.
using endpoint = http_endpoint;

// etcd's user for this client; no user: no authentication.
struct etcd_credentials {
    std::string user;
    std::string password;
    bool empty() const { return user.empty(); }
};

class etcd_client {
public:
    template <class T>
    using handler = std::function<void(etcd_result<T>)>;
    using timeout = std::chrono::nanoseconds;
    // Where the client tells what it does on the way (endpoint changes, retries): debug detail.
    using debug_sink = nm::debug_sink;
    // Where the client tells operators about its user: each authentication (info), and what
    // they must fix (error): etcd refuses the user or password, a permission is missing, etcd
    // wants a user and there is none. A problem is told when it first shows, and again at
    // most once a minute while it lasts.
    using report_sink = std::function<void(level, std::string const&)>;

    // Throws std::runtime_error when the TLS files cannot be loaded.
    etcd_client(boost::asio::io_context& io, std::vector<endpoint> endpoints, tls_files const& tls,
                debug_sink debug = [](std::string const&) {});
    etcd_client(boost::asio::io_context& io, std::vector<endpoint> endpoints, tls_files const& tls,
                etcd_credentials credentials, debug_sink debug, report_sink report);
    ~etcd_client();
    etcd_client(etcd_client const&) = delete;
    etcd_client& operator=(etcd_client const&) = delete;

    // A lease of this ID (etcd refuses one it has: failure::exists), or of a random one.
    void grant(std::int64_t ttl_seconds, std::int64_t id, timeout t, handler<lease_grant> done);
    void grant(std::int64_t ttl_seconds, timeout t, handler<lease_grant> done);
    void keepalive(std::int64_t lease, timeout t, handler<keepalive_reply> done);
    void campaign(std::string const& key, std::string const& value, std::int64_t lease, timeout t,
                  handler<campaign_reply> done);
    void revoke(std::int64_t lease, timeout t, handler<std::monostate> done);
    void time_to_live(std::int64_t lease, timeout t, handler<lease_time_left> done);
    // range_end empty: the one key; otherwise the keys in [key, range_end).
    void range(std::string const& key, std::string const& range_end, timeout t, handler<range_reply> done);
    void put(std::string const& key, std::string const& value, std::int64_t lease, timeout t,
             handler<std::monostate> done);  // lease 0: none
    void erase(std::string const& key, std::string const& range_end, timeout t, handler<std::monostate> done);

    // Opens a watch of one key (range_end empty) or of [key, range_end) from start_revision,
    // replacing any previous watch (whose on_end is then never called). Each message is
    // passed to on_message; when the stream ends for any reason other than a replacement or
    // close(), on_end is called once and the watch is over. An event for a key outside what
    // is watched ends the stream as malformed. A watch that etcd refuses at its creation for
    // its token is opened once more with a new one, unseen by the owner.
    void watch(std::string const& key, std::string const& range_end, std::int64_t start_revision,
               std::function<void(watch_message const&)> on_message,
               std::function<void(etcd_error const&)> on_end);

    // Cancels every request and the watch. No handler is called after close().
    void close();

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

}  // namespace nm
