#include "app/endpoints.hpp"

#include <arpa/inet.h>
#include <netdb.h>

#include "core/text.hpp"

namespace nm {

std::vector<http_endpoint> resolve(std::vector<endpoint_url> const& urls, char const* flag) {
    std::vector<http_endpoint> out;
    for (auto const& u : urls) {
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_NUMERICSERV;
        addrinfo* found = nullptr;
        auto port = std::to_string(u.port);
        if (int rc = ::getaddrinfo(u.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
            throw usage_error(cat(flag, " ", u.host, ": cannot resolve: ", ::gai_strerror(rc)));
        }
        char text[INET6_ADDRSTRLEN] = {};
        void const* addr = found->ai_family == AF_INET6
                               ? static_cast<void const*>(&reinterpret_cast<sockaddr_in6*>(found->ai_addr)->sin6_addr)
                               : static_cast<void const*>(&reinterpret_cast<sockaddr_in*>(found->ai_addr)->sin_addr);
        ::inet_ntop(found->ai_family, addr, text, sizeof text);
        ::freeaddrinfo(found);
        out.push_back(http_endpoint{u.tls, u.host, u.port, text});
    }
    return out;
}

}  // namespace nm
