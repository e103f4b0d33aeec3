// The gateway's JSON, encoded and decoded with no socket: canned answers in the shapes
// etcd 3.4.23 really sends (captured with curl against a test etcd).
#define BOOST_TEST_MODULE gateway_json
#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "etcd/base64.hpp"
#include "etcd/gateway_errors.hpp"
#include "etcd/gateway_json.hpp"
#include "etcd/line_splitter.hpp"
#include "etcd/group_keys.hpp"
#include "etcd/lock_value.hpp"
#include "result_checks.hpp"

using nlohmann::json;
using namespace nm;
using namespace nm::gateway;

namespace {

using test::value_of;
using test::error_of;

template <class T>
void require_malformed(etcd_result<T> const& r) {
    BOOST_TEST((error_of(r).what == etcd_error::kind::malformed));
}

// The header every answer carries; cluster and member IDs exceed int64: a member ID is
// read as the decimal text it is (a keepalive's, to find the leader), the cluster's never.
std::string const header =
    R"("header":{"cluster_id":"16862965869899335621","member_id":"17548468176109369136","revision":"7","raft_term":"2"})";

std::string const lease_not_found_body =
    R"({"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5})";

}  // namespace

// --- base64 ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(base64_known_values) {
    BOOST_TEST(base64_encode("") == "");
    BOOST_TEST(base64_encode("f") == "Zg==");
    BOOST_TEST(base64_encode("fo") == "Zm8=");
    BOOST_TEST(base64_encode("foo") == "Zm9v");
    BOOST_TEST(base64_encode("foob") == "Zm9vYg==");
    BOOST_TEST(base64_encode("lock") == "bG9jaw==");
    BOOST_TEST(*base64_decode("bm9kZUE=") == "nodeA");
    BOOST_TEST(base64_decode("")->empty());
}

BOOST_AUTO_TEST_CASE(base64_round_trips_every_byte_and_length) {
    std::string all;
    for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
    for (std::size_t n = 0; n <= all.size(); ++n) {
        auto raw = all.substr(256 - n);
        auto decoded = base64_decode(base64_encode(raw));
        BOOST_REQUIRE(decoded.has_value());
        BOOST_TEST(*decoded == raw);
    }
}

BOOST_AUTO_TEST_CASE(base64_rejects_invalid_text) {
    for (auto bad : {"Zg", "Zg=", "Z===", "====", "Zm9v!", "Zm9v Zg==", "Zm=v", "Z=g=", "bG9j\naw==", "Zm9-",
                     "Zm9_"}) {
        BOOST_TEST(!base64_decode(bad).has_value(), bad);
    }
}

// --- encoders -------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(encode_grant_sends_ttl_and_the_id_asked_for_as_strings) {
    auto j = json::parse(encode_grant(5, 7587870155367317508));
    BOOST_TEST(j == json::parse(R"({"TTL":"5","ID":"7587870155367317508"})"));
}

BOOST_AUTO_TEST_CASE(encode_lease_id_sends_id_as_string) {
    auto j = json::parse(encode_lease_id(7587870155367317508));
    BOOST_TEST(j == json::parse(R"({"ID":"7587870155367317508"})"));
}

BOOST_AUTO_TEST_CASE(encode_campaign_is_create_if_absent_with_lease) {
    auto j = json::parse(encode_campaign("/nm/lock", "node-a", 42));
    auto const key = base64_encode("/nm/lock");
    BOOST_REQUIRE(j.at("compare").size() == 1u);
    auto const& cmp = j.at("compare")[0];
    BOOST_TEST(cmp.at("key") == key);
    BOOST_TEST(cmp.at("target") == "CREATE");
    BOOST_TEST(cmp.at("result") == "EQUAL");
    BOOST_TEST(cmp.at("create_revision") == "0");
    // Won: the put, then a read of the key, which shows what the put did.
    BOOST_REQUIRE(j.at("success").size() == 2u);
    auto const& put = j.at("success")[0].at("request_put");
    BOOST_TEST(put.at("key") == key);
    BOOST_TEST(put.at("value") == base64_encode("node-a"));
    BOOST_TEST(put.at("lease") == "42");
    BOOST_TEST(j.at("success")[1].at("request_range") == json({{"key", key}}));
    BOOST_REQUIRE(j.at("failure").size() == 1u);
    BOOST_TEST(j.at("failure")[0].at("request_range") == json({{"key", key}}));
}

BOOST_AUTO_TEST_CASE(encode_watch_asks_for_progress_and_not_for_previous_values) {
    auto j = json::parse(encode_watch("/nm/lock", "", 12));
    auto const& c = j.at("create_request");
    BOOST_TEST(c.at("key") == base64_encode("/nm/lock"));
    BOOST_TEST(c.at("start_revision") == "12");
    BOOST_TEST(!c.contains("prev_kv"));  // nothing reads a deleted key's old value
    BOOST_TEST(!c.contains("range_end"));
    auto r = json::parse(encode_watch("eos", "eos0", 3)).at("create_request");
    BOOST_TEST(r.at("range_end") == base64_encode("eos0"));
    BOOST_TEST(c.at("progress_notify") == true);
}

// --- errors ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(error_objects_of_every_status) {
    auto e400 = error_of(decode_grant(400,
        R"({"error":"invalid character 'x' looking for beginning of value","message":"invalid character 'x' looking for beginning of value","code":3})", 1));
    BOOST_TEST((e400.what == etcd_error::kind::status));
    BOOST_TEST(e400.http_status == 400);
    BOOST_TEST(e400.grpc_code == 3);
    BOOST_TEST(e400.message == "invalid character 'x' looking for beginning of value");
    BOOST_TEST((kind_of(e400) == failure::rejected));

    auto e404 = error_of(decode_done(404, lease_not_found_body));
    BOOST_TEST(e404.http_status == 404);
    BOOST_TEST(e404.grpc_code == 5);
    BOOST_TEST((kind_of(e404) == failure::not_found));
    BOOST_TEST(describe(e404) == "HTTP 404 (grpc 5): etcdserver: requested lease not found");

    auto e503 = error_of(decode_keepalive(503,
        R"({"error":"etcdserver: request timed out","message":"etcdserver: request timed out","code":14})", 1));
    BOOST_TEST(e503.http_status == 503);
    BOOST_TEST(e503.grpc_code == 14);
    BOOST_TEST(describe(e503) == "HTTP 503 (grpc 14): etcdserver: request timed out");

    // The code may be a string, as any integer can be.
    BOOST_TEST(error_of(decode_campaign(503, R"({"message":"x","code":"14"})", "lock", "v", 1)).grpc_code == 14);
    // Only "error" present.
    BOOST_TEST(error_of(decode_campaign(500, R"({"error":"boom","code":2})", "lock", "v", 1)).message == "boom");
}

BOOST_AUTO_TEST_CASE(error_bodies_that_are_not_the_gateway_s) {
    auto plain = error_of(decode_grant(404, "Not Found\n", 1));
    BOOST_TEST((plain.what == etcd_error::kind::status));
    BOOST_TEST(plain.http_status == 404);
    BOOST_TEST(plain.grpc_code == 0);
    BOOST_TEST(plain.message == "Not Found ");
    BOOST_TEST((kind_of(plain) == failure::rejected));

    auto empty = error_of(decode_done(502, ""));
    BOOST_TEST(empty.http_status == 502);
    BOOST_TEST(describe(empty) == "HTTP 502");

    // A code of the wrong type is ignored rather than trusted.
    auto odd = error_of(decode_done(404, R"({"code":{},"message":"m"})"));
    BOOST_TEST(odd.grpc_code == 0);
    BOOST_TEST(odd.http_status == 404);
}

BOOST_AUTO_TEST_CASE(decode_error_alone) {
    auto e = decode_error(503, R"({"error":"etcdserver: no leader","message":"etcdserver: no leader","code":14})");
    BOOST_TEST((e.what == etcd_error::kind::status));
    BOOST_TEST(e.http_status == 503);
    BOOST_TEST(e.grpc_code == 14);
    BOOST_TEST(e.message == "etcdserver: no leader");
    // A watch refused for a raw (non-base64) key: HTTP 500, code 2.
    auto raw = decode_error(500, R"({"error":"illegal base64 data at input byte 1","message":"illegal base64 data at input byte 1","code":2})");
    BOOST_TEST(raw.grpc_code == 2);
    BOOST_TEST(raw.http_status == 500);
}

BOOST_AUTO_TEST_CASE(describe_each_kind) {
    BOOST_TEST(describe(etcd_error{etcd_error::kind::timeout, 0, 0, ""}) == "timed out");
    BOOST_TEST(describe(etcd_error{etcd_error::kind::transport, 0, 0, "connect: Connection refused"}) ==
               "transport error: connect: Connection refused");
    BOOST_TEST(describe(etcd_error{etcd_error::kind::canceled, 0, 0, ""}) == "canceled");
    BOOST_TEST(describe(etcd_error{etcd_error::kind::malformed, 0, 0, "not JSON"}) == "malformed answer: not JSON");
    BOOST_TEST(describe(etcd_error{etcd_error::kind::status, 0, 14, "etcdserver: no leader"}) ==
               "grpc 14: etcdserver: no leader");
    BOOST_TEST(describe(etcd_error{etcd_error::kind::status, 0, 0, "watch canceled"}) == "etcd error: watch canceled");
    BOOST_TEST(describe(etcd_error{etcd_error::kind::status, 404, 0, ""}) == "HTTP 404");
}

// --- grant ----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(grant_answer) {
    auto g = value_of(decode_grant(200, "{" + header + R"(,"ID":"737642626313819654","TTL":"5"})", 737642626313819654));
    BOOST_TEST(g.id == 737642626313819654);
    BOOST_TEST(g.ttl_seconds == 5);
    // Numbers are accepted where strings are expected.
    auto n = value_of(decode_grant(200, R"({"ID":12,"TTL":3})", 12));
    BOOST_TEST(n.id == 12);
    BOOST_TEST(n.ttl_seconds == 3);
}

BOOST_AUTO_TEST_CASE(grant_wrong_shapes) {
    require_malformed(decode_grant(200, "{" + header + R"(,"TTL":"5"})", 1));  // no ID
    require_malformed(decode_grant(200, R"({"ID":{},"TTL":"5"})", 1));
    require_malformed(decode_grant(200, R"({"ID":"12x","TTL":"5"})", 1));
    require_malformed(decode_grant(200, R"({"ID":"","TTL":"5"})", 1));
    require_malformed(decode_grant(200, R"({"ID":1.5,"TTL":"5"})", 1));
    require_malformed(decode_grant(200, R"({"ID":"99999999999999999999","TTL":"5"})", 1));
    require_malformed(decode_grant(200, R"({"ID":18446744073709551615,"TTL":"5"})", 1));
    require_malformed(decode_grant(200, R"({"ID":"1","TTL":"5")", 1));
    require_malformed(decode_grant(200, R"(["ID"])", 1));
    require_malformed(decode_grant(200, "", 1));
    require_malformed(decode_grant(200, "\xff\xfe", 1));
    require_malformed(decode_grant(200, R"({"header":[],"ID":"1","TTL":"5"} trailing)", 1));
    // LeaseGrantResponse has an error string of its own.
    auto e = error_of(decode_grant(200, R"({"error":"lease exists"})", 1));
    BOOST_TEST((e.what == etcd_error::kind::status));
    BOOST_TEST(e.message == "lease exists");
}

BOOST_AUTO_TEST_CASE(grant_of_another_lease_is_malformed) {
    // The client asks for its own ID: an answer that names another lease (a proxy's mix-up,
    // another client's lease) must not become this monitor's lease.
    auto e = error_of(decode_grant(200, "{" + header + R"(,"ID":"737642626313819655","TTL":"5"})", 737642626313819654));
    BOOST_TEST((e.what == etcd_error::kind::malformed));
    BOOST_TEST(e.message.find("grant of lease 737642626313819655, not of lease 737642626313819654") == 0u);
    require_malformed(decode_grant(200, R"({"ID":"-737642626313819654","TTL":"5"})", 737642626313819654));
}

BOOST_AUTO_TEST_CASE(deep_nesting_is_not_a_crash) {
    std::string deep(200000, '[');
    require_malformed(decode_grant(200, deep, 1));
    require_malformed(decode_watch_line(deep + std::string(200000, ']')));
}

namespace {

// A JSON array of n empty objects: the most values a byte of text can hold.
std::string empty_objects(std::size_t n) {
    std::string out = "[";
    for (std::size_t i = 0; i < n; ++i) out += i ? ",{}" : "{}";
    return out + "]";
}

}  // namespace

BOOST_AUTO_TEST_CASE(answers_of_too_many_values_are_malformed) {
    // Within the 1 MiB of an answer, 300000 values would be some 40 MiB of memory, and
    // within the 4 MiB of a watch message, 1.3 million values and their events.
    auto dense = error_of(decode_grant(200, R"({"ID":"1","TTL":"5","pad":)" + empty_objects(300000) + "}", 1));
    BOOST_TEST((dense.what == etcd_error::kind::malformed));
    BOOST_TEST(dense.message.find("more than 65536 JSON values") == 0u, dense.message);
    require_malformed(decode_watch_line(R"({"result":{"events":)" + empty_objects(1300000) + "}}"));
    require_malformed(decode_range(200, "{" + header + R"(,"kvs":)" + empty_objects(70000) + "}"));
    // An error body too: it is named by its start.
    auto e = decode_error(503, R"({"code":14,"message":)" + empty_objects(70000) + "}");
    BOOST_TEST(e.http_status == 503);
    BOOST_TEST(e.message.size() <= 163u);
    // Below the limit, an answer of many values is decoded as any other.
    BOOST_TEST(value_of(decode_grant(200, R"({"ID":"1","TTL":"5","pad":)" + empty_objects(60000) + "}", 1)).id == 1);
}

// --- keepalive ------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(keepalive_answer) {
    auto body = R"({"result":{)" + header + R"(,"ID":"737642626313819656","TTL":"5"}})" + "\n";
    auto k = value_of(decode_keepalive(200, body, 737642626313819656));
    BOOST_REQUIRE(k.ttl_seconds.has_value());
    BOOST_TEST(*k.ttl_seconds == 5);
}

BOOST_AUTO_TEST_CASE(keepalive_answer_names_its_member_and_term) {
    auto body = R"({"result":{)" + header + R"(,"ID":"1","TTL":"5"}})" + "\n";
    auto origin = value_of(decode_keepalive(200, body, 1)).origin;
    BOOST_REQUIRE(origin.has_value());
    BOOST_TEST(origin->member_id == "17548468176109369136");
    BOOST_TEST(origin->raft_term == 2);
    // A header missing or odd takes nothing from the renewal: it only says nothing of the member.
    for (std::string h : {"", R"("header":{"raft_term":"2"},)", R"("header":{"member_id":"7"},)",
                          R"("header":{"member_id":"-7","raft_term":"2"},)", R"("header":{"member_id":"x","raft_term":"2"},)",
                          R"("header":{"member_id":"18446744073709551616","raft_term":"2"},)",
                          R"("header":{"member_id":true,"raft_term":"2"},)", R"("header":"x",)",
                          R"("header":{"member_id":"0","raft_term":"2"},)"}) {
        auto k = value_of(decode_keepalive(200, R"({"result":{)" + h + R"("ID":"1","TTL":"5"}})", 1));
        BOOST_TEST(*k.ttl_seconds == 5);
        BOOST_TEST(!k.origin.has_value(), h);
    }
    // A number is read as the same ID; leading zeros do not make another member.
    auto k = value_of(decode_keepalive(200, R"({"result":{"header":{"member_id":"007","raft_term":3},"ID":"1","TTL":"5"}})", 1));
    BOOST_REQUIRE(k.origin.has_value());
    BOOST_TEST(k.origin->member_id == "7");
    BOOST_TEST(k.origin->raft_term == 3);
}

BOOST_AUTO_TEST_CASE(status_answer) {
    // As etcd 3.4.23 answers POST /v3/maintenance/status {}.
    auto s = value_of(decode_status(200, R"({)" + header + R"(,"version":"3.4.23","dbSize":"24576",)"
                                         R"("leader":"10276657743932975437","raftIndex":"5","raftTerm":"2"})"));
    BOOST_TEST(s.self.member_id == "17548468176109369136");
    BOOST_TEST(s.self.raft_term == 2);
    BOOST_TEST(s.leader_id == "10276657743932975437");
    // No leader (an election, a member cut off): etcd writes 0, or nothing.
    BOOST_TEST(value_of(decode_status(200, R"({)" + header + R"(,"leader":"0"})")).leader_id.empty());
    BOOST_TEST(value_of(decode_status(200, R"({)" + header + R"(})")).leader_id.empty());
    // The member and its term are required; anything else is an error, never a guess.
    require_malformed(decode_status(200, R"({"leader":"1"})"));
    require_malformed(decode_status(200, R"({"header":{"member_id":"1"},"leader":"1"})"));
    require_malformed(decode_status(200, R"({)" + header + R"(,"leader":"x"})"));
    require_malformed(decode_status(200, R"({)" + header + R"(,"leader":["1"]})"));
    require_malformed(decode_status(200, "[]"));
    require_malformed(decode_status(200, "{"));
    BOOST_TEST(error_of(decode_status(401, R"({"error":"etcdserver: invalid auth token","code":16})")).grpc_code == 16);
}

BOOST_AUTO_TEST_CASE(keepalive_without_ttl_means_lease_gone) {
    // etcd 3.4.23 names the lease in its answer even when the lease is gone.
    auto body = R"({"result":{)" + header + R"(,"ID":"737642626313819656"}})" + "\n";
    BOOST_TEST(!value_of(decode_keepalive(200, body, 737642626313819656)).ttl_seconds.has_value());
    BOOST_TEST(!value_of(decode_keepalive(200, R"({"result":{"ID":"1","TTL":"0"}})", 1)).ttl_seconds.has_value());
    BOOST_TEST(!value_of(decode_keepalive(200, R"({"result":{"ID":"1","TTL":"-1"}})", 1)).ttl_seconds.has_value());
}

BOOST_AUTO_TEST_CASE(keepalive_for_another_lease_is_malformed) {
    // An answer for another lease says nothing of this one: neither renewed nor gone.
    auto other = R"({"result":{)" + header + R"(,"ID":"737642626313819657","TTL":"5"}})" + "\n";
    auto e = error_of(decode_keepalive(200, other, 737642626313819656));
    BOOST_TEST((e.what == etcd_error::kind::malformed));
    BOOST_TEST(e.message.find("keepalive answer for lease 737642626313819657, not for lease 737642626313819656") == 0u);
    require_malformed(decode_keepalive(200, R"({"result":{"ID":"2"}})", 1));  // "gone", but another lease
    require_malformed(decode_keepalive(200, R"({"result":{"TTL":"5"}})", 1));  // no ID at all
    require_malformed(decode_keepalive(200, R"({"result":{}})", 1));
}

BOOST_AUTO_TEST_CASE(keepalive_error_in_stream) {
    auto e = error_of(decode_keepalive(200,
        R"({"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader","http_status":"Service Unavailable"}})"
        "\n", 1));
    BOOST_TEST((e.what == etcd_error::kind::status));
    BOOST_TEST(e.http_status == 503);
    BOOST_TEST(e.grpc_code == 14);
    BOOST_TEST(e.message == "etcdserver: no leader");
}

BOOST_AUTO_TEST_CASE(keepalive_wrong_shapes) {
    require_malformed(decode_keepalive(200, R"({"ID":"1","TTL":"5"})", 1));  // not wrapped
    require_malformed(decode_keepalive(200, R"({"result":[]})", 1));
    require_malformed(decode_keepalive(200, R"({"result":{"ID":"1","TTL":true}})", 1));
    require_malformed(decode_keepalive(200, R"({"result":{"ID":1.5,"TTL":"5"}})", 1));
    require_malformed(decode_keepalive(200, R"({"error":"x"})", 1));
    require_malformed(decode_keepalive(200, "{\"result\":{\"TTL\"", 1));
    require_malformed(decode_keepalive(200, "", 1));
    BOOST_TEST((kind_of(error_of(decode_keepalive(404, lease_not_found_body, 1))) == failure::not_found));
}

// --- campaign -------------------------------------------------------------------------

namespace {

// The key "lock" as a txn's read returns it, base64 and all.
std::string lock_kv(std::string_view value, std::int64_t lease, std::int64_t create_revision) {
    return json{{"key", base64_encode("lock")}, {"value", base64_encode(value)}, {"lease", std::to_string(lease)},
                {"create_revision", std::to_string(create_revision)}, {"mod_revision", std::to_string(create_revision)},
                {"version", "1"}}
        .dump();
}

// A txn's answer: header revision 7, succeeded or not, its responses.
std::string txn_answer(bool succeeded, std::string const& responses) {
    return "{" + header + (succeeded ? R"(,"succeeded":true)" : "") + R"(,"responses":[)" + responses + "]}";
}

std::string const put_response = R"({"response_put":{"header":{"revision":"7"}}})";

std::string range_response(std::string const& kv) {
    return R"({"response_range":{"header":{"revision":"7"},"kvs":[)" + kv + R"(],"count":"1"}})";
}

std::string const empty_range_response = R"({"response_range":{"header":{"revision":"7"}}})";

}  // namespace

BOOST_AUTO_TEST_CASE(campaign_won) {
    auto body = txn_answer(true, put_response + "," + range_response(lock_kv("nodeA", 42, 7)));
    auto c = value_of(decode_campaign(200, body, "lock", "nodeA", 42));
    BOOST_TEST(c.won);
    BOOST_TEST(c.revision == 7);
    BOOST_TEST(!c.holder.has_value());
}

BOOST_AUTO_TEST_CASE(campaign_won_is_believed_only_as_its_read_shows_it) {
    // succeeded, but the read shows the key held by another node, under another lease:
    // the txn that ran was not ours (a gateway that says succeeded for a failed txn).
    require_malformed(decode_campaign(200, txn_answer(true, range_response(lock_kv("nodeB", 99, 3))), "lock", "nodeA", 42));
    require_malformed(decode_campaign(200, txn_answer(true, put_response + "," + range_response(lock_kv("nodeB", 99, 3))),
                                      "lock", "nodeA", 42));
    // Our value under another lease; our lease with another value.
    require_malformed(decode_campaign(200, txn_answer(true, put_response + "," + range_response(lock_kv("nodeA", 43, 7))),
                                      "lock", "nodeA", 42));
    require_malformed(decode_campaign(200, txn_answer(true, put_response + "," + range_response(lock_kv("nodeB", 42, 7))),
                                      "lock", "nodeA", 42));
    // Ours, but created before this txn: an earlier write, not this one.
    require_malformed(decode_campaign(200, txn_answer(true, put_response + "," + range_response(lock_kv("nodeA", 42, 5))),
                                      "lock", "nodeA", 42));
    // The key not written at all: the read finds nothing; or no read in the answer.
    require_malformed(decode_campaign(200, txn_answer(true, put_response + "," + empty_range_response), "lock", "nodeA", 42));
    require_malformed(decode_campaign(200, txn_answer(true, put_response), "lock", "nodeA", 42));
    // The read of another key.
    auto other = json::parse(lock_kv("nodeA", 42, 7));
    other["key"] = base64_encode("lock2");
    require_malformed(decode_campaign(200, txn_answer(true, put_response + "," + range_response(other.dump())), "lock",
                                      "nodeA", 42));
    // No revision to check the creation against.
    require_malformed(decode_campaign(
        200, R"({"succeeded":true,"responses":[)" + put_response + "," + range_response(lock_kv("nodeA", 42, 0)) + "]}",
        "lock", "nodeA", 42));
}

BOOST_AUTO_TEST_CASE(campaign_lost_reports_holder) {
    auto body = "{" + header +
                R"(,"responses":[{"response_range":{"header":{"revision":"2"},"kvs":[{"key":"bG9jaw==","create_revision":"2","mod_revision":"3","version":"1","value":"bm9kZUE=","lease":"737642626313819656"}],"count":"1"}}]})";
    auto c = value_of(decode_campaign(200, body, "lock", "nodeB", 1));
    BOOST_TEST(!c.won);
    BOOST_TEST(c.revision == 7);
    BOOST_REQUIRE(c.holder.has_value());
    BOOST_TEST(c.holder->key == "lock");
    BOOST_TEST(c.holder->value == "nodeA");
    BOOST_TEST(c.holder->lease == 737642626313819656);
    BOOST_TEST(c.holder->mod_revision == 3);
    BOOST_TEST(c.holder->create_revision == 2);
    // A holder without lease or value: both default.
    auto c2 = value_of(decode_campaign(200, "{" + header + R"(,"responses":[{"response_range":{"kvs":[{"key":"bG9jaw=="}]}}]})",
                                       "lock", "nodeB", 1));
    BOOST_REQUIRE(c2.holder.has_value());
    BOOST_TEST(c2.holder->value == "");
    BOOST_TEST(c2.holder->lease == 0);
}

BOOST_AUTO_TEST_CASE(campaign_lost_without_its_holder_is_malformed) {
    // The compare failed because the key exists, and the read runs in the same txn: it
    // must find the key. An answer without it (or without a revision to watch from) would
    // have the monitor campaign again at once, in a loop as fast as the answers come.
    require_malformed(decode_campaign(200, txn_answer(false, empty_range_response), "lock", "nodeB", 1));
    require_malformed(decode_campaign(200, "{" + header + "}", "lock", "nodeB", 1));
    require_malformed(decode_campaign(200, "{}", "lock", "nodeB", 1));
    require_malformed(decode_campaign(200, R"({"responses":[)" + range_response(lock_kv("nodeA", 9, 2)) + "]}", "lock",
                                      "nodeB", 1));
}

BOOST_AUTO_TEST_CASE(campaign_with_dead_lease_is_lease_not_found) {
    auto e = error_of(decode_campaign(404, lease_not_found_body, "lock", "v", 1));
    BOOST_TEST((kind_of(e) == failure::not_found));
    BOOST_TEST(e.message == "etcdserver: requested lease not found");
}

BOOST_AUTO_TEST_CASE(campaign_wrong_shapes) {
    auto bad = [](std::string const& body) { require_malformed(decode_campaign(200, body, "lock", "v", 1)); };
    bad(R"({"succeeded":"true"})");
    bad(R"({"responses":{}})");
    bad(R"({"responses":[1]})");
    bad(R"({"responses":[{"response_range":[]}]})");
    bad(R"({"responses":[{"response_range":{"kvs":{}}}]})");
    bad(R"({"responses":[{"response_range":{"kvs":"x"}}]})");
    bad(R"({"responses":[{"response_range":{"kvs":[7]}}]})");
    bad(R"({"responses":[{"response_range":{"kvs":[{"key":"not base64!"}]}}]})");
    bad(R"({"responses":[{"response_range":{"kvs":[{"key":"bG9jaw==","lease":{}}]}}]})");
    bad("{" + header + R"(,"responses":[{"response_range":{"kvs":[{"key":"bG9jaw==","create_revision":[]}]}}]})");
    bad(R"({"header":{"revision":[]}})");
    bad(R"({"header":"x"})");
}

// --- revoke ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(revoke_answers) {
    BOOST_TEST(std::holds_alternative<std::monostate>(decode_done(200, "{" + header + "}")));
    BOOST_TEST((kind_of(error_of(decode_done(404, lease_not_found_body))) == failure::not_found));
    require_malformed(decode_done(200, "<html>"));
}

// --- watch lines ----------------------------------------------------------------------

namespace {

std::string const created_line = R"({"result":{)" + header + R"(,"created":true}})";
std::string const put_line =
    R"({"result":{)" + header +
    R"(,"events":[{"kv":{"key":"bG9jaw==","create_revision":"2","mod_revision":"2","version":"1","value":"bm9kZUE=","lease":"737642626313819656"}}]}})";
std::string const delete_line =
    R"({"result":{)" + header +
    R"(,"events":[{"type":"DELETE","kv":{"key":"bG9jaw==","mod_revision":"3"},"prev_kv":{"key":"bG9jaw==","create_revision":"2","mod_revision":"2","version":"1","value":"bm9kZUE=","lease":"737642626313819656"}}]}})";
std::string const compacted_line =
    R"({"result":{"header":{"cluster_id":"16862965869899335621","member_id":"17548468176109369136","raft_term":"2"},"canceled":true,"compact_revision":"4"}})";
std::string const progress_line = R"({"result":{)" + header + "}}";
std::string const error_line =
    R"({"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader","http_status":"Service Unavailable"}})";

}  // namespace

BOOST_AUTO_TEST_CASE(watch_created) {
    auto m = value_of(decode_watch_line(created_line));
    BOOST_TEST(m.created);
    BOOST_TEST(!m.canceled);
    BOOST_TEST(m.events.empty());
    BOOST_TEST(!m.ends_stream());
}

BOOST_AUTO_TEST_CASE(watch_put_event) {
    auto m = value_of(decode_watch_line(put_line));
    BOOST_TEST(!m.created);
    BOOST_REQUIRE(m.events.size() == 1u);
    auto const& e = m.events[0];
    BOOST_TEST((e.what == watch_event::type::put));
    BOOST_TEST(e.kv.key == "lock");
    BOOST_TEST(e.kv.value == "nodeA");
    BOOST_TEST(e.kv.lease == 737642626313819656);
    BOOST_TEST(e.kv.mod_revision == 2);
    BOOST_TEST(!m.ends_stream());
}

BOOST_AUTO_TEST_CASE(watch_delete_event) {
    auto m = value_of(decode_watch_line(delete_line));
    BOOST_REQUIRE(m.events.size() == 1u);
    auto const& e = m.events[0];
    BOOST_TEST((e.what == watch_event::type::del));
    BOOST_TEST(e.kv.key == "lock");
    BOOST_TEST(e.kv.value == "");
    BOOST_TEST(e.kv.mod_revision == 3);
    BOOST_TEST(!m.ends_stream());
}

BOOST_AUTO_TEST_CASE(watch_several_events_in_one_message) {
    auto line = R"({"result":{)" + header +
                R"(,"events":[{"type":"DELETE","kv":{"key":"YQ==","mod_revision":"9"}},)"
                R"({"kv":{"key":"Yg==","value":"dg==","mod_revision":"9","create_revision":"9"}},)"
                R"({"type":1,"kv":{"key":"Yw==","mod_revision":"9"}},)"
                R"({"type":"PUT","kv":{"key":"ZA==","mod_revision":"9"}},)"
                R"({"type":0,"kv":{"key":"ZQ==","mod_revision":"9"}}]}})";
    auto m = value_of(decode_watch_line(line));
    BOOST_REQUIRE(m.events.size() == 5u);
    BOOST_TEST((m.events[0].what == watch_event::type::del));
    BOOST_TEST(m.events[0].kv.key == "a");
    BOOST_TEST((m.events[1].what == watch_event::type::put));
    BOOST_TEST(m.events[1].kv.key == "b");
    BOOST_TEST(m.events[1].kv.value == "v");
    BOOST_TEST((m.events[2].what == watch_event::type::del));
    BOOST_TEST((m.events[3].what == watch_event::type::put));
    BOOST_TEST((m.events[4].what == watch_event::type::put));
}

BOOST_AUTO_TEST_CASE(watch_canceled) {
    auto m = value_of(decode_watch_line(
        R"({"result":{)" + header + R"(,"canceled":true,"cancel_reason":"mvcc: required revision is a future revision"}})"));
    BOOST_TEST(m.canceled);
    BOOST_TEST(m.cancel_reason == "mvcc: required revision is a future revision");
    BOOST_TEST(m.ends_stream());
}

BOOST_AUTO_TEST_CASE(watch_compacted) {
    auto m = value_of(decode_watch_line(compacted_line));
    BOOST_TEST(m.canceled);
    BOOST_TEST(m.compact_revision == 4);
    BOOST_TEST(m.ends_stream());
}

BOOST_AUTO_TEST_CASE(watch_error_in_stream) {
    auto m = value_of(decode_watch_line(error_line));
    BOOST_REQUIRE(m.error.has_value());
    BOOST_TEST((m.error->what == etcd_error::kind::status));
    BOOST_TEST(m.error->grpc_code == 14);
    BOOST_TEST(m.error->http_status == 503);
    BOOST_TEST(m.error->message == "etcdserver: no leader");
    BOOST_TEST(m.ends_stream());
}

BOOST_AUTO_TEST_CASE(watch_progress_notification) {
    auto m = value_of(decode_watch_line(progress_line));
    BOOST_TEST(!m.created);
    BOOST_TEST(m.events.empty());
    BOOST_TEST(!m.ends_stream());
}

BOOST_AUTO_TEST_CASE(watch_wrong_shapes) {
    require_malformed(decode_watch_line(""));
    require_malformed(decode_watch_line("{}"));
    require_malformed(decode_watch_line(R"({"result":[]})"));
    require_malformed(decode_watch_line(R"({"result":{"events":{}}})"));
    require_malformed(decode_watch_line(R"({"result":{"events":[1]}})"));
    require_malformed(decode_watch_line(R"({"result":{"events":[{"type":"TOUCH","kv":{}}]}})"));
    require_malformed(decode_watch_line(R"({"result":{"events":[{"kv":[]}]}})"));
    require_malformed(decode_watch_line(R"({"result":{"created":"yes"}})"));
    require_malformed(decode_watch_line(R"({"result":{"compact_revision":{}}})"));
    require_malformed(decode_watch_line(R"({"result":{"cancel_reason":5}})"));
    require_malformed(decode_watch_line(R"({"error":"no leader"})"));
    require_malformed(decode_watch_line(R"({"error":{"grpc_code":"x"}})"));
    require_malformed(decode_watch_line(put_line.substr(0, put_line.size() - 1)));
}

BOOST_AUTO_TEST_CASE(watch_event_for_another_key_is_malformed) {
    // The watch of the one key "lock": its own events pass, another key's end the message.
    BOOST_TEST(value_of(decode_watch_line(put_line, "lock", "")).events.size() == 1u);
    BOOST_TEST(value_of(decode_watch_line(delete_line, "lock", "")).events.size() == 1u);
    auto e = error_of(decode_watch_line(put_line, "lock2", ""));
    BOOST_TEST((e.what == etcd_error::kind::malformed));
    BOOST_TEST(e.message.find("watch event for another key") == 0u, e.message);
    require_malformed(decode_watch_line(delete_line, "loc", ""));
    // A watch of a range ["lock", "lock0") (the group's keys): "lock" and "lock/x" are in
    // it; "lock0" (its end), "lockz" and "a" are not. One foreign event spoils the message.
    BOOST_TEST(value_of(decode_watch_line(put_line, "lock", "lock0")).events.size() == 1u);
    auto const some = [](std::string const& key) {
        return R"({"result":{)" + header + R"(,"events":[{"kv":{"key":")" + base64_encode("lock/x") +
               R"(","mod_revision":"9"}},{"type":"DELETE","kv":{"key":")" + base64_encode(key) +
               R"(","mod_revision":"9"}}]}})";
    };
    BOOST_TEST(value_of(decode_watch_line(some("lock/y"), "lock", "lock0")).events.size() == 2u);
    require_malformed(decode_watch_line(some("lock0"), "lock", "lock0"));
    require_malformed(decode_watch_line(some("lockz"), "lock", "lock0"));
    require_malformed(decode_watch_line(some("a"), "lock", "lock0"));
    // Messages without events are not judged by their keys.
    BOOST_TEST(value_of(decode_watch_line(progress_line, "lock2", "")).events.empty());
    BOOST_TEST(value_of(decode_watch_line(error_line, "lock2", "")).error.has_value());
}

// --- line_splitter --------------------------------------------------------------------

namespace {

std::string const stream = created_line + "\n" + put_line + "\n" + progress_line + "\n" + delete_line + "\n\n" +
                           compacted_line + "\r\n" + error_line + "\n";
std::vector<std::string> const stream_lines = {created_line, put_line,       progress_line,
                                               delete_line,  compacted_line, error_line};

void drain(line_splitter& s, std::vector<std::string>& out) {
    std::string line;
    while (s.next(line)) out.push_back(line);
}

}  // namespace

BOOST_AUTO_TEST_CASE(splitter_one_chunk_with_several_lines) {
    line_splitter s;
    BOOST_TEST(s.feed(stream));
    std::vector<std::string> got;
    drain(s, got);
    BOOST_TEST(got == stream_lines);
    std::string line;
    BOOST_TEST(!s.next(line));
}

BOOST_AUTO_TEST_CASE(splitter_holds_a_partial_line) {
    line_splitter s;
    std::string line;
    BOOST_TEST(s.feed("{\"a\":"));
    BOOST_TEST(!s.next(line));
    BOOST_TEST(s.feed("1}"));
    BOOST_TEST(!s.next(line));
    BOOST_TEST(s.feed("\n{"));
    BOOST_TEST(s.next(line));
    BOOST_TEST(line == "{\"a\":1}");
    BOOST_TEST(!s.next(line));
}

BOOST_AUTO_TEST_CASE(splitter_every_two_piece_split) {
    for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
        line_splitter s(4096);
        std::vector<std::string> got;
        BOOST_REQUIRE(s.feed(std::string_view(stream).substr(0, cut)));
        drain(s, got);
        BOOST_REQUIRE(s.feed(std::string_view(stream).substr(cut)));
        drain(s, got);
        BOOST_REQUIRE_MESSAGE(got == stream_lines, "split at byte " << cut);
    }
}

BOOST_AUTO_TEST_CASE(splitter_one_byte_at_a_time_decodes_the_same_messages) {
    line_splitter s(4096);
    std::vector<std::string> got;
    for (char c : stream) {
        BOOST_REQUIRE(s.feed(std::string_view(&c, 1)));
        drain(s, got);
    }
    BOOST_REQUIRE(got == stream_lines);
    std::vector<watch_message> messages;
    for (auto const& line : got) messages.push_back(value_of(decode_watch_line(line)));
    BOOST_TEST(messages[0].created);
    BOOST_TEST(messages[1].events.size() == 1u);
    BOOST_TEST(messages[2].events.empty());
    BOOST_TEST((messages[3].events.at(0).what == watch_event::type::del));
    BOOST_TEST(messages[4].compact_revision == 4);
    BOOST_TEST(messages[5].error.has_value());
}

BOOST_AUTO_TEST_CASE(splitter_overflow_limit) {
    line_splitter s(8);
    std::string line;
    BOOST_TEST(s.feed("12345678"));  // exactly the limit, unterminated
    BOOST_TEST(s.feed("\n"));
    BOOST_TEST(s.next(line));
    BOOST_TEST(line == "12345678");
    BOOST_TEST(s.feed("1234"));
    BOOST_TEST(!s.feed("56789"));  // the pending line is now 9 bytes

    // A too-long line that is complete within one chunk is caught as well.
    line_splitter t(8);
    BOOST_TEST(!t.feed("ok\n123456789\nok\n"));

    // Many short lines in one chunk are fine: the limit is per line.
    line_splitter u(8);
    std::string many;
    for (int i = 0; i < 100; ++i) many += "1234567\n";
    BOOST_TEST(u.feed(many));
}

BOOST_AUTO_TEST_CASE(splitter_long_running_stream) {
    // A long stream read as it comes goes through the buffer's compaction on every feed.
    line_splitter s(2 * put_line.size());
    std::string line;
    for (int i = 0; i < 10000; ++i) {
        BOOST_REQUIRE(s.feed(put_line + "\n"));
        BOOST_REQUIRE(s.next(line));
    }
    BOOST_TEST(line == put_line);
}

// --- what the core is told ----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(errors_are_sorted_into_the_kinds_the_core_decides_on) {
    using k = etcd_error::kind;
    BOOST_TEST((kind_of({k::timeout, 0, 0, ""}) == failure::timed_out));
    BOOST_TEST((kind_of({k::transport, 0, 0, ""}) == failure::unavailable));
    BOOST_TEST((kind_of({k::malformed, 200, 0, ""}) == failure::malformed));
    BOOST_TEST((kind_of({k::status, 404, 5, ""}) == failure::not_found));
    BOOST_TEST((kind_of({k::status, 401, 0, ""}) == failure::unauthenticated));
    BOOST_TEST((kind_of({k::status, 400, 16, ""}) == failure::unauthenticated));
    BOOST_TEST((kind_of({k::status, 503, 14, ""}) == failure::unavailable));
    BOOST_TEST((kind_of({k::status, 200, 14, ""}) == failure::unavailable));  // inside a 200 stream
    BOOST_TEST((kind_of({k::status, 502, 0, ""}) == failure::unavailable));   // a proxy's page
    BOOST_TEST((kind_of({k::status, 504, 4, ""}) == failure::timed_out));
    BOOST_TEST((kind_of({k::status, 403, 7, ""}) == failure::rejected));
    BOOST_TEST((kind_of({k::status, 400, 3, ""}) == failure::rejected));
    // A grant of an ID etcd has: etcd 3.4's answer, as the gateway gives it.
    auto const taken = decode_error(
        412, R"({"error":"etcdserver: lease already exists","message":"etcdserver: lease already exists","code":9})");
    BOOST_TEST((kind_of(taken) == failure::exists));
    // Code 9 is etcd's for other refusals too ("etcdserver: user name already exists"...).
    BOOST_TEST((kind_of({k::status, 412, 9, "etcdserver: not capable"}) == failure::rejected));
}

BOOST_AUTO_TEST_CASE(lock_value_round_trip_and_foreign_values) {
    auto value = lock_value::encode("bp1-fra", "0a1b2c3d4e5f6a7b", 4242);
    BOOST_TEST(json::parse(value) == json({{"node", "bp1-fra"}, {"instance", "0a1b2c3d4e5f6a7b"}, {"pid", 4242}}));
    auto h = lock_value::decode(key_value{"eos", value, 77, 9});
    BOOST_TEST(h.node == "bp1-fra");
    BOOST_TEST(h.instance == "0a1b2c3d4e5f6a7b");
    BOOST_TEST(h.lease == 77);
    // The original Go monitor, or any other tool, writes something else: it is named by its value.
    auto go = lock_value::decode(key_value{"eos", "nodeos-bp1", 5, 3});
    BOOST_TEST(go.node.empty());
    BOOST_TEST(go.instance.empty());
    BOOST_TEST(go.raw == "nodeos-bp1");
    BOOST_TEST(go.lease == 5);
    for (auto const& odd : {std::string(R"({"node":7})"), std::string(R"(["node"])"), std::string(R"({"instance":"x"})"),
                            std::string(300, 'x')}) {
        auto d = lock_value::decode(key_value{"eos", odd, 1, 1});
        BOOST_TEST(d.node.empty(), odd);
        BOOST_TEST(d.instance.empty(), odd);  // never taken for this monitor's own value
        BOOST_TEST(d.raw.size() <= 120u);
    }
    // A value of megabytes is no monitor's: it is not parsed, whatever it says.
    std::string big = R"({"node":"bp1-fra","instance":"0a1b2c3d4e5f6a7b","pad":)" + empty_objects(400000) + "}";
    auto b = lock_value::decode(key_value{"eos", big, 1, 1});
    BOOST_TEST(b.node.empty());
    BOOST_TEST(b.instance.empty());
}

// --- ranges and the group's keys ----------------------------------------------------------

BOOST_AUTO_TEST_CASE(range_requests_and_answers) {
    auto r = json::parse(encode_range("eos", "eos0"));
    BOOST_TEST(r.at("key") == base64_encode("eos"));
    BOOST_TEST(r.at("range_end") == base64_encode("eos0"));
    BOOST_TEST(!json::parse(encode_range("eos", "")).contains("range_end"));
    auto p = json::parse(encode_put("eos/members/bp1", "{}", 42));
    BOOST_TEST(p.at("lease") == "42");
    BOOST_TEST(!json::parse(encode_put("eos/pause", "{}", 0)).contains("lease"));

    auto reply = test::value_of(decode_range(
        200, R"({"header":{"revision":"12"},"kvs":[{"key":"ZW9z","value":"eA==","lease":"7","mod_revision":"9"},)"
             R"({"key":"ZW9zL3BhdXNl","value":"e30=","mod_revision":"11"}],"count":"2"})"));
    BOOST_TEST(reply.revision == 12);
    BOOST_TEST_REQUIRE(reply.kvs.size() == 2u);
    BOOST_TEST(reply.kvs[0].key == "eos");
    BOOST_TEST(reply.kvs[0].lease == 7);
    BOOST_TEST(reply.kvs[1].key == "eos/pause");
    BOOST_TEST(test::value_of(decode_range(200, R"({"header":{"revision":"3"}})")).kvs.empty());  // nothing there
    require_malformed(decode_range(200, R"({"kvs":[]})"));                                         // no revision
    require_malformed(decode_range(200, R"({"header":{"revision":"3"},"kvs":{}})"));
    require_malformed(decode_range(200, R"({"header":{"revision":"3"},"kvs":[{"key":"%%"}]})"));
}

BOOST_AUTO_TEST_CASE(group_keys_classify_and_control) {
    using group_keys::view;
    view v("eos", "bp2");
    BOOST_TEST((v.classify("eos") == view::kind::lock));
    BOOST_TEST((v.classify("eos/members/bp1") == view::kind::member));
    BOOST_TEST((v.classify("eos/pause") == view::kind::group_pause));
    BOOST_TEST((v.classify("eos/pause/bp1") == view::kind::node_pause));
    BOOST_TEST((v.classify("eos/switchover") == view::kind::switchover));
    BOOST_TEST((v.classify("eos-testnet") == view::kind::other));     // another group in the same range
    BOOST_TEST((v.classify("eos/members/") == view::kind::other));
    BOOST_TEST((v.classify("eos/members/a/b") == view::kind::other));
    BOOST_TEST(group_keys::range_end("eos") == "eos0");

    group_keys::member_record bp1{.node = "bp1", .instance = "i1", .version = "0.2.0", .state = "standby",
                                  .candidacy = "candidate", .standby_mode = "paused"};
    bp1.head_lag_ms = 250;
    v.reset({key_value{"eos", R"({"node":"bp3","instance":"i3"})", 9, 5},
             key_value{"eos/members/bp1", group_keys::encode(bp1), 8, 6},
             key_value{"eos-testnet/members/x", "{}", 0, 1}});
    BOOST_TEST(v.lock().has_value());
    BOOST_TEST((v.control() == group_control{}));
    auto members = v.members();
    BOOST_TEST_REQUIRE(members.size() == 1u);
    BOOST_TEST(members["bp1"].candidate());
    BOOST_TEST(members["bp1"].lease == 8);
    BOOST_TEST(*members["bp1"].head_lag_ms == 250);

    group_keys::operator_note to_bp1{.to = "bp1", .by = "ops@host", .at = "2026-12-01T00:00:00Z"};
    v.apply(watch_event{watch_event::type::put, key_value{"eos/switchover", group_keys::encode(to_bp1), 3, 7}});
    BOOST_TEST(v.control().switchover_to == "bp1");
    BOOST_TEST(v.control().switchover_target_ready);
    // A target that falls behind, or is paused, is not ready.
    bp1.candidacy = "nodeos_lagging";
    v.apply(watch_event{watch_event::type::put, key_value{"eos/members/bp1", group_keys::encode(bp1), 8, 8}});
    BOOST_TEST(!v.control().switchover_target_ready);
    bp1.candidacy = "candidate";
    v.apply(watch_event{watch_event::type::put, key_value{"eos/members/bp1", group_keys::encode(bp1), 8, 9}});
    v.apply(watch_event{watch_event::type::put, key_value{"eos/pause/bp1", "by hand", 0, 10}});
    BOOST_TEST(!v.control().switchover_target_ready);

    v.apply(watch_event{watch_event::type::put, key_value{"eos/pause/bp2", "{}", 0, 11}});
    v.apply(watch_event{watch_event::type::put, key_value{"eos/pause", "upgrading", 0, 12}});
    BOOST_TEST(v.control().node_paused);
    BOOST_TEST(v.control().group_paused);
    BOOST_TEST(v.group_pause()->reason == "upgrading");  // a value written by hand still pauses
    v.apply(watch_event{watch_event::type::del, key_value{"eos/pause", "", 0, 13}});
    v.apply(watch_event{watch_event::type::del, key_value{"eos/switchover", "", 0, 14}});
    BOOST_TEST(!v.control().group_paused);
    BOOST_TEST(v.control().switchover_to.empty());

    // Records that are not this project's, or that name another node than their key, are ignored.
    v.apply(watch_event{watch_event::type::put, key_value{"eos/members/bp9", "not json", 0, 15}});
    v.apply(watch_event{watch_event::type::put, key_value{"eos/members/bp8", group_keys::encode(bp1), 0, 16}});
    BOOST_TEST(v.members().size() == 1u);
    BOOST_TEST(!group_keys::decode_member(R"({"state":"active"})").has_value());

    // A value of megabytes is none of this project's: not parsed.
    auto big = json::parse(group_keys::encode(bp1));
    big["pad"] = json::parse(empty_objects(400000));
    BOOST_TEST(!group_keys::decode_member(big.dump()).has_value());
    auto note = group_keys::decode_note(R"({"to":"bp1","pad":)" + empty_objects(400000) + "}");
    BOOST_TEST(note->to.empty());
}

// --- authentication -------------------------------------------------------------------
// The answers of etcd 3.4.23 with authentication enabled, captured with curl.

BOOST_AUTO_TEST_CASE(authenticate_request_and_answer) {
    auto body = json::parse(encode_authenticate("bp", "pa\"ss\\word"));
    BOOST_TEST(body.at("name") == "bp");
    BOOST_TEST(body.at("password") == "pa\"ss\\word");
    // Bytes that are not UTF-8 cannot throw inside the loop.
    BOOST_TEST(!encode_authenticate("bp", "caf\xe9").empty());

    BOOST_TEST(value_of(decode_authenticate(200, "{" + header + R"(,"token":"RcUfsCpEJRamBPBu.17"})")) ==
               "RcUfsCpEJRamBPBu.17");
    auto refused = error_of(decode_authenticate(400,
        R"({"error":"etcdserver: authentication failed, invalid user ID or password","message":"etcdserver: authentication failed, invalid user ID or password","code":3})"));
    BOOST_TEST((refused.what == etcd_error::kind::status));
    BOOST_TEST(refused.grpc_code == 3);
    BOOST_TEST(!token_refused(refused), "a refused password is not a refused token: asking again cannot help");
    BOOST_TEST(credentials_refused(refused));
    BOOST_TEST(!credentials_refused(decode_error(503, R"({"message":"etcdserver: request timed out","code":14})")));
    BOOST_TEST(!credentials_refused(decode_error(429, R"({"message":"etcdserver: too many requests","code":8})")));

    require_malformed(decode_authenticate(200, "{" + header + "}"));
    require_malformed(decode_authenticate(200, R"({"token":42})"));
    require_malformed(decode_authenticate(200, R"({"token":"abc\r\nX-Injected: 1"})"));
    require_malformed(decode_authenticate(200, R"({"token":"with space"})"));
    require_malformed(decode_authenticate(200, "{\"token\":\"" + std::string(5000, 'a') + "\"}"));
    require_malformed(decode_authenticate(200, "<html>"));
    require_malformed(decode_authenticate(200, "[]"));
}

// The forms each etcd writes (docs/etcd-versions.md): grpc-gateway v1 in 3.4 and 3.5,
// v2 in 3.6 (and in Debian's 3.5.30), with the random spaces of Go's protojson.
BOOST_AUTO_TEST_CASE(the_error_bodies_of_etcd_3_4_3_5_and_3_6) {
    struct form {
        char const* name;
        int status;
        char const* body;
        int code;
    };
    for (auto const& f : {
             form{"unary, 3.4 and 3.5", 400, R"({"error":"etcdserver: authentication is not enabled","code":9,"message":"etcdserver: authentication is not enabled"})", 9},
             form{"unary, 3.6 (patroni #3525)", 400, R"({"code":9, "message":"etcdserver: authentication is not enabled", "details":[]})", 9},
             form{"unary, 3.4.23's 412", 412, R"({"error":"etcdserver: authentication is not enabled","message":"etcdserver: authentication is not enabled","code":9})", 9},
         }) {
        BOOST_TEST_CONTEXT(f.name) {
            auto e = decode_error(f.status, f.body);
            BOOST_TEST(e.grpc_code == f.code);
            BOOST_TEST(e.message == "etcdserver: authentication is not enabled");
            BOOST_TEST(authentication_disabled(e));
        }
    }
    // A keepalive refused before its first message: the status follows the code.
    for (char const* body : {R"({"error":{"grpc_code":16,"http_code":401,"message":"etcdserver: invalid auth token","http_status":"Unauthorized"}})",
                             R"({"error":{"code":16,"message":"etcdserver: invalid auth token"}})" "\n"}) {
        BOOST_TEST_CONTEXT(body) {
            auto e = error_of(decode_keepalive(401, body, 7));
            BOOST_TEST(e.grpc_code == 16);
            BOOST_TEST(e.http_status == 401);
            BOOST_TEST(token_refused(e));
            BOOST_TEST((kind_of(e) == failure::unauthenticated));
        }
    }
    auto empty_user = error_of(decode_keepalive(400, R"({"error":{"code":3,"message":"etcdserver: user name is empty"}})", 7));
    BOOST_TEST(token_refused(empty_user), "a keepalive sent before any token");
    // Without quorum, before and inside the stream, in both forms: unavailable.
    auto no_leader = error_of(decode_keepalive(503, R"({"error":{"code":14,"message":"etcdserver: no leader"}})", 7));
    BOOST_TEST((kind_of(no_leader) == failure::unavailable));
    auto in_stream = error_of(decode_keepalive(200, R"({"error":{"code":14, "message":"etcdserver: no leader"}})", 7));
    BOOST_TEST(in_stream.grpc_code == 14);
    BOOST_TEST((kind_of(in_stream) == failure::unavailable));
    auto watch = value_of(decode_watch_line(R"({"error":{"code":14,"message":"etcdserver: no leader"}})"));
    BOOST_REQUIRE(watch.error.has_value());
    BOOST_TEST(watch.error->grpc_code == 14);
    // A member that thinks it leads and cannot confirm it (etcd #21671): code 2, HTTP 500.
    auto lessor = error_of(decode_keepalive(500, R"({"error":{"code":2,"message":"not a primary lessor"}})", 7));
    BOOST_TEST((kind_of(lessor) == failure::unavailable));
    // 3.6's status has fields 3.4 does not know; protojson's spaces are only spaces.
    auto status = value_of(decode_status(200,
        R"({"header":{"cluster_id":"1", "member_id":"12", "revision":"3", "raft_term":"4"}, "version":"3.6.14", "leader":"12", "storageVersion":"3.6.0", "dbSizeQuota":"2147483648", "downgradeInfo":{"enabled":false, "targetVersion":""}})"));
    BOOST_TEST(status.self.member_id == "12");
    BOOST_TEST(status.leader_id == "12");
}

BOOST_AUTO_TEST_CASE(what_an_error_says_about_the_token) {
    auto invalid = decode_error(401, R"({"error":"etcdserver: invalid auth token","message":"etcdserver: invalid auth token","code":16})");
    BOOST_TEST(token_refused(invalid));
    BOOST_TEST((kind_of(invalid) == failure::unauthenticated));
    auto old = decode_error(400, R"({"error":"etcdserver: revision of auth store is old","message":"etcdserver: revision of auth store is old","code":3})");
    BOOST_TEST(token_refused(old));
    auto no_user = decode_error(400, R"({"error":"etcdserver: user name is empty","message":"etcdserver: user name is empty","code":3})");
    BOOST_TEST(token_refused(no_user));
    // A watch refused for its token: created and canceled in its first message.
    auto canceled = value_of(decode_watch_line(
        R"({"result":{"header":{"revision":"1"},"watch_id":"-1","created":true,"canceled":true,"cancel_reason":"rpc error: code = Unauthenticated desc = etcdserver: invalid auth token"}})"));
    BOOST_TEST(canceled.ends_stream());
    BOOST_TEST(token_refused(etcd_error{etcd_error::kind::status, 0, 0, "watch canceled by etcd: " + canceled.cancel_reason}));

    auto denied = decode_error(403, R"({"error":"etcdserver: permission denied","message":"etcdserver: permission denied","code":7})");
    BOOST_TEST(permission_refused(denied));
    BOOST_TEST(!token_refused(denied));
    BOOST_TEST((kind_of(denied) == failure::rejected));
    BOOST_TEST(permission_refused(etcd_error{etcd_error::kind::status, 0, 0,
        "watch canceled by etcd: rpc error: code = PermissionDenied desc = etcdserver: permission denied"}));

    BOOST_TEST(authentication_disabled(decode_error(400,
        R"({"error":"etcdserver: authentication is not enabled","message":"etcdserver: authentication is not enabled","code":9})")));

    // Transport failures and other refusals say nothing about the token.
    BOOST_TEST(!token_refused(etcd_error{etcd_error::kind::transport, 0, 0, "read: end of stream"}));
    BOOST_TEST(!token_refused(decode_error(503, R"({"message":"etcdserver: no leader","code":14})")));
    BOOST_TEST(!permission_refused(decode_error(404, lease_not_found_body)));

    BOOST_TEST((kind_of(etcd_error{etcd_error::kind::refused_credentials, 400, 3, "etcd refuses user bp"}) ==
                failure::unauthenticated));
    BOOST_TEST((kind_of(etcd_error{etcd_error::kind::permission_denied, 403, 7, "permission denied for key"}) ==
                failure::rejected));
    BOOST_TEST(describe(etcd_error{etcd_error::kind::refused_credentials, 400, 3, "etcd refuses user bp: wrong password"}) ==
               "etcd refuses user bp: wrong password");
    BOOST_TEST(describe(etcd_error{etcd_error::kind::permission_denied, 403, 7, ""}) == "permission denied");
}
