#pragma once
// Decoding the answers of nodeos's HTTP API (chain_api_plugin, producer_api_plugin).
// Pure functions over strings: no I/O, so they are unit tested with canned answers.
//
// nodeos facts this relies on (Antelope Spring, Leap): get_info answers 200 with integers
// as JSON numbers, or as strings above 2^32 (fc's rule); times are UTC with milliseconds
// and no zone ("2025-09-04T12:00:00.500"). pause and resume answer 201 {"result":"ok"};
// paused answers 201 and a bare true or false. Errors are
// {"code":404,"message":"Not Found","error":{"code":0,"name":"exception","what":"unspecified",
// "details":[{"message":"Unknown Endpoint",...}]}}.
#include <cstdint>
#include <optional>
#include <string_view>
#include <variant>

#include "nodeos/api_types.hpp"

namespace nm::api_json {

// An HTTP answer: status and body. A status other than the call's is an api_error of kind
// status with nodeos's message; a body that does not have the expected shape is malformed.
api_result<chain_info> decode_get_info(int http_status, std::string_view body);
// The answer to /v1/producer/pause or /v1/producer/resume.
api_result<std::monostate> decode_pause_resume(int http_status, std::string_view body);
// The answer to /v1/producer/paused: whether production is paused.
api_result<bool> decode_paused(int http_status, std::string_view body);
// The error an answer with an unexpected status stands for.
api_error decode_error(int http_status, std::string_view body);

// "YYYY-MM-DDTHH:MM:SS" with an optional fraction of a second (1 to 9 digits, cut to
// milliseconds) and an optional 'Z', read as UTC, years 1970 to 9999: Unix milliseconds.
// nullopt for anything else.
std::optional<std::int64_t> parse_block_time(std::string_view text);

}  // namespace nm::api_json
