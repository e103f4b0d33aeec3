// nodeos's HTTP API answers (get_info, pause, resume, paused, errors): whatever a node, a
// proxy or a stranger on its port answers decodes to a value or to an api_error.
//
// Input: [decoder][status][body...]
//   decoder: 'i' get_info, 'p' pause/resume, 'q' paused, 'e' decode_error, 't' parse_block_time
//            (other bytes: by value modulo 5)
//   status:  '2' 200, '1' 201, '4' 404, '5' 500; other bytes b: 3 * b (0 to 765)
#include <ctime>
#include <string>
#include <variant>

#include "check.hpp"
#include "nodeos/api_json.hpp"

using namespace nm;
using nm::fuzz::require;

namespace {

int status_of(std::uint8_t b) {
    switch (b) {
    case '2': return 200;
    case '1': return 201;
    case '4': return 404;
    case '5': return 500;
    default: return 3 * b;
    }
}

template <class T, class Check>
void check(api_result<T> const& r, int status, int expected_status, Check&& on_value) {
    if (auto const* e = std::get_if<api_error>(&r)) {
        if (status != expected_status) require(e->what == api_error::kind::status, "an unexpected status is a status error");
        else require(e->what == api_error::kind::malformed, "an expected status fails only as malformed");
        require(e->http_status == status, "an error keeps the status");
        require(!describe(*e).empty(), "an error describes itself");
        (void)kind_of(*e);
        return;
    }
    require(status == expected_status, "only the call's own status decodes to a value");
    on_value(std::get<T>(r));
}

// A time that parses must print back as itself (through the C library's calendar, not ours).
void check_time(std::string_view text) {
    auto const ms = api_json::parse_block_time(text);
    if (!ms) return;
    require(*ms >= 0, "times are from 1970 on");
    std::time_t const seconds = static_cast<std::time_t>(*ms / 1000);
    std::tm tm{};
    require(::gmtime_r(&seconds, &tm) != nullptr, "a parsed time is a calendar time");
    char printed[32];
    auto const n = std::strftime(printed, sizeof printed, "%Y-%m-%dT%H:%M:%S", &tm);
    require(n == 19 && text.substr(0, 19) == std::string_view(printed, n), "a parsed time prints back as its text");
    int millis = 0;
    for (std::size_t i = 20; i < 23; ++i) millis = millis * 10 + (i < text.size() && text[i] >= '0' && text[i] <= '9' ? text[i] - '0' : 0);
    require(*ms % 1000 == millis, "the milliseconds are the fraction's first three digits");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    if (size < 2) return 0;
    char const which = nm::fuzz::decoder_of(data[0], "ipqet");
    int const status = status_of(data[1]);
    auto const body = nm::fuzz::as_text(data + 2, size - 2);

    switch (which) {
    case 'i':
        check(api_json::decode_get_info(status, body), status, 200, [](chain_info const& info) {
            require(info.head_block_num >= 0 && info.last_irreversible_block_num >= 0, "block numbers are not negative");
            require(info.head_block_time_ms >= 0, "the head block's time is from 1970 on");
        });
        break;
    case 'p': check(api_json::decode_pause_resume(status, body), status, 201, [](std::monostate) {}); break;
    case 'q': check(api_json::decode_paused(status, body), status, 201, [](bool) {}); break;
    case 'e': {
        auto const e = api_json::decode_error(status, body);
        require(e.what == api_error::kind::status && e.http_status == status, "decode_error keeps the status");
        require(!describe(e).empty(), "an error describes itself");
        break;
    }
    case 't': check_time(body); break;
    }
    return 0;
}
