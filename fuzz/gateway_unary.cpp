// The etcd gateway's unary answers (and base64, which carries every key and value): an
// answer from the network, whatever its bytes, decodes to a value or to an etcd_error. With
// etcd's users: the authenticate answer (a token that goes back in a header), the error
// bodies the client reads as a refused token, password or permission, and the request
// written from the configured user and password.
//
// Input: [decoder][status][body...]
//   decoder: 'g' grant, 'k' keepalive, 'c' campaign, 'r' revoke/put/delete, 'R' range,
//            't' time_to_live, 's' a member's status, 'e' decode_error, 'b' base64, 'a' authenticate,
//            'A' encode_authenticate of <user>\0<password> (other bytes: by value modulo 10)
//   status:  '2' 200, '0' 400, '1' 401, '3' 403, '4' 404, '5' 503; other bytes b: 3 * b (0 to 765)
// The client checks each answer against its request: the grant, keepalive and campaign are
// decoded as answers to a request for lease 4111120368996066309 (and the campaign for key
// "eos" with the value below), the lease and key of the seeds.
#include <string>
#include <variant>

#include <nlohmann/json.hpp>

#include "check.hpp"
#include "etcd/base64.hpp"
#include "etcd/gateway_errors.hpp"
#include "etcd/gateway_json.hpp"
#include "etcd/line_splitter.hpp"

using namespace nm;
using nm::fuzz::require;

namespace {

int status_of(std::uint8_t b) {
    switch (b) {
    case '2': return 200;
    case '0': return 400;
    case '1': return 401;
    case '3': return 403;
    case '4': return 404;
    case '5': return 503;
    default: return 3 * b;
    }
}

bool success(int status) { return status >= 200 && status <= 299; }

// What the client asked for, as in the seeds.
constexpr std::int64_t lease = 4111120368996066309;
constexpr std::string_view lock_key = "eos";
constexpr std::string_view lock_value = R"({"node":"bp1-fra","instance":"bp1-fra-4f2a","pid":4242})";

// How the client reads an error with etcd's users: only an error etcd (or what answers in
// its place) sent says anything about tokens, passwords or permissions.
void check_auth_reading(etcd_error const& e) {
    bool const refused[] = {gateway::token_refused(e), gateway::permission_refused(e), gateway::credentials_refused(e),
                            gateway::authentication_disabled(e)};
    if (e.what != etcd_error::kind::status)
        for (bool r : refused) require(!r, "only a status error is read as an authentication answer");
}

bool visible_ascii(std::string const& text) {
    for (char c : text)
        if (c <= ' ' || c >= 127) return false;
    return true;
}

bool utf8(std::string_view text) {
    try {
        (void)nlohmann::json(std::string(text)).dump();
        return true;
    } catch (nlohmann::json::type_error const&) {
        return false;
    }
}

// The authenticate request from any user and password: JSON whatever the bytes, and the
// bytes themselves when they are UTF-8.
void check_encode_authenticate(std::string_view input) {
    auto const nul = input.find('\0');
    auto const user = input.substr(0, nul);
    auto const password = nul == std::string_view::npos ? std::string_view() : input.substr(nul + 1);
    auto const body = gateway::encode_authenticate(user, password);
    auto const j = nlohmann::json::parse(body, nullptr, false);
    require(j.is_object() && j.size() == 2 && j.contains("name") && j.contains("password") && j.at("name").is_string() &&
                j.at("password").is_string(),
            "an authenticate request is an object with a name and a password");
    if (utf8(user)) require(j.at("name") == user, "a UTF-8 user is sent as it is");
    if (utf8(password)) require(j.at("password") == password, "a UTF-8 password is sent as it is");
}

// An error, whichever way it came: a status for a non-2xx answer, otherwise a malformed body
// (or, inside a 200, an error object). Describing and classifying it must work too.
void check_error(etcd_error const& e, int status) {
    if (!success(status)) {
        require(e.what == etcd_error::kind::status && e.http_status == status, "a non-2xx answer is a status error with its status");
    } else {
        require(e.what == etcd_error::kind::malformed || e.what == etcd_error::kind::status, "a 2xx answer fails only as malformed or status");
        // The body's start, not the body: a huge answer must not make a huge log line.
        if (e.what == etcd_error::kind::malformed) require(e.message.size() < 1024, "a malformed answer's message is bounded");
    }
    require(!describe(e).empty(), "an error describes itself");
    (void)kind_of(e);
    check_auth_reading(e);
}

template <class T, class Check>
void check(etcd_result<T> const& r, int status, Check&& on_value) {
    if (auto const* e = std::get_if<etcd_error>(&r)) return check_error(*e, status);
    require(success(status), "only a 2xx answer decodes to a value");
    on_value(std::get<T>(r));
}

void check_base64(std::string_view bytes) {
    auto const encoded = gateway::base64_encode(bytes);
    auto const back = gateway::base64_decode(encoded);
    require(back && *back == bytes, "base64 round-trips every byte string");
    // The same bytes read as base64 text: what decodes is what the gateway would re-encode.
    if (auto decoded = gateway::base64_decode(bytes)) {
        require(decoded->size() <= bytes.size() / 4 * 3, "decoded base64 is at most 3/4 of its text");
        auto again = gateway::base64_decode(gateway::base64_encode(*decoded));
        require(again && *again == *decoded, "decoded base64 round-trips");
    }
}

// A member ID as the leader finder compares them: one spelling per member (decimal, no
// leading zero, not zero), so that two answers of one member never look like two members.
bool member_id(std::string const& id) {
    return !id.empty() && id.size() <= 20 && id.find_first_not_of("0123456789") == std::string::npos && id[0] != '0';
}

void check_origin(answer_origin const& o) {
    require(member_id(o.member_id) && o.raft_term > 0, "an answer's origin names a member and a term");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    if (size < 2) return 0;
    char const which = nm::fuzz::decoder_of(data[0], "gkcrRtsebaA");
    int const status = status_of(data[1]);
    auto const body = nm::fuzz::as_text(data + 2, size - 2);

    switch (which) {
    case 'g':
        check(gateway::decode_grant(status, body, lease), status, [](lease_grant const& g) {
            require(g.id == lease && g.ttl_seconds > 0, "a grant is of the lease asked for, with a positive TTL");
        });
        break;
    case 'k':
        check(gateway::decode_keepalive(status, body, lease), status, [](keepalive_reply const& k) {
            require(!k.ttl_seconds || *k.ttl_seconds > 0, "a keepalive's TTL is positive or absent (lease gone)");
            if (k.origin) check_origin(*k.origin);
        });
        break;
    case 's':
        check(gateway::decode_status(status, body), status, [](member_status const& s) {
            check_origin(s.self);
            require(s.leader_id.empty() || member_id(s.leader_id), "a leader is named by a member ID, or not at all");
        });
        break;
    case 'c':
        check(gateway::decode_campaign(status, body, lock_key, lock_value, lease), status, [](campaign_reply const& c) {
            require(c.revision > 0, "a campaign's answer has a revision");
            require(c.won != c.holder.has_value(), "a campaign is won, or lost to a holder");
            if (c.holder) require(c.holder->key == lock_key, "the holder holds the key campaigned for");
        });
        break;
    case 'r': check(gateway::decode_done(status, body), status, [](std::monostate) {}); break;
    case 'R':
        check(gateway::decode_range(status, body), status, [](range_reply const& r) {
            require(r.revision > 0, "a range has a revision");
        });
        break;
    case 't':
        check(gateway::decode_time_to_live(status, body), status, [](lease_time_left const& t) {
            require(!t.ttl_seconds || *t.ttl_seconds >= 0, "time left is not negative");
        });
        break;
    case 'e': {
        auto const e = gateway::decode_error(status, body);
        require(e.what == etcd_error::kind::status && e.http_status == status, "decode_error keeps the status");
        (void)describe(e);
        (void)kind_of(e);
        check_auth_reading(e);
        break;
    }
    case 'b': check_base64(body); break;
    case 'a': {
        auto const r = gateway::decode_authenticate(status, body);
        check(r, status, [](std::string const& token) {
            // It becomes the Authorization header's value: nothing that could end a header.
            require(!token.empty() && token.size() <= 4096 && visible_ascii(token), "a token is short visible ASCII");
        });
        // A token refused as unusable is a credential all the same: its error does not quote it.
        // (Past 64 Ki bytes an answer may hold too many JSON values to be parsed at all.)
        auto const* e = std::get_if<etcd_error>(&r);
        if (e && e->what == etcd_error::kind::malformed && body.size() < 64 * 1024) {
            auto const j = nlohmann::json::parse(body, nullptr, false);
            if (j.is_object() && j.contains("token") && j["token"].is_string()) {
                auto const& token = j["token"].get_ref<std::string const&>();
                require(token.empty() || e->message == "authenticate answer with an unusable token (" +
                                                           std::to_string(token.size()) + " bytes)",
                        "an unusable token is not quoted");
            }
        }
        break;
    }
    case 'A': check_encode_authenticate(body); break;
    }
    return 0;
}
