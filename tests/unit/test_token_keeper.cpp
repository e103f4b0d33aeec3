// The token keeper on a fake clock: who waits, when it authenticates, what a refusal
// means, and what operators are told. No sockets (tests/test_etcd_auth.cpp has the client).
#define BOOST_TEST_MODULE token_keeper
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <string>

#include "etcd/token_keeper.hpp"

using namespace nm;
using namespace std::chrono_literals;
using keeper = token_keeper;
using admission = token_keeper::admission;

namespace {

keeper::time_point const t0{std::chrono::hours(1)};

etcd_error status_error(int http, int code, std::string message) {
    return etcd_error{etcd_error::kind::status, http, code, std::move(message)};
}

etcd_error const wrong_password =
    status_error(400, 3, "etcdserver: authentication failed, invalid user ID or password");
etcd_error const not_enabled = status_error(400, 9, "etcdserver: authentication is not enabled");
etcd_error const timed_out{etcd_error::kind::timeout, 0, 0, "read 127.0.0.1:2379: timed out"};

bool told(keeper::steps const& s, level l, std::string const& part) {
    return std::any_of(s.reports.begin(), s.reports.end(),
                       [&](auto const& r) { return r.lvl == l && r.text.find(part) != std::string::npos; });
}

bool resumed_ok(keeper::steps const& s, keeper::waiter_id id) {
    return std::any_of(s.resumed.begin(), s.resumed.end(), [&](auto const& r) { return r.id == id && !r.error; });
}

}  // namespace

BOOST_AUTO_TEST_CASE(without_a_user_every_request_goes_at_once_without_a_token) {
    keeper k("");
    BOOST_TEST(!k.enabled());
    BOOST_TEST((k.admit(t0) == admission::go));
    BOOST_TEST(k.token().empty());
}

BOOST_AUTO_TEST_CASE(the_first_requests_share_one_authentication) {
    keeper k("bp");
    BOOST_TEST((k.admit(t0) == admission::wait));
    auto first = k.wait(1, t0 + 5s, t0);
    BOOST_TEST((first.authenticate == std::optional(t0 + 5s)), "the authentication answers by the first deadline");
    BOOST_TEST(first.resumed.empty());
    auto second = k.wait(2, t0 + 9s, t0 + 1ms);
    BOOST_TEST(!second.authenticate.has_value(), "one authentication at a time");
    BOOST_TEST(k.authenticating());

    auto done = k.authenticated(std::string("abcdefghijklmnop.7"), t0 + 10ms);
    BOOST_TEST(resumed_ok(done, 1));
    BOOST_TEST(resumed_ok(done, 2));
    BOOST_TEST(done.problems_over);
    BOOST_TEST(told(done, level::info, "authenticated to etcd as user bp"));
    BOOST_TEST(k.token() == "abcdefghijklmnop.7");
    BOOST_TEST(k.generation() == 1u);
    BOOST_TEST(!k.authenticating());
    BOOST_TEST((k.admit(t0 + 11ms) == admission::go));
}

BOOST_AUTO_TEST_CASE(a_refused_token_is_forgotten_only_if_it_is_still_the_current_one) {
    keeper k("bp");
    k.wait(1, t0 + 5s, t0);
    k.authenticated(std::string("T1"), t0);
    k.refused(1, "etcdserver: invalid auth token");
    BOOST_TEST(k.token().empty());
    BOOST_TEST((k.admit(t0) == admission::wait));
    k.wait(2, t0 + 5s, t0);
    auto again = k.authenticated(std::string("T2"), t0 + 1ms);
    BOOST_TEST(told(again, level::info, "authenticated to etcd again as user bp: the last token was refused "
                                        "(etcdserver: invalid auth token)"));
    // A request that carried T1 and was refused later does not drop T2.
    k.refused(1, "late refusal of T1");
    BOOST_TEST(k.token() == "T2");
}

BOOST_AUTO_TEST_CASE(a_refused_password_fails_every_request_for_a_second_then_asks_again) {
    keeper k("bp", 1s);
    k.wait(1, t0 + 5s, t0);
    k.wait(2, t0 + 5s, t0);
    auto refused = k.authenticated(wrong_password, t0 + 1ms);
    BOOST_TEST(refused.resumed.size() == 2u);
    for (auto const& r : refused.resumed) {
        BOOST_REQUIRE(r.error.has_value());
        BOOST_TEST((r.error->what == etcd_error::kind::refused_credentials));
    }
    BOOST_TEST(told(refused, level::error, "etcd refuses user bp: wrong password (or no such user)"));
    BOOST_TEST(refused.reports.front().problem, "told at most once a minute");
    BOOST_TEST((k.admit(t0 + 500ms) == admission::refused));
    BOOST_TEST((k.refusal().what == etcd_error::kind::refused_credentials));
    BOOST_TEST((k.admit(t0 + 1001ms) == admission::wait), "after the hold, etcd is asked again");
    // A move during the hold asks for nothing either.
    BOOST_TEST(!k.moved("member 2", t0 + 100ms).authenticate.has_value());
}

BOOST_AUTO_TEST_CASE(any_other_invalid_argument_of_an_authentication_is_the_password_s) {
    keeper k("bp");
    k.wait(1, t0 + 5s, t0);
    auto refused = k.authenticated(status_error(400, 3, "etcdserver: something new"), t0);
    BOOST_REQUIRE(refused.resumed.size() == 1u);
    BOOST_TEST((refused.resumed[0].error->what == etcd_error::kind::refused_credentials));
}

BOOST_AUTO_TEST_CASE(an_etcd_without_authentication_is_used_without_a_token) {
    keeper k("bp");
    k.wait(1, t0 + 5s, t0);
    auto s = k.authenticated(not_enabled, t0);
    BOOST_TEST(resumed_ok(s, 1));
    BOOST_TEST(told(s, level::warning, "etcd has authentication disabled: user bp is not used"));
    BOOST_TEST((k.admit(t0) == admission::go));
    BOOST_TEST(k.token().empty());
    // Until etcd refuses a request for its missing token: then it is asked for one.
    k.refused(0, "etcdserver: user name is empty");
    BOOST_TEST((k.admit(t0) == admission::wait));
}

BOOST_AUTO_TEST_CASE(an_authentication_that_timed_out_is_tried_again_for_the_later_deadlines) {
    keeper k("bp");
    k.wait(1, t0 + 1s, t0);
    k.wait(2, t0 + 3s, t0);
    k.wait(3, t0 + 2s, t0);
    auto s = k.authenticated(timed_out, t0 + 1s);
    BOOST_TEST((s.authenticate == std::optional(t0 + 3s)), "once more, until the last deadline");
    BOOST_REQUIRE(s.resumed.size() == 1u);
    BOOST_TEST(s.resumed[0].id == 1u);
    BOOST_TEST((s.resumed[0].error->what == etcd_error::kind::timeout));
    BOOST_TEST(s.resumed[0].error->message.find("authenticate as user bp: ") == 0u, s.resumed[0].error->message);
    auto done = k.authenticated(std::string("T1"), t0 + 1500ms);
    BOOST_TEST(resumed_ok(done, 2));
    BOOST_TEST(resumed_ok(done, 3));
}

BOOST_AUTO_TEST_CASE(a_request_whose_deadline_passes_stops_waiting_alone) {
    keeper k("bp");
    k.wait(1, t0 + 100ms, t0);
    k.wait(2, t0 + 5s, t0);
    auto s = k.expired(1);
    BOOST_REQUIRE(s.resumed.size() == 1u);
    BOOST_TEST((s.resumed[0].error->what == etcd_error::kind::timeout));
    BOOST_TEST(s.resumed[0].error->message == "no token for etcd user bp in time: the authentication is still under way");
    BOOST_TEST(k.expired(1).resumed.empty(), "once");
    BOOST_TEST(k.authenticating());
    auto done = k.authenticated(std::string("T1"), t0 + 200ms);
    BOOST_TEST(done.resumed.size() == 1u);
    BOOST_TEST(resumed_ok(done, 2));
}

BOOST_AUTO_TEST_CASE(a_move_asks_for_a_fresh_simple_token_while_the_old_one_still_goes_out) {
    keeper k("bp");
    k.wait(1, t0 + 5s, t0);
    k.authenticated(std::string("abcdefghijklmnop.7"), t0);
    auto s = k.moved("member 127.0.0.1:2381", t0 + 1s);
    BOOST_TEST((s.authenticate == std::optional(t0 + 6s)));
    BOOST_TEST((k.admit(t0 + 1s) == admission::go), "requests do not wait for the refresh");
    BOOST_TEST(k.token() == "abcdefghijklmnop.7");
    BOOST_TEST(!k.moved("member 127.0.0.1:2383", t0 + 1s).authenticate.has_value(), "one authentication at a time");
    auto done = k.authenticated(std::string("qrstuvwxyzabcdef.9"), t0 + 1100ms);
    BOOST_TEST(k.token() == "qrstuvwxyzabcdef.9");
    BOOST_TEST(told(done, level::info, "authenticated to etcd again as user bp: requests moved to member "
                                       "127.0.0.1:2381, where a simple token may not be valid"));
}

BOOST_AUTO_TEST_CASE(a_refresh_that_fails_keeps_the_token_there_is) {
    keeper k("bp");
    k.wait(1, t0 + 5s, t0);
    k.authenticated(std::string("abcdefghijklmnop.7"), t0);
    k.moved("member 2", t0);
    auto s = k.authenticated(timed_out, t0 + 5s);
    BOOST_TEST(k.token() == "abcdefghijklmnop.7");
    BOOST_TEST(!s.authenticate.has_value());
    BOOST_TEST(told(s, level::debug, "a fresh token after the move failed"));
}

BOOST_AUTO_TEST_CASE(a_refused_request_joins_a_refresh_under_way) {
    keeper k("bp");
    k.wait(1, t0 + 5s, t0);
    k.authenticated(std::string("abcdefghijklmnop.7"), t0);
    k.moved("member 2", t0);
    k.refused(1, "etcdserver: invalid auth token");
    BOOST_TEST((k.admit(t0) == admission::wait));
    BOOST_TEST(!k.wait(2, t0 + 2s, t0).authenticate.has_value(), "it waits for the refresh in flight");
    auto done = k.authenticated(std::string("qrstuvwxyzabcdef.9"), t0 + 10ms);
    BOOST_TEST(resumed_ok(done, 2));
}

BOOST_AUTO_TEST_CASE(a_jwt_is_kept_across_moves) {
    keeper k("bp");
    k.wait(1, t0 + 5s, t0);
    k.authenticated(std::string("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2VybmFtZSI6ImJwIn0.c2lnbmF0dXJl"), t0);
    BOOST_TEST((k.token_kind() == keeper::kind::jwt));
    BOOST_TEST(!k.moved("member 2", t0).authenticate.has_value(), "valid on every member");
}

BOOST_AUTO_TEST_CASE(no_token_no_refresh) {
    keeper k("bp");
    BOOST_TEST(!k.moved("member 2", t0).authenticate.has_value());
    keeper none("");
    BOOST_TEST(!none.moved("member 2", t0).authenticate.has_value());
}

BOOST_AUTO_TEST_CASE(the_kinds_of_token) {
    BOOST_TEST((keeper::kind_of("") == keeper::kind::none));
    BOOST_TEST((keeper::kind_of("abcdefghijklmnop.12") == keeper::kind::simple));
    BOOST_TEST((keeper::kind_of("a.b.c") == keeper::kind::jwt));
    BOOST_TEST((keeper::kind_of("opaque") == keeper::kind::simple), "unknown forms are refreshed after a move");
}
