#pragma once
// Host names of the flags' URLs, resolved once at start-up: a blocking getaddrinfo on the
// loop could stall fencing for as long as DNS takes, and asynchronous resolution would need
// a thread. Throws usage_error naming `flag` for a name that does not resolve.
#include <vector>

#include "app/options.hpp"
#include "net/http_client.hpp"

namespace nm {

std::vector<http_endpoint> resolve(std::vector<endpoint_url> const& urls, char const* flag);

}  // namespace nm
