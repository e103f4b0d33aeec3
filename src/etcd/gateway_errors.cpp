#include "etcd/gateway_errors.hpp"

#include <array>
#include <charconv>
#include <optional>
#include <utility>

#include "etcd/json_fields.hpp"

namespace nm {

std::string describe(etcd_error const& e) {
    auto with_message = [&](std::string head) {
        if (!e.message.empty()) head.append(": ").append(e.message);
        return head;
    };
    switch (e.what) {
    case etcd_error::kind::transport: return with_message("transport error");
    case etcd_error::kind::timeout: return with_message("timed out");
    case etcd_error::kind::malformed: return with_message("malformed answer");
    case etcd_error::kind::canceled: return with_message("canceled");
    // Their message says it all: "etcd refuses user bp: ...", "permission denied for key ...".
    case etcd_error::kind::refused_credentials: return e.message.empty() ? "authentication refused" : e.message;
    case etcd_error::kind::permission_denied: return e.message.empty() ? "permission denied" : e.message;
    case etcd_error::kind::status: break;
    }
    std::string head;
    if (e.http_status != 0) head = cat("HTTP ", e.http_status);
    if (e.grpc_code != 0) head += head.empty() ? cat("grpc ", e.grpc_code) : cat(" (grpc ", e.grpc_code, ")");
    if (head.empty()) head = "etcd error";
    return with_message(std::move(head));
}

namespace {

// gRPC's status codes (google.golang.org/grpc/codes) by the names its errors print.
constexpr std::array<std::string_view, 17> grpc_code_names = {
    "OK",           "Canceled",         "Unknown",           "InvalidArgument", "DeadlineExceeded", "NotFound",
    "AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted",     "OutOfRange",
    "Unimplemented", "Internal",        "Unavailable",       "DataLoss",        "Unauthenticated",
};
constexpr int invalid_argument = 3, deadline_exceeded = 4, not_found = 5, permission_denied = 7,
              failed_precondition = 9, unavailable = 14, unauthenticated = 16;

// etcd's own messages (api/v3rpc/rpctypes/error.go), as its errors name them.
constexpr std::string_view auth_old_revision = "etcdserver: revision of auth store is old";
constexpr std::string_view user_empty = "etcdserver: user name is empty";
constexpr std::string_view auth_failed = "etcdserver: authentication failed, invalid user ID or password";
constexpr std::string_view auth_not_enabled = "etcdserver: authentication is not enabled";
constexpr std::string_view lease_exists = "etcdserver: lease already exists";

// An error as etcd said it: its gRPC code and its message.
struct said {
    int code = 0;
    std::string_view text;
};

// Reads gRPC's "rpc error: code = <Name> desc = <message>" (a watch's cancel reason, after
// what the client says of it); any other text is the message itself.
said what_etcd_said(etcd_error const& e) {
    std::string_view text = e.message;
    constexpr std::string_view head = "rpc error: code = ", desc = " desc = ";
    auto const start = text.find(head);
    if (start == std::string_view::npos) return said{e.grpc_code, text};
    text.remove_prefix(start + head.size());
    auto const end = text.find(desc);
    if (end == std::string_view::npos) return said{e.grpc_code, e.message};
    auto const name = text.substr(0, end);
    said out{e.grpc_code, text.substr(end + desc.size())};
    for (std::size_t i = 0; i < grpc_code_names.size(); ++i) {
        if (grpc_code_names[i] == name) out.code = static_cast<int>(i);
    }
    return out;
}

}  // namespace

failure kind_of(etcd_error const& e) {
    switch (e.what) {
    case etcd_error::kind::timeout: return failure::timed_out;
    case etcd_error::kind::malformed: return failure::malformed;
    case etcd_error::kind::transport:
    case etcd_error::kind::canceled: return failure::unavailable;
    case etcd_error::kind::refused_credentials: return failure::unauthenticated;
    case etcd_error::kind::permission_denied: return failure::rejected;
    case etcd_error::kind::status: break;
    }
    auto const s = what_etcd_said(e);
    if (s.code == not_found) return failure::not_found;
    if (s.code == failed_precondition && s.text == lease_exists) return failure::exists;  // HTTP 412
    if (s.code == unauthenticated || e.http_status == 401) return failure::unauthenticated;
    if (s.code == deadline_exceeded) return failure::timed_out;
    if (s.code == unavailable || e.http_status >= 500) return failure::unavailable;
    return failure::rejected;
}

}  // namespace nm

namespace nm::gateway {

// {"code","message"} (with "error" beside them in 3.4 and 3.5, "details" in 3.6), or a
// streamed RPC's {"grpc_code","http_code","message"} (3.4, 3.5) or {"code","message"} (3.6).
etcd_error error_object(json const& object, int http_status) {
    etcd_error e{etcd_error::kind::status, http_status, 0, string_field(object, "message")};
    e.grpc_code = member(object, "code") ? small_int_field(object, "code") : small_int_field(object, "grpc_code");
    if (auto const http = small_int_field(object, "http_code"); http != 0) e.http_status = http;
    if (e.message.empty()) e.message = string_field(object, "error");
    return e;
}

etcd_error decode_error(int http_status, std::string_view body) {
    etcd_error e{etcd_error::kind::status, http_status, 0, {}};
    try {
        auto document = parse_bounded(body);
        if (document.is_object()) {
            // A streamed RPC's error is nested: {"error":{...}}.
            auto const* nested = member(document, "error");
            e = error_object(nested && nested->is_object() ? *nested : document, http_status);
            if (!e.message.empty() || e.grpc_code != 0) return e;
        }
    } catch (bad_shape const&) {
    } catch (std::exception const&) {
    }
    // Not the gateway's error object (a proxy's page, say): keep its start for the log.
    e = etcd_error{etcd_error::kind::status, http_status, 0, excerpt(body)};
    return e;
}

refusal refusal_of(etcd_error const& e) {
    if (e.what != etcd_error::kind::status) return refusal::none;
    auto const s = what_etcd_said(e);
    switch (s.code) {
    case unauthenticated: return refusal::token;  // "etcdserver: invalid auth token"
    case permission_denied: return refusal::permission;
    case invalid_argument:
        if (s.text == auth_old_revision || s.text == user_empty) return refusal::token;
        if (s.text == auth_failed) return refusal::credentials;
        return refusal::none;
    case failed_precondition: return s.text == auth_not_enabled ? refusal::disabled : refusal::none;
    case 0:
        // No code: an answer that is not the gateway's (a proxy's), told by its status.
        if (e.http_status == 401) return refusal::token;
        if (e.http_status == 403) return refusal::permission;
        return refusal::none;
    default: return refusal::none;
    }
}

}  // namespace nm::gateway
