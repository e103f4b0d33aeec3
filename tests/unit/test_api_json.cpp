// nodeos's API answers, decoded with no socket: canned bodies in the shapes nodeos (Spring
// 1.x) sends, then everything a broken or hostile server could send instead.
#define BOOST_TEST_MODULE api_json
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "nodeos/api_json.hpp"
#include "result_checks.hpp"

using namespace nm;
using namespace nm::api_json;

namespace {

using test::error_of;
using test::value_of;

template <class T>
void require_malformed(api_result<T> const& r, std::string const& said = "") {
    auto const& e = error_of(r);
    BOOST_TEST((e.what == api_error::kind::malformed));
    if (!said.empty()) BOOST_TEST(e.message.find(said) != std::string::npos, e.message << " says " << said);
}

template <class T>
api_error require_status(api_result<T> const& r, int status) {
    auto const e = error_of(r);
    BOOST_TEST((e.what == api_error::kind::status));
    BOOST_TEST(e.http_status == status);
    return e;
}

std::string replace(std::string text, std::string const& from, std::string const& to) {
    auto at = text.find(from);
    BOOST_REQUIRE_MESSAGE(at != std::string::npos, from << " not in the body");
    return text.replace(at, from.size(), to);
}

// A mainnet get_info as Spring 1.x writes it (ids shortened to what matters: 64 hex digits,
// the first 8 the block number). total_*_weight are above 2^32: fc writes them as strings.
std::string const get_info_body =
    R"({"server_version":"8ab3f1a2","chain_id":"aca376f206b8fc25a6ed44dbdc66547c36c6c33e3a119ffbeaef943642f0e906",)"
    R"("head_block_num":433419337,"last_irreversible_block_num":433419335,)"
    R"("last_irreversible_block_id":"19d574470f8a1f0e8d1c6c1b0b6c8bb6e0a1f4b2cb6f3c5e2a9a0c4d7e8f9a0b",)"
    R"("head_block_id":"19d574497e2b5a0c1d3f4e5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8",)"
    R"("head_block_time":"2025-09-04T12:00:00.500","head_block_producer":"eosnationftw",)"
    R"("virtual_block_cpu_limit":200000000,"virtual_block_net_limit":1048576000,"block_cpu_limit":200000,)"
    R"("block_net_limit":1048576,"server_version_string":"v1.1.2","fork_db_head_block_num":433419337,)"
    R"("fork_db_head_block_id":"19d574497e2b5a0c1d3f4e5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8",)"
    R"("server_full_version_string":"v1.1.2-17ed17f68b6c33fe3bb9d7b2cfe7d1c4e3b1f2a0",)"
    R"("total_cpu_weight":"383524473934591","total_net_weight":"95881118483648",)"
    R"("earliest_available_block_num":433000000,"last_irreversible_block_time":"2025-09-04T11:59:59.500"})";

// nodeos's error bodies (verbose-http-errors off), as http_plugin writes them.
std::string const not_found_body =
    R"({"code":404,"message":"Not Found","error":{"code":0,"name":"exception","what":"unspecified",)"
    R"("details":[{"message":"Unknown Endpoint","file":"beast_http_session.hpp","line_number":186,"method":"handle_request"}]}})";
std::string const invalid_request_body =
    R"({"code":400,"message":"Invalid Request","error":{"code":3200006,"name":"invalid_http_request",)"
    R"("what":"invalid http request","details":[{"message":"no parameter should be given","file":"http_plugin.hpp",)"
    R"("line_number":268,"method":"parse_params"}]}})";
std::string const internal_error_body =
    R"({"code":500,"message":"Internal Service Error","error":{"code":0,"name":"exception","what":"unspecified",)"
    R"json("details":[{"message":"simulated fault: pause = error","file":"producer_api_plugin.cpp","line_number":99,"method":"operator()"}]}})json";

}  // namespace

// --- get_info -------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(get_info_as_nodeos_writes_it) {
    auto info = value_of(decode_get_info(200, get_info_body));
    BOOST_TEST(info.head_block_num == 433419337);
    BOOST_TEST(info.last_irreversible_block_num == 433419335);
    BOOST_TEST(info.head_block_time_ms == 1756987200500);
    BOOST_TEST(info.chain_id == "aca376f206b8fc25a6ed44dbdc66547c36c6c33e3a119ffbeaef943642f0e906");
    BOOST_TEST(info.server_version == "v1.1.2");
    BOOST_TEST(info.head_block_producer == "eosnationftw");
}

BOOST_AUTO_TEST_CASE(get_info_integers_as_strings) {
    // Above 2^32 fc writes integers as strings; below it, nodeos could too.
    auto body = replace(get_info_body, R"("head_block_num":433419337)", R"("head_block_num":"4294967297")");
    body = replace(body, R"("last_irreversible_block_num":433419335)", R"("last_irreversible_block_num":"4294967295")");
    auto info = value_of(decode_get_info(200, body));
    BOOST_TEST(info.head_block_num == 4294967297);
    BOOST_TEST(info.last_irreversible_block_num == 4294967295);
    // The largest a block number can be here.
    auto largest = replace(get_info_body, "433419337,", "9223372036854775807,");
    BOOST_TEST(value_of(decode_get_info(200, largest)).head_block_num == 9223372036854775807);
    auto largest_string = replace(get_info_body, "433419337,", R"("9223372036854775807",)");
    BOOST_TEST(value_of(decode_get_info(200, largest_string)).head_block_num == 9223372036854775807);
}

BOOST_AUTO_TEST_CASE(get_info_numbers_that_are_not_block_numbers) {
    for (std::string const bad : {"-1", "1.5", "4.33e8", "18446744073709551615", "9223372036854775808",
                                  "100000000000000000000000000000", R"("")", R"("-1")", R"("+12")",
                                  R"(" 12")", R"("12 ")", R"("12a")", R"("0x1f")", R"("99999999999999999999")",
                                  "true", "[]", "{}", R"("1.5")"}) {
        BOOST_TEST_CONTEXT("head_block_num " << bad) {
            require_malformed(decode_get_info(200, replace(get_info_body, "433419337,", bad + ",")), "head_block_num");
        }
    }
    // Beyond what a double holds: the parser refuses the whole body.
    require_malformed(decode_get_info(200, replace(get_info_body, "433419337,", "1e400,")));
}

BOOST_AUTO_TEST_CASE(get_info_without_a_field_it_needs) {
    struct cut {
        std::string field, value;
    };
    for (auto const& [field, value] : std::vector<cut>{{"head_block_num", "433419337"},
                                                       {"last_irreversible_block_num", "433419335"},
                                                       {"head_block_time", R"("2025-09-04T12:00:00.500")"},
                                                       {"chain_id", R"("aca376f206b8fc25a6ed44dbdc66547c36c6c33e3a119ffbeaef943642f0e906")"}}) {
        BOOST_TEST_CONTEXT(field) {
            auto const member = "\"" + field + "\":" + value + ",";
            require_malformed(decode_get_info(200, replace(get_info_body, member, "")), field);
            require_malformed(decode_get_info(200, replace(get_info_body, member, "\"" + field + "\":null,")), field);
        }
    }
    // What is only for the logs may be missing.
    auto info = value_of(decode_get_info(
        200, replace(replace(get_info_body, R"("server_version_string":"v1.1.2",)", ""),
                     R"("head_block_producer":"eosnationftw",)", "")));
    BOOST_TEST(info.server_version.empty());
    BOOST_TEST(info.head_block_producer.empty());
    BOOST_TEST(info.head_block_num == 433419337);
}

BOOST_AUTO_TEST_CASE(get_info_fields_of_the_wrong_type) {
    require_malformed(decode_get_info(200, replace(get_info_body, R"("2025-09-04T12:00:00.500")", "1756987200500")),
                      "head_block_time");
    require_malformed(decode_get_info(200, replace(get_info_body, R"("aca376f206b8fc25a6ed44dbdc66547c36c6c33e3a119ffbeaef943642f0e906")", "7")),
                      "chain_id");
    require_malformed(decode_get_info(200, replace(get_info_body, R"("v1.1.2")", "112")), "server_version_string");
    require_malformed(decode_get_info(200, replace(get_info_body, R"("eosnationftw")", "[]")), "head_block_producer");
}

BOOST_AUTO_TEST_CASE(get_info_with_a_bad_head_block_time) {
    for (std::string const bad : {"", "2025-09-04", "2025-09-04 12:00:00.500", "2025-09-04T12:00:00.", "2025-13-04T12:00:00.500",
                                  "2025-02-29T12:00:00.500", "2025-09-04T24:00:00.500", "2025-09-04T12:60:00.500",
                                  "2025-09-04T12:00:60.500", "2025-09-04T12:00:00.500+02:00", "2025-09-04T12:00:00.500ZZ",
                                  "1969-12-31T23:59:59.999", "2025-9-04T12:00:00.500", "+025-09-04T12:00:00.500",
                                  "2025-09-04T12:00:00.5000000000", "2025-09-04T12:00:00.50a", "now"}) {
        BOOST_TEST_CONTEXT("head_block_time '" << bad << "'") {
            require_malformed(decode_get_info(200, replace(get_info_body, "2025-09-04T12:00:00.500", bad)), "head_block_time");
        }
    }
}

BOOST_AUTO_TEST_CASE(block_times) {
    BOOST_TEST(*parse_block_time("2025-09-04T12:00:00.500") == 1756987200500);
    BOOST_TEST(*parse_block_time("2018-06-08T08:08:08.500") == 1528445288500);  // the simulator's genesis
    BOOST_TEST(*parse_block_time("2024-02-29T23:59:59.999") == 1709251199999);  // a leap day
    BOOST_TEST(*parse_block_time("1970-01-01T00:00:00.000") == 0);
    BOOST_TEST(*parse_block_time("9999-12-31T23:59:59.999") == 253402300799999);
    // Other writings of the same instants: no fraction, fewer or more digits, a 'Z'.
    BOOST_TEST(*parse_block_time("2025-09-04T12:00:00") == 1756987200000);
    BOOST_TEST(*parse_block_time("2025-09-04T12:00:00.5") == 1756987200500);
    BOOST_TEST(*parse_block_time("2025-09-04T12:00:00.500999") == 1756987200500);
    BOOST_TEST(*parse_block_time("2025-09-04T12:00:00.500Z") == 1756987200500);
    BOOST_TEST(!parse_block_time("2100-02-29T00:00:00.000"));  // not a leap year
    BOOST_TEST(!parse_block_time("2025-04-31T00:00:00.000"));
    BOOST_TEST(!parse_block_time("2025-00-10T00:00:00.000"));
    BOOST_TEST(!parse_block_time("2025-09-00T00:00:00.000"));
    BOOST_TEST(!parse_block_time(std::string_view("2025-09-04T12:00:00\0", 20)));
}

BOOST_AUTO_TEST_CASE(get_info_that_is_not_json_or_not_whole) {
    require_malformed(decode_get_info(200, ""), "not JSON");
    require_malformed(decode_get_info(200, "<html><body>502 Bad Gateway</body></html>"), "not JSON");
    require_malformed(decode_get_info(200, "[]"), "not an object");
    require_malformed(decode_get_info(200, "\"head_block_num\""), "not an object");
    require_malformed(decode_get_info(200, get_info_body + "}"), "not JSON");
    // Cut anywhere, the body is malformed, never a crash and never a chain_info.
    for (std::size_t n = 0; n < get_info_body.size(); ++n) {
        BOOST_TEST_CONTEXT("cut at " << n) {
            require_malformed(decode_get_info(200, std::string_view(get_info_body).substr(0, n)));
        }
    }
}

BOOST_AUTO_TEST_CASE(get_info_with_another_status) {
    auto const e = require_status(decode_get_info(404, not_found_body), 404);
    BOOST_TEST(e.message == "Not Found: Unknown Endpoint");
    BOOST_TEST(describe(e) == "HTTP 404: Not Found: Unknown Endpoint");
    BOOST_TEST((kind_of(e) == failure::rejected));
    // Even a well-formed get_info under another status is not an answer.
    require_status(decode_get_info(201, get_info_body), 201);
    require_status(decode_get_info(204, ""), 204);
    auto const html = require_status(decode_get_info(502, "<html>\r\n<h1>502 Bad Gateway</h1>\r\n</html>"), 502);
    BOOST_TEST(html.message == "<html>  <h1>502 Bad Gateway</h1>  </html>");
}

// --- pause, resume, paused ------------------------------------------------------------

BOOST_AUTO_TEST_CASE(pause_and_resume_answers) {
    BOOST_TEST(std::holds_alternative<std::monostate>(decode_pause_resume(201, R"({"result":"ok"})")));
    BOOST_TEST(std::holds_alternative<std::monostate>(decode_pause_resume(201, " { \"result\" : \"ok\" }\n")));
    // Anything but 201 is an error carrying its status, whatever the body.
    require_status(decode_pause_resume(200, R"({"result":"ok"})"), 200);
    auto const bad = require_status(decode_pause_resume(400, invalid_request_body), 400);
    BOOST_TEST(bad.message == "Invalid Request: invalid http request: no parameter should be given");
    auto const failed = require_status(decode_pause_resume(500, internal_error_body), 500);
    BOOST_TEST(failed.message == "Internal Service Error: simulated fault: pause = error");
    require_status(decode_pause_resume(404, not_found_body), 404);
    // A 201 that does not say ok.
    for (std::string const body : {"", "ok", R"("ok")", "{}", R"({"result":"error"})", R"({"result":true})",
                                   R"({"result":"OK"})", "[\"ok\"]", R"({"result":"ok")", "true"}) {
        BOOST_TEST_CONTEXT("body " << body) { require_malformed(decode_pause_resume(201, body)); }
    }
}

BOOST_AUTO_TEST_CASE(paused_answers) {
    BOOST_TEST(value_of(decode_paused(201, "true")) == true);
    BOOST_TEST(value_of(decode_paused(201, "false")) == false);
    BOOST_TEST(value_of(decode_paused(201, " true\n")) == true);
    require_status(decode_paused(200, "true"), 200);
    require_status(decode_paused(404, not_found_body), 404);
    for (std::string const body : {"", "True", "1", "0", R"("true")", R"({"paused":true})", "[true]", "tru",
                                   "true false", "null", R"({"result":"ok"})"}) {
        BOOST_TEST_CONTEXT("body " << body) { require_malformed(decode_paused(201, body), "true or false"); }
    }
}

// --- errors ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(error_bodies) {
    // Without JSON, the start of the body, on one line.
    BOOST_TEST(decode_error(503, "").message.empty());
    BOOST_TEST(describe(decode_error(503, "")) == "HTTP 503");
    std::string const long_text(1000, 'x');
    auto const cut = decode_error(500, long_text).message;
    BOOST_TEST(cut.size() < 200u);
    BOOST_TEST(cut.ends_with("..."));
    // JSON without nodeos's fields: the body itself.
    BOOST_TEST(decode_error(500, "[1,2]").message == "[1,2]");
    BOOST_TEST(decode_error(500, R"({"code":500})").message == R"({"code":500})");
    // Odd shapes are read as far as they go.
    BOOST_TEST(decode_error(500, R"({"message":"Oops","error":7})").message == "Oops");
    BOOST_TEST(decode_error(500, R"({"message":"Oops","error":{"details":{"message":"x"}}})").message == "Oops");
    BOOST_TEST(decode_error(500, R"({"message":7,"error":{"what":"bad thing","details":[1,{"message":"here"}]}})").message ==
               "bad thing: here");
    // Many details, long messages: bounded.
    std::string many = R"({"message":"Too many","error":{"details":[)";
    for (int i = 0; i < 100; ++i) many += (i ? "," : "") + std::string(R"({"message":")") + long_text + R"("})";
    many += "]}}";
    BOOST_TEST(decode_error(500, many).message.size() < 1000u);
}

BOOST_AUTO_TEST_CASE(kinds_and_sentences) {
    BOOST_TEST((kind_of(api_error{api_error::kind::unavailable, 0, "x"}) == failure::unavailable));
    BOOST_TEST((kind_of(api_error{api_error::kind::timed_out, 0, "x"}) == failure::timed_out));
    BOOST_TEST((kind_of(api_error{api_error::kind::status, 500, "x"}) == failure::rejected));
    BOOST_TEST((kind_of(api_error{api_error::kind::malformed, 201, "x"}) == failure::malformed));
    BOOST_TEST(describe(api_error{api_error::kind::unavailable, 0, "connect 127.0.0.1:8888: Connection refused"}) ==
               "unavailable: connect 127.0.0.1:8888: Connection refused");
    BOOST_TEST(describe(api_error{api_error::kind::timed_out, 0, ""}) == "timed out");
    BOOST_TEST(describe(api_error{api_error::kind::malformed, 201, "no"}) == "malformed answer: no");
}
