#pragma once
// What nodeos's HTTP API tells us, as plain values: no JSON, no sockets.
#include <cstdint>
#include <string>
#include <variant>

#include "core/facts.hpp"

namespace nm {

// The part of /v1/chain/get_info that tells how healthy a node is.
struct chain_info {
    std::int64_t head_block_num = 0;
    std::int64_t head_block_time_ms = 0;  // head_block_time as Unix milliseconds (nodeos writes UTC, no 'Z', ms: "2025-09-04T12:00:00.500")
    std::int64_t last_irreversible_block_num = 0;
    std::string chain_id;
    std::string server_version;       // server_version_string; empty when absent
    std::string head_block_producer;  // who signed the head block; empty when absent
};

// Why a call to nodeos's API did not give an answer we can use.
struct api_error {
    enum class kind {
        unavailable,  // no connection, or it broke before the answer
        timed_out,    // no complete answer in the time allowed
        status,       // an HTTP status other than the call's (404: the plugin is not enabled)
        malformed,    // an answer we cannot decode, or one larger than any nodeos writes
    };
    kind what = kind::unavailable;
    int http_status = 0;  // 0 when no HTTP answer was read
    std::string message;  // for the logs: nodeos's own words for a status, else what went wrong where
};

template <class T>
using api_result = std::variant<T, api_error>;

// The kind of failure the core decides on: unavailable, timed_out, rejected (a status),
// malformed.
failure kind_of(api_error const& e);

// One line for the logs: "HTTP 404: Not Found: Unknown Endpoint".
std::string describe(api_error const& e);

}  // namespace nm
