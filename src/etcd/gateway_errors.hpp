#pragma once
// What etcd's refusals mean: the error object of a unary answer, and what an error says
// about etcd's authentication. Pure functions over strings.
//
// etcd names each refusal by a gRPC code and one of its own messages (rpctypes/error.go:
// "etcdserver: invalid auth token" is code 16, Unauthenticated). The gateway writes them
// as {"error","message","code"} (etcd 3.4, 3.5), {"code","message","details"} (3.6's
// grpc-gateway v2), or, for a streamed RPC such as a keepalive, {"error":{"code",
// "message"}}; a watch tells them in its cancel reason as "rpc error: code = Unauthenticated
// desc = etcdserver: invalid auth token". Each form is read into the same code and message.
#include <string>
#include <string_view>

#include "etcd/etcd_types.hpp"

namespace nm::gateway {

// The error a non-2xx answer stands for (also a watch refused before it streams).
etcd_error decode_error(int http_status, std::string_view body);

// What an error says about etcd's authentication.
enum class refusal {
    none,
    token,        // the token sent (or its absence) is not accepted: expired, unknown to this
                  // member, older than the auth store, or none for an etcd that wants one
    permission,   // the user may not do this on these keys
    credentials,  // an authentication refused for its user and password
    disabled,     // etcd has no users to authenticate
};
refusal refusal_of(etcd_error const& e);

inline bool token_refused(etcd_error const& e) { return refusal_of(e) == refusal::token; }
inline bool permission_refused(etcd_error const& e) { return refusal_of(e) == refusal::permission; }
inline bool credentials_refused(etcd_error const& e) { return refusal_of(e) == refusal::credentials; }
inline bool authentication_disabled(etcd_error const& e) { return refusal_of(e) == refusal::disabled; }

}  // namespace nm::gateway
