// The nodeos API client: nodeos's calls and answers over net/http_client.
//
// The HTTP client calls nothing after close(); handlers hold the impl only weakly, and keep
// it alive while they run, so that an owner may destroy the client from a handler.
#include "nodeos/api_client.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>
#include <variant>

#include "core/text.hpp"
#include "nodeos/api_json.hpp"

namespace nm {
namespace {

using net::http_answer;
using net::http_failure;
using net::http_result;
using net::http_verb;

using steady = std::chrono::steady_clock;

// get_info is about 1 KiB, the producer calls' answers a few bytes: anything much larger
// is not nodeos.
constexpr std::size_t max_answer_body = 64 * 1024;

api_error to_error(http_failure const& f) {
    switch (f.what) {
    case http_failure::kind::timeout: return api_error{api_error::kind::timed_out, 0, f.message};
    case http_failure::kind::too_large:
        return api_error{api_error::kind::malformed, 0, cat("answer longer than ", max_answer_body, " bytes (", f.message, ")")};
    case http_failure::kind::transport:
    case http_failure::kind::canceled: break;
    }
    return api_error{api_error::kind::unavailable, 0, f.message};
}

template <class T>
using decoder = api_result<T> (*)(int, std::string_view);

template <class T>
api_result<T> decode(http_result const& r, decoder<T> decode_answer) {
    if (auto const* f = std::get_if<http_failure>(&r)) return to_error(*f);
    auto const& a = std::get<http_answer>(r);
    return decode_answer(a.status, a.body);
}

// What is left of a deadline, never negative: a request given none times out at once.
nodeos_api::timeout remaining(steady::time_point deadline) {
    return std::max<nodeos_api::timeout>(deadline - steady::now(), nodeos_api::timeout::zero());
}

}  // namespace

struct nodeos_api::impl : std::enable_shared_from_this<impl> {
    impl(boost::asio::io_context& io, http_endpoint base, debug_sink debug)
        : http_(io, {checked(std::move(base))}, tls_files{}, "nodeos API", std::move(debug)) {}

    static http_endpoint checked(http_endpoint base) {
        if (base.tls) throw std::runtime_error(cat("nodeos API ", base.host, ":", base.port, ": https is not supported"));
        return base;
    }

    void get_info(timeout t, handler<chain_info> done) {
        if (closed_) return;
        http_.request(http_verb::get, "/v1/chain/get_info", {}, t, max_answer_body,
                      [weak = weak_from_this(), done = std::move(done)](http_result r) {
                          auto self = weak.lock();
                          if (!self || self->closed_) return;
                          done(decode<chain_info>(r, api_json::decode_get_info));
                      });
    }

    void set_paused(bool paused, timeout t, handler<bool> done) {
        if (closed_) return;
        auto const deadline = steady::now() + std::chrono::duration_cast<steady::duration>(
                                                  std::clamp<timeout>(t, timeout::zero(), std::chrono::hours(24)));
        http_.request(http_verb::post, paused ? "/v1/producer/pause" : "/v1/producer/resume", {}, t, max_answer_body,
                      [weak = weak_from_this(), deadline, done = std::move(done)](http_result r) mutable {
                          auto self = weak.lock();
                          if (!self || self->closed_) return;
                          auto changed = decode<std::monostate>(r, api_json::decode_pause_resume);
                          if (auto const* e = std::get_if<api_error>(&changed)) return done(*e);
                          self->ask_paused(remaining(deadline), std::move(done));
                      });
    }

    // What nodeos reports after a pause or resume.
    void ask_paused(timeout t, handler<bool> done) {
        http_.request(http_verb::post, "/v1/producer/paused", {}, t, max_answer_body,
                      [weak = weak_from_this(), done = std::move(done)](http_result r) {
                          auto self = weak.lock();
                          if (!self || self->closed_) return;
                          done(decode<bool>(r, api_json::decode_paused));
                      });
    }

    void close() {
        closed_ = true;
        http_.close();
    }

    net::http_client http_;
    bool closed_ = false;  // no handler is called once set
};

nodeos_api::nodeos_api(boost::asio::io_context& io, http_endpoint base, debug_sink debug)
    : impl_(std::make_shared<impl>(io, std::move(base), std::move(debug))) {}

nodeos_api::~nodeos_api() {
    if (impl_) impl_->close();
}

void nodeos_api::get_info(timeout t, handler<chain_info> done) { impl_->get_info(t, std::move(done)); }

void nodeos_api::set_paused(bool paused, timeout t, handler<bool> done) {
    impl_->set_paused(paused, t, std::move(done));
}

void nodeos_api::close() { impl_->close(); }

}  // namespace nm
