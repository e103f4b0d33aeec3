// The systemd notify protocol: addresses, watchdog settings, messages, and a real datagram
// to a socket made here (a local socket, no network).
#define BOOST_TEST_MODULE notify
#include <boost/test/unit_test.hpp>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "ops/notify.hpp"

using namespace nm;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_CASE(socket_paths_and_abstract_names) {
    auto path = parse_notify_socket("/run/systemd/notify");
    BOOST_TEST_REQUIRE(path.has_value());
    BOOST_TEST(std::string(path->addr.sun_path) == "/run/systemd/notify");
    BOOST_TEST(path->length == offsetof(sockaddr_un, sun_path) + 20);

    auto abstract = parse_notify_socket("@nm/notify");
    BOOST_TEST_REQUIRE(abstract.has_value());
    BOOST_TEST(abstract->addr.sun_path[0] == '\0');
    BOOST_TEST(std::string(abstract->addr.sun_path + 1, 9) == "nm/notify");
    BOOST_TEST(abstract->length == offsetof(sockaddr_un, sun_path) + 10, "no trailing NUL in an abstract name");

    BOOST_TEST(!parse_notify_socket("").has_value());
    BOOST_TEST(!parse_notify_socket("@").has_value());
    BOOST_TEST(!parse_notify_socket("relative/path").has_value());
    BOOST_TEST(!parse_notify_socket("/" + std::string(200, 'x')).has_value());
}

BOOST_AUTO_TEST_CASE(watchdog_pings_at_half_the_interval_for_this_process_only) {
    BOOST_TEST(!watchdog_interval(nullptr, nullptr, 10).has_value());
    BOOST_TEST(watchdog_interval("3000000", nullptr, 10).value() == 1500000us);
    BOOST_TEST(watchdog_interval("3000000", "10", 10).value() == 1500000us);
    BOOST_TEST(!watchdog_interval("3000000", "11", 10).has_value(), "meant for another process");
    BOOST_TEST(!watchdog_interval("0", nullptr, 10).has_value());
    BOOST_TEST(!watchdog_interval("3s", nullptr, 10).has_value());
}

BOOST_AUTO_TEST_CASE(status_messages_stay_one_assignment) {
    BOOST_TEST(status_message("standby, holder is bp1") == "STATUS=standby, holder is bp1");
    BOOST_TEST(status_message("a\nREADY=1") == "STATUS=a READY=1");
}

BOOST_AUTO_TEST_CASE(a_datagram_reaches_an_abstract_socket) {
    int receiver = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    BOOST_TEST_REQUIRE(receiver >= 0);
    auto name = "@nm-test-notify-" + std::to_string(::getpid());
    auto addr = parse_notify_socket(name).value();
    BOOST_TEST_REQUIRE(::bind(receiver, reinterpret_cast<sockaddr*>(&addr.addr), addr.length) == 0);
    ::setenv("NOTIFY_SOCKET", name.c_str(), 1);
    {
        notifier n;
        BOOST_TEST(n.enabled());
        n.send("READY=1\nSTATUS=standby");
    }
    char buf[256] = {};
    auto got = ::recv(receiver, buf, sizeof buf, MSG_DONTWAIT);
    BOOST_TEST(std::string(buf, got > 0 ? static_cast<std::size_t>(got) : 0) == "READY=1\nSTATUS=standby");
    ::close(receiver);
    ::unsetenv("NOTIFY_SOCKET");
    notifier off;
    BOOST_TEST(!off.enabled());
    off.send("READY=1");  // a no-op without systemd
}
