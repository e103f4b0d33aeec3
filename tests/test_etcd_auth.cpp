// etcd's users in the gateway client. Loopback fakes script what etcd says of a token (an
// invalid one, an old auth store, a connection closed without an answer as etcd 3.4.23
// does), of a password and of a permission; a real etcd with authentication on
// (run_with_etcd.py --auth: a user limited to [PREFIX, PREFIX0), tokens that expire after
// 2 s idle) checks that the client does all the monitor needs, and what it says when it
// cannot.
#define BOOST_TEST_MODULE etcd_auth
#include <boost/test/unit_test.hpp>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/text.hpp"
#include "etcd/etcd_client.hpp"
#include "etcd_calls.hpp"
#include "loopback.hpp"
#include "result_checks.hpp"

namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace nm;
using test::fake_reply;
using test::fake_request;
using test::fake_server;
using test::ms_since;
using test::run_until;
using test::keepalive;
using test::loopback;
using test::test_debug;
using test::wait_for;
using test::watch_log;
using steady = std::chrono::steady_clock;

namespace {

constexpr auto request_timeout = 5s;

// What the client told operators.
struct report_log {
    std::vector<std::pair<level, std::string>> lines;

    etcd_client::report_sink sink() {
        return [this](level l, std::string const& text) {
            if (std::getenv("NM_TEST_DEBUG")) std::fprintf(stderr, "report %s\n", text.c_str());
            lines.emplace_back(l, text);
        };
    }
    int count(level l, std::string const& part) const {
        return static_cast<int>(std::count_if(lines.begin(), lines.end(), [&](auto const& line) {
            return line.first == l && line.second.find(part) != std::string::npos;
        }));
    }
    std::string all() const {
        std::string out;
        for (auto const& [l, text] : lines) out += text + "\n";
        return out;
    }
};

using test::error_of;
using test::value_of;

etcd_result<range_reply> read(asio::io_context& io, etcd_client& c, std::string const& key,
                              std::string const& range_end = {}, etcd_client::timeout t = request_timeout) {
    return wait_for<range_reply>(io, [&](auto done) { c.range(key, range_end, t, done); });
}

etcd_result<lease_grant> grant(asio::io_context& io, etcd_client& c, std::int64_t ttl = 10) {
    return wait_for<lease_grant>(io, [&](auto done) { c.grant(ttl, request_timeout, done); });
}

// --- a scripted etcd --------------------------------------------------------------------

// The value of a header field of a request ("" when absent), its name matched in any case.
std::string field(fake_request const& r, std::string const& name) {
    auto lower = [](std::string s) {
        for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return s;
    };
    auto const head = lower(r.head);
    auto const at = head.find("\r\n" + lower(name) + ":");
    if (at == std::string::npos) return {};
    auto start = at + 2 + name.size() + 1;
    while (start < r.head.size() && r.head[start] == ' ') ++start;
    return r.head.substr(start, r.head.find("\r\n", start) - start);
}

fake_reply answer(std::string const& status, std::string const& body) {
    return fake_reply{{test::answer_text(status, body)}, {}, fake_reply::then::next};
}

fake_reply ok(std::string const& body) { return answer("HTTP/1.1 200 OK", body); }

std::string const range_ok = R"({"header":{"revision":"5"}})";
std::string const put_ok = R"({"header":{"revision":"6"}})";
std::string const keepalive_ok = R"({"result":{"header":{"revision":"5"},"ID":"7","TTL":"5"}})" "\n";
std::string const grant_ok = R"({"header":{"revision":"5"},"ID":"7","TTL":"5"})";

fake_reply invalid_token() {
    return answer("HTTP/1.1 401 Unauthorized",
                  R"({"error":"etcdserver: invalid auth token","message":"etcdserver: invalid auth token","code":16})");
}
fake_reply old_auth_store() {
    return answer("HTTP/1.1 400 Bad Request",
                  R"({"error":"etcdserver: revision of auth store is old","message":"etcdserver: revision of auth store is old","code":3})");
}
// etcd 3.4.23 (etcd #15256): the connection closes, nothing is answered.
fake_reply no_answer() { return fake_reply{{}, {}, fake_reply::then::close}; }
fake_reply permission_denied() {
    return answer("HTTP/1.1 403 Forbidden",
                  R"({"error":"etcdserver: permission denied","message":"etcdserver: permission denied","code":7})");
}
fake_reply wrong_password() {
    return answer("HTTP/1.1 400 Bad Request",
                  R"({"error":"etcdserver: authentication failed, invalid user ID or password","message":"etcdserver: authentication failed, invalid user ID or password","code":3})");
}

// An etcd with authentication: /v3/auth/authenticate hands out T1, T2, ... (or what
// `on_authenticate` says); every other request goes to `on_call` with its token.
struct fake_etcd {
    using call_script = std::function<fake_reply(fake_request const&, std::string const& token)>;

    fake_etcd(asio::io_context& io, call_script calls,
              std::function<std::optional<fake_reply>(int)> auth = [](int) { return std::nullopt; })
        : on_call(std::move(calls)), on_authenticate(std::move(auth)), server(io, [this](fake_request const& r) {
              if (r.target == "/v3/auth/authenticate") {
                  ++authentications;
                  auth_bodies.push_back(r.body);
                  if (auto scripted = on_authenticate(authentications)) return *scripted;
                  return ok(cat(R"({"header":{"revision":"1"},"token":"T)", authentications, R"("})"));
              }
              auto token = field(r, "Authorization");
              this->calls.emplace_back(r.target, token);
              return on_call(r, token);
          }) {}

    int calls_to(std::string const& target, std::string const& token = "*") const {
        return static_cast<int>(std::count_if(calls.begin(), calls.end(), [&](auto const& c) {
            return c.first == target && (token == "*" || c.second == token);
        }));
    }

    int authentications = 0;
    std::vector<std::string> auth_bodies;
    std::vector<std::pair<std::string, std::string>> calls;  // target, Authorization
    call_script on_call;
    std::function<std::optional<fake_reply>(int)> on_authenticate;
    fake_server server;
};

etcd_credentials const bp{"bp", "pw \"quoted\" \\ back"};

}  // namespace

// --- the token -------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(one_authentication_then_the_raw_token_with_every_checked_call) {
    asio::io_context io;
    fake_etcd etcd(io, [](fake_request const& r, std::string const& token) {
        if (token != "T1") return invalid_token();
        return ok(r.target == "/v3/kv/put" ? put_ok : range_ok);
    });
    report_log reports;
    etcd_client client(io, {loopback(etcd.server.port())}, {}, bp, test_debug(), reports.sink());
    // Several at once, before any token: they share one authentication.
    int answers = 0;
    for (int i = 0; i < 3; ++i) {
        client.range("g", "g0", request_timeout, [&](etcd_result<range_reply> r) {
            BOOST_TEST(std::holds_alternative<range_reply>(r));
            ++answers;
        });
    }
    client.put("g/members/a", "{}", 0, request_timeout, [&](etcd_result<std::monostate> r) {
        BOOST_TEST(std::holds_alternative<std::monostate>(r));
        ++answers;
    });
    BOOST_REQUIRE(run_until(io, [&] { return answers == 4; }, 10s));
    BOOST_TEST(etcd.authentications == 1);
    BOOST_TEST(etcd.calls_to("/v3/kv/range", "T1") == 3, "the raw token, no \"Bearer \"");
    BOOST_TEST(etcd.calls_to("/v3/kv/put", "T1") == 1);
    auto body = nlohmann::json::parse(etcd.auth_bodies.at(0));
    BOOST_TEST(body.at("name") == "bp");
    BOOST_TEST(body.at("password") == bp.password);
    BOOST_TEST(reports.count(level::info, "authenticated to etcd as user bp") == 1, reports.all());
    // Later calls reuse the token.
    value_of(read(io, client, "g"));
    BOOST_TEST(etcd.authentications == 1);
}

BOOST_AUTO_TEST_CASE(a_refused_token_is_replaced_and_the_request_sent_once_more) {
    struct refusal {
        char const* name;
        fake_reply (*reply)();
    };
    for (auto const& [name, reply] : {refusal{"invalid auth token", invalid_token},
                                      refusal{"revision of auth store is old", old_auth_store},
                                      refusal{"connection closed without an answer", no_answer}}) {
        BOOST_TEST_CONTEXT(name) {
            asio::io_context io;
            fake_etcd etcd(io, [reply](fake_request const&, std::string const& token) {
                return token == "T1" ? reply() : ok(range_ok);
            });
            report_log reports;
            etcd_client client(io, {loopback(etcd.server.port())}, {}, bp, test_debug(), reports.sink());
            auto const started = steady::now();
            auto r = value_of(read(io, client, "g", "g0"));
            BOOST_TEST(r.revision == 5);
            BOOST_TEST(etcd.authentications == 2);
            BOOST_TEST(etcd.calls_to("/v3/kv/range", "T1") >= 1);
            BOOST_TEST(etcd.calls_to("/v3/kv/range", "T2") == 1);
            BOOST_TEST(reports.count(level::info, "authenticated to etcd again as user bp: the last token was refused") == 1,
                       reports.all());
            BOOST_TEST(ms_since(started) < 2000);
        }
    }
}

BOOST_AUTO_TEST_CASE(a_token_refused_twice_ends_the_request) {
    asio::io_context io;
    fake_etcd etcd(io, [](fake_request const&, std::string const&) { return invalid_token(); });
    report_log reports;
    etcd_client client(io, {loopback(etcd.server.port())}, {}, bp, test_debug(), reports.sink());
    auto e = error_of(read(io, client, "g"));
    BOOST_TEST((e.what == etcd_error::kind::refused_credentials));
    BOOST_TEST((kind_of(e) == failure::unauthenticated));
    BOOST_TEST(etcd.authentications == 2, "once more, not more");
    BOOST_TEST(etcd.calls_to("/v3/kv/range") == 2);
    BOOST_TEST(reports.count(level::warning, "etcd refuses the token of user bp even when new") == 1, reports.all());
}

BOOST_AUTO_TEST_CASE(keepalives_go_at_once_whatever_the_token) {
    asio::io_context io;
    fake_etcd etcd(
        io,
        [&](fake_request const& r, std::string const&) {
            if (r.target == "/v3/lease/keepalive") return ok(keepalive_ok);
            return ok(range_ok);
        },
        [](int) {
            // A slow authentication (bcrypt on a busy etcd): keepalives must not wait for it.
            auto slow = ok(R"({"header":{},"token":"T1"})");
            slow.delay = 1500ms;
            return std::optional<fake_reply>(slow);
        });
    etcd_client client(io, {loopback(etcd.server.port())}, {}, bp, test_debug(), [](level, std::string const&) {});
    auto const started = steady::now();
    BOOST_TEST((value_of(keepalive(io, client, 7)).ttl_seconds == std::optional<std::int64_t>(5)));
    BOOST_TEST(ms_since(started) < 500);
    BOOST_TEST(etcd.authentications == 0, "an etcd that does not check keepalives costs no authentication");
    BOOST_TEST(etcd.calls_to("/v3/lease/keepalive", "") == 1, "no token yet: none sent");

    // A read waits for the token; a keepalive sent meanwhile does not.
    std::optional<etcd_result<range_reply>> range;
    client.range("g", "", request_timeout, [&](etcd_result<range_reply> r) { range = std::move(r); });
    auto const during = steady::now();
    BOOST_TEST((value_of(keepalive(io, client, 7)).ttl_seconds == std::optional<std::int64_t>(5)));
    BOOST_TEST(ms_since(during) < 500);
    BOOST_TEST(!range.has_value());
    BOOST_REQUIRE(run_until(io, [&] { return range.has_value(); }, 5s));
    value_of(*range);

    // With a token, keepalives carry it.
    BOOST_TEST((value_of(keepalive(io, client, 7)).ttl_seconds == std::optional<std::int64_t>(5)));
    BOOST_TEST(etcd.calls_to("/v3/lease/keepalive", "T1") == 1);
    BOOST_TEST(etcd.authentications == 1);
}

// etcd 3.4.42, 3.5.28, 3.6.9 and later check a keepalive's token (GHSA-q8m4-xhhv-38mg): an
// expired token, one a restarted member forgot, or none at all.
BOOST_AUTO_TEST_CASE(a_keepalive_refused_for_its_token_is_sent_again_and_counts_from_the_second_send) {
    struct refusal {
        char const* name;
        fake_reply (*reply)();
    };
    auto no_user = [] {
        return answer("HTTP/1.1 400 Bad Request", R"({"error":{"code":3,"message":"etcdserver: user name is empty"}})");
    };
    auto streamed_invalid = [] {
        return answer("HTTP/1.1 401 Unauthorized", R"({"error":{"code":16,"message":"etcdserver: invalid auth token"}})");
    };
    for (auto const& [name, reply] : {refusal{"invalid auth token (3.4, 3.5 unary form)", invalid_token},
                                      refusal{"invalid auth token (a streamed RPC's error)", +streamed_invalid},
                                      refusal{"revision of auth store is old", old_auth_store},
                                      refusal{"no token: user name is empty", +no_user}}) {
        BOOST_TEST_CONTEXT(name) {
            // Without a token yet, the keepalive goes without one; otherwise with T1, which
            // etcd has forgotten.
            bool const tokenless = std::string(name).find("no token") != std::string::npos;
            std::string const fresh = tokenless ? "T1" : "T2";
            asio::io_context io;
            fake_etcd etcd(
                io,
                [reply, fresh](fake_request const& r, std::string const& token) {
                    if (r.target == "/v3/lease/keepalive") return token == fresh ? ok(keepalive_ok) : reply();
                    return ok(range_ok);
                },
                [](int n) {
                    auto a = ok(cat(R"({"header":{},"token":"T)", n, R"("})"));
                    a.delay = 200ms;  // so that the second send is measurably later than the first
                    return std::optional<fake_reply>(a);
                });
            report_log reports;
            etcd_client client(io, {loopback(etcd.server.port())}, {}, bp, test_debug(), reports.sink());
            if (!tokenless) value_of(read(io, client, "g"));  // T1
            auto const asked = boot_clock::now();
            auto const started = steady::now();
            auto reply_ok = value_of(keepalive(io, client, 7));
            BOOST_TEST((reply_ok.ttl_seconds == std::optional<std::int64_t>(5)));
            BOOST_TEST(etcd.calls_to("/v3/lease/keepalive", fresh) == 1, "sent again with the new token");
            BOOST_TEST(etcd.calls_to("/v3/lease/keepalive") == 2, "once more, not more");
            // The lease deadline counts from the send etcd acknowledged: after the authentication.
            BOOST_TEST(std::chrono::duration_cast<std::chrono::milliseconds>(reply_ok.sent - asked).count() >= 190);
            BOOST_TEST((reply_ok.sent <= boot_clock::now()));
            BOOST_TEST(ms_since(started) < 2000);
            BOOST_TEST(reports.count(level::info, "authenticated to etcd") >= 1, reports.all());
        }
    }
}

BOOST_AUTO_TEST_CASE(a_refused_keepalive_is_sent_again_only_within_its_own_deadline) {
    asio::io_context io;
    bool hang = false;
    fake_etcd etcd(
        io,
        [](fake_request const& r, std::string const& token) {
            if (r.target == "/v3/lease/keepalive" && token != "T2") return invalid_token();
            return ok(r.target == "/v3/lease/keepalive" ? keepalive_ok : range_ok);
        },
        [&](int n) {
            auto a = ok(cat(R"({"header":{},"token":"T)", n, R"("})"));
            if (hang) a.delay = 3s;
            return std::optional<fake_reply>(a);
        });
    etcd_client client(io, {loopback(etcd.server.port())}, {}, bp, test_debug(), [](level, std::string const&) {});
    value_of(read(io, client, "g"));  // T1
    hang = true;                      // the authentication the refusal starts hangs
    auto const started = steady::now();
    auto e = error_of(wait_for<keepalive_reply>(io, [&](auto done) { client.keepalive(7, 300ms, done); }));
    BOOST_TEST((e.what == etcd_error::kind::timeout), describe(e));
    BOOST_TEST(ms_since(started) >= 290);
    BOOST_TEST(ms_since(started) < 800, "the keepalive waited past its deadline");
    BOOST_TEST(etcd.calls_to("/v3/lease/keepalive") == 1);
}

BOOST_AUTO_TEST_CASE(a_keepalive_refused_with_every_token_ends_refused_and_bounded) {
    asio::io_context io;
    fake_etcd etcd(io, [](fake_request const& r, std::string const&) {
        return r.target == "/v3/lease/keepalive" ? invalid_token() : ok(range_ok);
    });
    report_log reports;
    etcd_client client(io, {loopback(etcd.server.port())}, {}, bp, test_debug(), reports.sink());
    value_of(read(io, client, "g"));
    auto e = error_of(keepalive(io, client, 7));
    BOOST_TEST((e.what == etcd_error::kind::refused_credentials), describe(e));
    BOOST_TEST((kind_of(e) == failure::unauthenticated));
    BOOST_TEST(etcd.calls_to("/v3/lease/keepalive") == 2, "once more, not more");
    BOOST_TEST(etcd.authentications == 2);
    BOOST_TEST(reports.count(level::warning, "etcd refuses the token of user bp even when new") == 1, reports.all());
}

BOOST_AUTO_TEST_CASE(a_keepalive_after_a_refused_password_fails_at_once) {
    asio::io_context io;
    fake_etcd etcd(
        io,
        [](fake_request const& r, std::string const&) {
            return r.target == "/v3/lease/keepalive" ? invalid_token() : ok(range_ok);
        },
        [](int n) { return n == 1 ? std::nullopt : std::optional<fake_reply>(wrong_password()); });
    report_log reports;
    etcd_client client(io, {loopback(etcd.server.port())}, {}, bp, test_debug(), reports.sink());
    value_of(read(io, client, "g"));
    for (int i = 0; i < 5; ++i) {
        auto e = error_of(keepalive(io, client, 7));
        BOOST_TEST((e.what == etcd_error::kind::refused_credentials), describe(e));
    }
    BOOST_TEST(etcd.authentications == 2, "a refused password is not asked for again at once: no storm");
    BOOST_TEST(reports.count(level::error, "etcd refuses user bp: wrong password") == 1, reports.all());
}

// A simple token lives in each member's memory, with its own timer there (etcd #7012): after
// requests move to another member, a fresh token is asked for at once, in the background.
BOOST_AUTO_TEST_CASE(a_move_to_another_member_gets_a_fresh_simple_token_before_the_next_keepalive) {
    for (bool jwt : {false, true}) {
        BOOST_TEST_CONTEXT((jwt ? "JWT" : "simple token")) {
            asio::io_context io;
            auto token_of = [jwt](char const* member, int n) {
                return jwt ? cat("eyJhbGciOiJSUzI1NiJ9.", member, n, ".c2ln") : cat("abcdefghijklmnop", member, ".", n);
            };
            auto auth = [token_of](char const* member) {
                return [token_of, member](int n) {
                    return std::optional<fake_reply>(ok(cat(R"({"header":{},"token":")", token_of(member, n), R"("})")));
                };
            };
            // a: its tokens are valid on a; it has lost its leader, so requests move to b.
            fake_etcd a(io, [](fake_request const&, std::string const&) {
                return answer("HTTP/1.1 503 Service Unavailable",
                              R"({"error":"etcdserver: no leader","message":"etcdserver: no leader","code":14})");
            }, auth("a"));
            // b: accepts its own simple tokens only (a's expired there), and any JWT.
            fake_etcd b(io, [jwt](fake_request const& r, std::string const& token) {
                bool const valid = jwt ? !token.empty() : token.find("b.") != std::string::npos;
                if (!valid) return invalid_token();
                return ok(r.target == "/v3/lease/keepalive" ? keepalive_ok : range_ok);
            }, auth("b"));
            report_log reports;
            etcd_client client(io, {loopback(a.server.port()), loopback(b.server.port())}, {}, bp, test_debug(),
                               reports.sink());
            auto e = error_of(read(io, client, "g"));  // a token from a, then "no leader": on to b
            BOOST_TEST(e.grpc_code == 14);
            BOOST_TEST(a.authentications == 1);
            if (!jwt) {
                BOOST_REQUIRE(run_until(io, [&] { return b.authentications == 1; }, 5s));
                BOOST_TEST(reports.count(level::info, "authenticated to etcd again as user bp: requests moved to member") == 1,
                           reports.all());
            }
            value_of(keepalive(io, client, 7));
            BOOST_TEST(b.calls_to("/v3/lease/keepalive") == 1, "the keepalive was refused on the new member");
            BOOST_TEST(b.authentications == (jwt ? 0 : 1), "a JWT is valid on every member");
            BOOST_TEST(b.calls_to("/v3/lease/keepalive", token_of(jwt ? "a" : "b", 1)) == 1);
        }
    }
}

// --- what operators must fix -------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_wrong_password_is_told_once_and_not_asked_again_at_once) {
    asio::io_context io;
    fake_etcd etcd(io, [](fake_request const&, std::string const&) { return ok(grant_ok); },
                   [](int) { return std::optional<fake_reply>(wrong_password()); });
    report_log reports;
    etcd_client client(io, {loopback(etcd.server.port())}, {}, bp, test_debug(), reports.sink());
    auto e = error_of(grant(io, client));
    BOOST_TEST((e.what == etcd_error::kind::refused_credentials));
    BOOST_TEST((kind_of(e) == failure::unauthenticated));
    BOOST_TEST(describe(e).find("etcd refuses user bp: wrong password") == 0, describe(e));
    BOOST_TEST(reports.count(level::error, "etcd refuses user bp: wrong password") == 1, reports.all());
    // Asked again at once: the same answer, without asking etcd (bcrypt costs it).
    for (int i = 0; i < 5; ++i) BOOST_TEST((error_of(grant(io, client)).what == etcd_error::kind::refused_credentials));
    BOOST_TEST(etcd.authentications == 1);
    BOOST_TEST(etcd.calls_to("/v3/lease/grant") == 0, "nothing is sent without a token");
    // After the hold, etcd is asked again; the same problem is not told again within a minute.
    std::this_thread::sleep_for(1100ms);
    error_of(grant(io, client));
    BOOST_TEST(etcd.authentications == 2);
    BOOST_TEST(reports.count(level::error, "etcd refuses user bp") == 1, reports.all());
}

BOOST_AUTO_TEST_CASE(permission_denied_names_the_keys_and_is_told_once) {
    asio::io_context io;
    fake_etcd etcd(io, [](fake_request const&, std::string const&) { return permission_denied(); });
    report_log reports;
    etcd_client client(io, {loopback(etcd.server.port())}, {}, bp, test_debug(), reports.sink());
    for (int i = 0; i < 3; ++i) {
        auto e = error_of(read(io, client, "g", "g0"));
        BOOST_TEST((e.what == etcd_error::kind::permission_denied));
        BOOST_TEST((kind_of(e) == failure::rejected));
        BOOST_TEST(describe(e) == R"(permission denied for keys ["g", "g0") (range) as etcd user bp: etcdserver: permission denied)");
    }
    auto put = error_of(wait_for<std::monostate>(io, [&](auto done) { client.put("g/members/a", "{}", 0, 1s, done); }));
    BOOST_TEST(describe(put).find(R"(permission denied for key "g/members/a" (put))") == 0, describe(put));
    BOOST_TEST(etcd.authentications == 1, "a missing permission is not the token's fault");
    BOOST_TEST(reports.count(level::error, R"(permission denied for keys ["g", "g0") (range))") == 1, reports.all());
    BOOST_TEST(reports.count(level::error, R"(permission denied for key "g/members/a" (put))") == 1, reports.all());
}

BOOST_AUTO_TEST_CASE(no_user_for_an_etcd_that_wants_one) {
    asio::io_context io;
    fake_etcd etcd(io, [](fake_request const&, std::string const&) {
        return answer("HTTP/1.1 400 Bad Request",
                      R"({"error":"etcdserver: user name is empty","message":"etcdserver: user name is empty","code":3})");
    });
    report_log reports;
    etcd_client client(io, {loopback(etcd.server.port())}, {}, etcd_credentials{}, test_debug(), reports.sink());
    auto e = error_of(read(io, client, "g"));
    BOOST_TEST((kind_of(e) == failure::unauthenticated));
    BOOST_TEST(reports.count(level::error, "etcd has authentication enabled and no user is configured") == 1, reports.all());
    BOOST_TEST(etcd.authentications == 0);
    BOOST_TEST(etcd.calls_to("/v3/kv/range", "") == 1);
}

BOOST_AUTO_TEST_CASE(an_etcd_without_authentication_is_used_without_a_token) {
    asio::io_context io;
    fake_etcd etcd(io, [](fake_request const&, std::string const&) { return ok(range_ok); }, [](int) {
        return std::optional<fake_reply>(answer(
            "HTTP/1.1 412 Precondition Failed",
            R"({"error":"etcdserver: authentication is not enabled","message":"etcdserver: authentication is not enabled","code":9})"));
    });
    report_log reports;
    etcd_client client(io, {loopback(etcd.server.port())}, {}, bp, test_debug(), reports.sink());
    value_of(read(io, client, "g"));
    value_of(read(io, client, "g"));
    BOOST_TEST(etcd.authentications == 1);
    BOOST_TEST(etcd.calls_to("/v3/kv/range", "") == 2);
    BOOST_TEST(reports.count(level::warning, "etcd has authentication disabled: user bp is not used") == 1, reports.all());
}

// --- bounds and malformed answers --------------------------------------------------------

BOOST_AUTO_TEST_CASE(waiting_for_a_token_ends_at_each_request_s_deadline) {
    asio::io_context io;
    fake_etcd etcd(io, [](fake_request const&, std::string const&) { return ok(range_ok); }, [](int n) {
        auto reply = ok(R"({"header":{},"token":"T1"})");
        if (n == 1) reply.delay = 3s;  // the first authentication hangs past both deadlines
        return std::optional<fake_reply>(reply);
    });
    etcd_client client(io, {loopback(etcd.server.port())}, {}, bp, test_debug(), [](level, std::string const&) {});
    std::optional<etcd_result<range_reply>> slow, quick;
    std::optional<long long> slow_ms, quick_ms;
    auto const started = steady::now();
    client.range("g", "", 400ms, [&](etcd_result<range_reply> r) {
        slow = std::move(r);
        slow_ms = ms_since(started);
    });
    client.range("g", "", 150ms, [&](etcd_result<range_reply> r) {
        quick = std::move(r);
        quick_ms = ms_since(started);
    });
    BOOST_REQUIRE(run_until(io, [&] { return slow && quick; }, 3s));
    BOOST_TEST((error_of(*quick).what == etcd_error::kind::timeout));
    BOOST_TEST((error_of(*slow).what == etcd_error::kind::timeout));
    BOOST_TEST(*quick_ms >= 140);
    BOOST_TEST(*quick_ms < 350, "the quick request waited for the slow one's authentication");
    BOOST_TEST(*slow_ms >= 390);
    BOOST_TEST(*slow_ms < 900);
    BOOST_TEST(etcd.authentications == 1, "one authentication for both");
    BOOST_TEST(etcd.calls.empty());
    // The next request authenticates anew.
    value_of(read(io, client, "g"));
    BOOST_TEST(etcd.authentications == 2);
}

BOOST_AUTO_TEST_CASE(a_malformed_authenticate_answer_is_an_error) {
    for (std::string const& body : {std::string(R"({"header":{}})"), std::string(R"({"token":"a\r\nX-Other: 1"})"),
                                   std::string("<html>busy</html>"), std::string(R"({"token":17})")}) {
        BOOST_TEST_CONTEXT(body) {
            asio::io_context io;
            fake_etcd etcd(io, [](fake_request const&, std::string const&) { return ok(range_ok); },
                           [body](int) { return std::optional<fake_reply>(ok(body)); });
            report_log reports;
            etcd_client client(io, {loopback(etcd.server.port())}, {}, bp, test_debug(), reports.sink());
            auto e = error_of(read(io, client, "g"));
            BOOST_TEST((e.what == etcd_error::kind::malformed), describe(e));
            BOOST_TEST(etcd.calls.empty(), "nothing is sent without a usable token");
        }
    }
}

// --- the watch ---------------------------------------------------------------------------

namespace {

std::string const watch_header = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

fake_reply watch_stream(std::vector<std::string> lines) {
    fake_reply r{{watch_header}, {}, fake_reply::then::hold};
    for (auto const& line : lines) r.pieces.push_back(test::chunk(line + "\n"));
    return r;
}

std::string canceled_line(std::string const& reason) {
    return cat(R"({"result":{"header":{"revision":"1"},"watch_id":"-1","created":true,"canceled":true,"cancel_reason":")",
               reason, R"("}})");
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_watch_refused_for_its_token_is_opened_again_unseen) {
    asio::io_context io;
    fake_etcd etcd(io, [](fake_request const&, std::string const& token) {
        if (token == "T1") return watch_stream({canceled_line("rpc error: code = Unauthenticated desc = etcdserver: invalid auth token")});
        return watch_stream({R"({"result":{"header":{"revision":"5"},"created":true}})",
                             R"({"result":{"header":{"revision":"6"},"events":[{"kv":{"key":"Zy9t","value":"eA==","mod_revision":"6"}}]}})"});
    });
    etcd_client client(io, {loopback(etcd.server.port())}, {}, bp, test_debug(), [](level, std::string const&) {});
    watch_log log;
    client.watch("g", "g0", 5, log.on_message(), log.on_end());
    BOOST_REQUIRE(run_until(io, [&] { return log.events().size() == 1 || !log.ends.empty(); }, 5s));
    BOOST_TEST(log.ends.empty());
    BOOST_TEST(log.created() == 1, "the refused watch is not shown to its owner");
    BOOST_TEST(etcd.calls_to("/v3/watch", "T1") == 1);
    BOOST_TEST(etcd.calls_to("/v3/watch", "T2") == 1);
    BOOST_TEST(etcd.authentications == 2);
}

BOOST_AUTO_TEST_CASE(a_watch_denied_a_permission_ends_with_its_keys_named) {
    asio::io_context io;
    fake_etcd etcd(io, [](fake_request const&, std::string const&) {
        return watch_stream({canceled_line("rpc error: code = PermissionDenied desc = etcdserver: permission denied")});
    });
    report_log reports;
    etcd_client client(io, {loopback(etcd.server.port())}, {}, bp, test_debug(), reports.sink());
    watch_log log;
    client.watch("g", "g0", 5, log.on_message(), log.on_end());
    BOOST_REQUIRE(run_until(io, [&] { return !log.ends.empty(); }, 5s));
    BOOST_TEST((log.ends[0].what == etcd_error::kind::permission_denied));
    BOOST_TEST(describe(log.ends[0]).find(R"(permission denied for keys ["g", "g0") (watch) as etcd user bp)") == 0,
               describe(log.ends[0]));
    BOOST_TEST(reports.count(level::error, "permission denied for keys") == 1, reports.all());
    BOOST_TEST(etcd.authentications == 1);
}

// --- against a real etcd with authentication on ------------------------------------------

namespace {

std::string env(char const* name) {
    char const* value = std::getenv(name);
    BOOST_REQUIRE_MESSAGE(value, name << " is not set: run this test through tests/run_with_etcd.py --auth");
    return value;
}

endpoint real_etcd() {
    auto const url = env("NM_TEST_ETCD");
    auto const colon = url.rfind(':');
    return loopback(static_cast<std::uint16_t>(std::stoi(url.substr(colon + 1))));
}

etcd_credentials real_user() { return etcd_credentials{env("NM_TEST_ETCD_USER"), env("NM_TEST_ETCD_PASSWORD")}; }

std::string prefix() { return env("NM_TEST_ETCD_PREFIX"); }

// Longer than etcd's --auth-token-ttl: a token unused this long is gone.
std::chrono::milliseconds token_expiry() { return std::chrono::seconds(std::stoi(env("NM_TEST_ETCD_TOKEN_TTL"))) + 1500ms; }

}  // namespace

BOOST_AUTO_TEST_CASE(real_a_limited_role_does_all_the_monitor_does_on_its_keys) {
    asio::io_context io;
    report_log reports;
    etcd_client client(io, {real_etcd()}, {}, real_user(), test_debug(), reports.sink());
    auto const group = prefix();
    auto lease = value_of(grant(io, client, 10));
    auto won = value_of(wait_for<campaign_reply>(io, [&](auto done) {
        client.campaign(group, R"({"node":"a"})", lease.id, request_timeout, done);
    }));
    BOOST_TEST(won.won);
    value_of(wait_for<std::monostate>(io, [&](auto done) {
        client.put(group + "/members/a", "{}", lease.id, request_timeout, done);
    }));
    auto keys = value_of(read(io, client, group, group + "0"));
    BOOST_TEST(keys.kvs.size() == 2u);
    watch_log log;
    client.watch(group, group + "0", keys.revision + 1, log.on_message(), log.on_end());
    BOOST_REQUIRE(run_until(io, [&] { return log.created() == 1 || !log.ends.empty(); }, 5s));
    value_of(wait_for<std::monostate>(io, [&](auto done) { client.put(group + "/pause", "{}", 0, request_timeout, done); }));
    BOOST_REQUIRE(run_until(io, [&] { return log.events().size() == 1 || !log.ends.empty(); }, 5s));
    BOOST_TEST(log.ends.empty());
    BOOST_TEST((value_of(keepalive(io, client, lease.id)).ttl_seconds == std::optional<std::int64_t>(10)));
    BOOST_TEST(value_of(wait_for<lease_time_left>(io, [&](auto done) {
                   client.time_to_live(lease.id, request_timeout, done);
               })).ttl_seconds.has_value());
    value_of(wait_for<std::monostate>(io, [&](auto done) { client.erase(group + "/pause", "", request_timeout, done); }));
    value_of(wait_for<std::monostate>(io, [&](auto done) { client.revoke(lease.id, request_timeout, done); }));
    BOOST_TEST(value_of(read(io, client, group, group + "0")).kvs.empty());
    BOOST_TEST(reports.count(level::info, "authenticated to etcd as user " + real_user().user) == 1, reports.all());
    BOOST_TEST(reports.count(level::error, "") == 0, reports.all());
}

BOOST_AUTO_TEST_CASE(real_outside_its_keys_permission_is_denied) {
    asio::io_context io;
    report_log reports;
    etcd_client client(io, {real_etcd()}, {}, real_user(), test_debug(), reports.sink());
    auto e = error_of(read(io, client, "elsewhere", "elsewhere0"));
    BOOST_TEST((e.what == etcd_error::kind::permission_denied), describe(e));
    BOOST_TEST(describe(e).find(R"(permission denied for keys ["elsewhere", "elsewhere0") (range))") == 0, describe(e));
    auto lease = value_of(grant(io, client, 10));
    auto txn = error_of(wait_for<campaign_reply>(io, [&](auto done) {
        client.campaign("elsewhere", "x", lease.id, request_timeout, done);
    }));
    BOOST_TEST((txn.what == etcd_error::kind::permission_denied), describe(txn));
    watch_log log;
    client.watch("elsewhere", "elsewhere0", 0, log.on_message(), log.on_end());
    BOOST_REQUIRE(run_until(io, [&] { return !log.ends.empty(); }, 5s));
    BOOST_TEST((log.ends[0].what == etcd_error::kind::permission_denied), describe(log.ends[0]));
    BOOST_TEST(reports.count(level::error, "permission denied for") == 3, reports.all());
    value_of(wait_for<std::monostate>(io, [&](auto done) { client.revoke(lease.id, request_timeout, done); }));
}

BOOST_AUTO_TEST_CASE(real_a_wrong_password_is_refused) {
    asio::io_context io;
    report_log reports;
    auto user = real_user();
    etcd_client client(io, {real_etcd()}, {}, etcd_credentials{user.user, user.password + "-wrong"}, test_debug(),
                       reports.sink());
    auto e = error_of(grant(io, client));
    BOOST_TEST((kind_of(e) == failure::unauthenticated));
    BOOST_TEST(describe(e).find("etcd refuses user " + user.user + ": wrong password") == 0, describe(e));
    BOOST_TEST(reports.count(level::error, "etcd refuses user " + user.user + ": wrong password") == 1, reports.all());
}

BOOST_AUTO_TEST_CASE(real_an_expired_token_is_replaced_unseen) {
    asio::io_context io;
    report_log reports;
    etcd_client client(io, {real_etcd()}, {}, real_user(), test_debug(), reports.sink());
    auto const group = prefix();
    value_of(read(io, client, group, group + "0"));
    auto lease = value_of(grant(io, client, 30));
    std::this_thread::sleep_for(token_expiry());
    // A keepalive goes with the expired token and is answered: etcd before 3.4.42 and 3.5.28
    // does not check it; later ones refuse it, and the client sends it again with a new one.
    auto const asked = boot_clock::now();
    auto renewed = value_of(keepalive(io, client, lease.id));
    BOOST_TEST((renewed.ttl_seconds == std::optional<std::int64_t>(30)));
    BOOST_TEST((renewed.sent >= asked && renewed.sent <= boot_clock::now()));
    auto const checked = reports.count(level::info, "authenticated to etcd again");
    BOOST_TEST_MESSAGE("this etcd " << (checked ? "checks" : "does not check") << " the token of keepalives");
    BOOST_TEST(checked <= 1, reports.all());
    // A read right after has a valid token: a new one, got for it or for the keepalive.
    value_of(read(io, client, group, group + "0"));
    BOOST_TEST(reports.count(level::info, "authenticated to etcd again as user " + real_user().user) == 1, reports.all());
    // So does a watch opened after the next expiry.
    std::this_thread::sleep_for(token_expiry());
    watch_log log;
    client.watch(group, group + "0", 0, log.on_message(), log.on_end());
    BOOST_REQUIRE(run_until(io, [&] { return log.created() == 1 || !log.ends.empty(); }, 5s));
    BOOST_TEST(log.ends.empty());
    BOOST_TEST(reports.count(level::info, "authenticated to etcd again") == 2, reports.all());
    value_of(wait_for<std::monostate>(io, [&](auto done) { client.revoke(lease.id, request_timeout, done); }));
}

BOOST_AUTO_TEST_CASE(real_root_may_do_anything) {
    asio::io_context io;
    report_log reports;
    etcd_client client(io, {real_etcd()}, {}, etcd_credentials{"root", env("NM_TEST_ETCD_ROOT_PASSWORD")}, test_debug(),
                       reports.sink());
    value_of(read(io, client, "elsewhere", "elsewhere0"));
    BOOST_TEST(reports.count(level::info, "authenticated to etcd as user root") == 1, reports.all());
}
