// Finding etcd's leader among the endpoints: the finder's questions and moves, from the
// answers a client sees. Members A, B and C behind endpoints 0, 1 and 2.
#define BOOST_TEST_MODULE leader_finder
#include <boost/test/unit_test.hpp>

#include <optional>
#include <ostream>
#include <string>

#include "etcd/leader_finder.hpp"

using namespace nm;
using step = leader_finder::step;

namespace nm {
std::ostream& operator<<(std::ostream& out, step const& s) {
    return out << (s.what == step::kind::move ? "move to " : "ask ") << s.endpoint;
}
std::ostream& operator<<(std::ostream& out, std::optional<step> const& s) {
    return s ? out << *s : out << "nothing";
}
}  // namespace nm

namespace {

std::string const A = "101", B = "202", C = "18446744073709551615";

answer_origin from(std::string const& member, std::int64_t term) { return answer_origin{member, term}; }

std::optional<member_status> status_of(std::string const& member, std::int64_t term, std::string const& leader) {
    return member_status{from(member, term), leader};
}

std::optional<step> ask(std::size_t e) { return step{step::kind::ask_status, e}; }
std::optional<step> move(std::size_t e) { return step{step::kind::move, e}; }
std::optional<step> const nothing;

// A finder that has moved the client from A (endpoint 0) to C, the leader in term 5.
leader_finder on_c_in_term_5() {
    leader_finder f(3);
    BOOST_TEST(f.answered(0, from(A, 5), 0) == ask(0));
    BOOST_TEST(f.status(0, status_of(A, 5, C), 0) == ask(1));  // C's endpoint is not known yet
    BOOST_TEST(f.status(1, status_of(B, 5, C), 0) == ask(2));
    BOOST_TEST(f.status(2, status_of(C, 5, C), 0) == move(2));
    BOOST_TEST(f.leader() == C);
    BOOST_TEST(f.term() == 5);
    return f;
}

}  // namespace

BOOST_AUTO_TEST_CASE(finds_the_leader_and_moves_once) {
    auto f = on_c_in_term_5();
    for (int i = 0; i < 500; ++i) BOOST_TEST(f.answered(2, from(C, 5), 2) == nothing);
}

BOOST_AUTO_TEST_CASE(no_question_when_the_first_endpoint_leads) {
    leader_finder f(3);
    BOOST_TEST(f.answered(0, from(A, 3), 0) == ask(0));
    BOOST_TEST(f.status(0, status_of(A, 3, A), 0) == nothing);
    for (int i = 0; i < 500; ++i) BOOST_TEST(f.answered(0, from(A, 3), 0) == nothing);
}

BOOST_AUTO_TEST_CASE(a_known_member_is_not_asked_where_the_leader_is) {
    leader_finder f(3);
    BOOST_TEST(f.answered(1, from(B, 4), 1) == ask(1));
    // B names A, whose endpoint is not known: the endpoints whose member is not known are
    // asked, from the current one on.
    BOOST_TEST(f.status(1, status_of(B, 4, A), 1) == ask(2));
    BOOST_TEST(f.status(2, status_of(A, 4, A), 1) == move(2));
}

BOOST_AUTO_TEST_CASE(an_unreachable_leader_costs_a_status_question_in_ten_renewals_never_a_renewal) {
    auto f = on_c_in_term_5();
    // The client's link to C is cut: a failure moved it on to endpoint 0, where renewals
    // work. C's endpoint is asked again after 10 renewals, and the client moves only when
    // C answers.
    for (int round = 0; round < 3; ++round) {
        int renewals = 1;
        while (f.answered(0, from(A, 5), 0) == nothing) {
            ++renewals;
            BOOST_REQUIRE_MESSAGE(renewals <= 1000, "the finder never asks the leader's endpoint again");
        }
        BOOST_TEST(renewals == 10);
        if (round < 2) BOOST_TEST(f.status(2, std::nullopt, 0) == nothing);
    }
    BOOST_TEST(f.status(2, status_of(C, 5, C), 0) == move(2));
}

BOOST_AUTO_TEST_CASE(moves_only_to_an_endpoint_that_just_answered) {
    leader_finder f(3);
    BOOST_TEST(f.answered(0, from(A, 5), 0) == ask(0));
    BOOST_TEST(f.status(0, status_of(A, 5, C), 0) == ask(1));
    BOOST_TEST(f.status(1, status_of(B, 5, C), 0) == ask(2));
    // C's endpoint does not answer: no move, and no more questions for 10 renewals; then
    // the endpoints whose member is not known are asked again, and C's answer moves the client.
    BOOST_TEST(f.status(2, std::nullopt, 0) == nothing);
    for (int i = 2; i < 10; ++i) BOOST_TEST(f.answered(0, from(A, 5), 0) == nothing);  // the first was the 1st
    BOOST_TEST(f.answered(0, from(A, 5), 0) == ask(2));
    BOOST_TEST(f.status(2, status_of(C, 5, C), 0) == move(2));
}

BOOST_AUTO_TEST_CASE(follows_a_new_leader_after_an_election) {
    auto f = on_c_in_term_5();
    // C answers in term 6: who leads now? C says A, whose endpoint is known.
    BOOST_TEST(f.answered(2, from(C, 6), 2) == ask(2));
    BOOST_TEST(f.status(2, status_of(C, 6, A), 2) == ask(0));  // reachable now?
    BOOST_TEST(f.status(0, status_of(A, 6, A), 2) == move(0));
    BOOST_TEST(f.leader() == A);
    BOOST_TEST(f.answered(0, from(A, 6), 0) == nothing);
}

BOOST_AUTO_TEST_CASE(an_older_term_never_moves_the_client_back) {
    auto f = on_c_in_term_5();
    BOOST_TEST(f.answered(2, from(C, 7), 2) == ask(2));
    BOOST_TEST(f.status(2, status_of(C, 7, B), 2) == ask(1));
    BOOST_TEST(f.status(1, status_of(B, 7, B), 2) == move(1));
    // A, cut off since term 5, still names C: that is older news than B's term 7.
    BOOST_TEST(f.answered(0, from(A, 5), 1) == nothing);
    BOOST_TEST(f.status(0, status_of(A, 5, C), 1) == nothing);
    BOOST_TEST(f.leader() == B);
    BOOST_TEST(f.term() == 7);
}

BOOST_AUTO_TEST_CASE(without_a_leader_each_member_is_asked_once_a_term_or_in_ten_renewals) {
    leader_finder f(3);
    BOOST_TEST(f.answered(0, from(A, 9), 0) == ask(0));
    BOOST_TEST(f.status(0, status_of(A, 9, ""), 0) == ask(1));  // an election under way
    BOOST_TEST(f.status(1, std::nullopt, 0) == ask(2));          // failed or unreadable
    BOOST_TEST(f.status(2, status_of(C, 9, ""), 0) == nothing);
    for (int i = 2; i < 10; ++i) BOOST_TEST(f.answered(0, from(A, 9), 0) == nothing);  // the first was the 1st
    BOOST_TEST(f.answered(0, from(A, 9), 0) == ask(0));
    BOOST_TEST(f.status(0, status_of(A, 9, ""), 0) == ask(1));
    BOOST_TEST(f.status(1, status_of(B, 9, ""), 0) == ask(2));
    BOOST_TEST(f.status(2, status_of(C, 9, ""), 0) == nothing);
    // The next term asks again.
    BOOST_TEST(f.answered(0, from(A, 10), 0) == ask(0));
    BOOST_TEST(f.status(0, status_of(A, 10, B), 0) == ask(1));  // endpoint 1 never said who it is
    BOOST_TEST(f.status(1, status_of(B, 10, B), 0) == move(1));
}

BOOST_AUTO_TEST_CASE(one_question_at_a_time) {
    leader_finder f(3);
    BOOST_TEST(f.answered(0, from(A, 2), 0) == ask(0));
    BOOST_TEST(f.answered(0, from(A, 2), 0) == nothing);
    BOOST_TEST(f.answered(0, from(A, 3), 0) == nothing);  // a newer term waits for the answer
    BOOST_TEST(f.status(0, status_of(A, 2, B), 0) == ask(0));  // the question was of term 2: ask for term 3
    BOOST_TEST(f.status(0, status_of(A, 3, B), 0) == ask(1));
    BOOST_TEST(f.status(1, status_of(B, 3, B), 0) == move(1));
}

BOOST_AUTO_TEST_CASE(a_leader_behind_none_of_the_endpoints_costs_no_more_questions) {
    leader_finder f(2);
    BOOST_TEST(f.answered(0, from(A, 4), 0) == ask(0));
    BOOST_TEST(f.status(0, status_of(A, 4, C), 0) == ask(1));
    BOOST_TEST(f.status(1, status_of(B, 4, C), 0) == nothing);
    for (int i = 0; i < 500; ++i) BOOST_TEST(f.answered(0, from(A, 4), 0) == nothing);
}

BOOST_AUTO_TEST_CASE(one_endpoint_or_out_of_range_does_nothing) {
    leader_finder one(1);
    BOOST_TEST(one.answered(0, from(A, 4), 0) == nothing);
    BOOST_TEST(one.status(0, status_of(A, 4, B), 0) == nothing);
    leader_finder f(2);
    BOOST_TEST(f.answered(2, from(A, 4), 0) == nothing);
    BOOST_TEST(f.answered(0, from(A, 4), 5) == nothing);
    BOOST_TEST(f.status(7, status_of(A, 4, A), 0) == nothing);
}
