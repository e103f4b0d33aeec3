// The log's bounded buffer (pure), and the writer that empties it into a descriptor without
// ever waiting: on a pipe and a socket that nobody reads (local descriptors made here, no
// network), on a file, on a closed descriptor; and that it leaves the flags of the open file
// description it shares with others as they were.
#define BOOST_TEST_MODULE log_buffer
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <limits.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "ops/log.hpp"
#include "ops/log_buffer.hpp"
#include "ops/metrics.hpp"

using namespace nm;
using namespace std::chrono_literals;

namespace {

std::string notice(std::uint64_t n) { return "dropped " + std::to_string(n) + "\n"; }

std::string numbered(int i, std::size_t length = 100) {
    auto line = "line " + std::to_string(i) + " ";
    line.resize(length - 1, 'x');
    return line + "\n";
}

std::vector<std::string> lines_of(std::string const& text) {
    std::vector<std::string> out;
    std::size_t start = 0;
    for (auto end = text.find('\n'); end != std::string::npos; end = text.find('\n', start)) {
        out.push_back(text.substr(start, end + 1 - start));
        start = end + 1;
    }
    BOOST_TEST(start == text.size(), "no partial line at the end");
    return out;
}

bool nonblocking(int fd) { return (::fcntl(fd, F_GETFL) & O_NONBLOCK) != 0; }

struct descriptor_pair {
    int read = -1;
    int write = -1;
    ~descriptor_pair() {
        if (read >= 0) ::close(read);
        if (write >= 0) ::close(write);
    }
};

descriptor_pair make_pipe() {
    int fds[2];
    BOOST_TEST_REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    return {fds[0], fds[1]};
}

descriptor_pair make_socketpair() {
    int fds[2];
    BOOST_TEST_REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    return {fds[0], fds[1]};
}

// Everything readable now (the read end is set non-blocking: it is the test's own).
std::string read_available(int fd) {
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    std::string out;
    char chunk[65536];
    for (ssize_t n; (n = ::read(fd, chunk, sizeof chunk)) > 0;) out.append(chunk, static_cast<std::size_t>(n));
    return out;
}

}  // namespace

// ---- the buffer ------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(front_is_whole_lines_up_to_the_limit) {
    log_buffer b(1000, notice);
    BOOST_TEST(b.front(100).empty());
    BOOST_TEST(b.push("one\n"));
    BOOST_TEST(b.push("two\n"));
    BOOST_TEST(b.push("three\n"));
    BOOST_TEST(b.front(100) == "one\ntwo\nthree\n");
    BOOST_TEST(b.front(9) == "one\ntwo\n", "the longest run of whole lines that fits");
    BOOST_TEST(b.front(2) == "one\n", "a first line longer than the limit goes alone, whole");
    b.consume(2);
    BOOST_TEST(b.front(100) == "e\ntwo\nthree\n", "the rest of a partly written line comes first");
    b.consume(b.front(100).size());
    BOOST_TEST(b.empty());
    BOOST_TEST(b.dropped() == 0u);
}

BOOST_AUTO_TEST_CASE(full_drops_whole_lines_until_half_drained_then_tells_how_many) {
    log_buffer b(1000, notice);
    int kept = 0;
    for (int i = 0; i < 10; ++i) kept += b.push(numbered(i)) ? 1 : 0;
    BOOST_TEST(kept == 10);
    BOOST_TEST(b.size() == 1000u);
    BOOST_TEST(!b.push("x\n"), "nothing fits in a full buffer");
    BOOST_TEST(b.dropped() == 1u);
    b.consume(400);  // 600 left: above half, still dropping, even a line that would fit
    BOOST_TEST(!b.push("small\n"));
    BOOST_TEST(b.dropped() == 2u);
    BOOST_TEST(b.untold() == 2u);
    b.consume(100);  // 500 left: drained to half; the notice goes in at the gap
    BOOST_TEST(b.untold() == 0u);
    BOOST_TEST(b.size() == 500u + notice(2).size());
    BOOST_TEST(b.push("after\n"));
    b.consume(500);
    BOOST_TEST(b.front(100) == "dropped 2\nafter\n");
    BOOST_TEST(b.dropped() == 2u, "the total stays for the metric");
}

BOOST_AUTO_TEST_CASE(a_line_longer_than_the_bound_is_dropped_and_told_at_once) {
    log_buffer b(100, notice);
    BOOST_TEST(b.push("before\n"));
    BOOST_TEST(!b.push(std::string(200, 'y') + "\n"));
    BOOST_TEST(b.front(1000) == "before\ndropped 1\n", "half drained already: told right away");
    BOOST_TEST(b.push("next\n"));
}

BOOST_AUTO_TEST_CASE(discard_counts_the_lines_given_up) {
    log_buffer b(1000, notice);
    b.push("a\n");
    b.push("b\n");
    b.push("c\n");
    BOOST_TEST(b.discard(4) == 2u);
    BOOST_TEST(b.front(100) == "c\n");
    BOOST_TEST(b.dropped() == 0u, "refused lines are the writer's count, not the buffer's");
}

BOOST_AUTO_TEST_CASE(random_pushes_and_partial_writes_keep_the_order_and_every_byte) {
    // Against a plain string: what goes out is exactly what was kept, in order, with each
    // gap marked by its notice; compaction moves nothing out of place.
    std::mt19937 rng(7);
    log_buffer b(8192, notice);
    std::string expected, written;
    std::uint64_t untold = 0;
    for (int i = 0; i < 20000; ++i) {
        if (rng() % 3 != 0) {
            auto line = numbered(i, 10 + rng() % 300);
            bool const was_dropping = b.untold() > 0;
            if (b.push(line)) {
                expected += line;
            } else if (!was_dropping && b.untold() == 0) {
                BOOST_FAIL("a dropped line must be counted as untold");
            }
        } else {
            auto const before = b.untold();
            auto const n = std::min<std::size_t>(b.front(4096).size(), rng() % 400);
            written += std::string(b.front(4096).substr(0, n));
            b.consume(n);
            if (before > 0 && b.untold() == 0) {
                expected += notice(before);
                untold += before;
            }
        }
    }
    while (!b.empty()) {
        auto const before = b.untold();
        written += std::string(b.front(4096));
        b.consume(b.front(4096).size());
        if (before > 0 && b.untold() == 0) {
            expected += notice(before);
            untold += before;
        }
    }
    BOOST_TEST(b.dropped() > 0u, "the test fills the buffer");
    BOOST_TEST(untold + b.untold() == b.dropped());
    BOOST_TEST(written == expected);
}

BOOST_AUTO_TEST_CASE(storage_stays_within_twice_the_bound_and_is_given_back) {
    log_buffer b(256 * 1024, notice);
    std::size_t most = 0;
    // A slow reader: a full buffer drained a little at a time while lines keep coming.
    for (int i = 0; i < 100000; ++i) {
        b.push(numbered(i));
        if (i % 2 == 0) b.consume(std::min<std::size_t>(b.front(4096).size(), 150));
        most = std::max(most, b.storage());
    }
    BOOST_TEST(b.dropped() > 0u);
    BOOST_TEST(most <= 2u * 256 * 1024);
    while (!b.empty()) b.consume(b.front(4096).size());
    BOOST_TEST(b.storage() <= 64u * 1024, "drained: the memory of the stall is released");
}

// ---- the writer ------------------------------------------------------------------------

namespace {

// Writes lines to a descriptor nobody reads until the writer drops some; every write returns
// at once (were one to block, the test would hang here).
int fill(log_writer& w, int count = 5000) {
    int i = 0;
    for (; i < count; ++i) w.write(numbered(i));
    return i;
}

// Reads the other end while the loop writes the backlog, until the notice has come and the
// writer is empty; returns what was read.
std::string drain(boost::asio::io_context& io, log_writer& w, int read_fd) {
    std::string got;
    auto const until = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < until) {
        got += read_available(read_fd);
        io.run_for(5ms);
        io.restart();
        if (w.queued() == 0 && got.find("dropped ") != std::string::npos) break;
    }
    got += read_available(read_fd);
    return got;
}

void check_backlog(std::string const& got, int written, std::uint64_t dropped) {
    auto const lines = lines_of(got);
    std::size_t notices = 0;
    int last = -1;
    for (auto const& line : lines) {
        if (line.starts_with("dropped ")) {
            ++notices;
            BOOST_TEST(std::stoull(line.substr(8)) == dropped);
            continue;
        }
        BOOST_TEST_REQUIRE(line.size() == 100u, "a whole line: " << line.substr(0, 40));
        auto const i = std::stoi(line.substr(5));
        BOOST_TEST(i > last, "in order");
        last = i;
    }
    BOOST_TEST(notices == 1u);
    BOOST_TEST(lines.size() - notices + dropped == static_cast<std::size_t>(written), "each line written or counted");
}

}  // namespace

BOOST_AUTO_TEST_CASE(pipe_nobody_reads_never_blocks_and_keeps_the_shared_flags) {
    auto p = make_pipe();
    boost::asio::io_context io;  // outlives the writer, which must detach from it first
    log_writer w(p.write, 64 * 1024, notice);
    BOOST_TEST((w.how() == log_writer::method::reopened));
    auto const written = fill(w);
    BOOST_TEST(w.dropped() > 0u);
    BOOST_TEST(w.queued() <= 64u * 1024);
    BOOST_TEST(!nonblocking(p.write), "the shared description is left blocking");

    w.attach(io);
    auto const got = drain(io, w, p.read);
    check_backlog(got, written, w.dropped());
    BOOST_TEST(!nonblocking(p.write));
}

BOOST_AUTO_TEST_CASE(socket_nobody_reads_never_blocks_and_keeps_the_shared_flags) {
    auto s = make_socketpair();
    boost::asio::io_context io;
    log_writer w(s.write, 64 * 1024, notice);
    BOOST_TEST((w.how() == log_writer::method::socket));
    auto const written = fill(w);
    BOOST_TEST(w.dropped() > 0u);
    BOOST_TEST(!nonblocking(s.write), "MSG_DONTWAIT, not O_NONBLOCK");

    w.attach(io);
    auto const got = drain(io, w, s.read);
    check_backlog(got, written, w.dropped());
    BOOST_TEST(!nonblocking(s.write), "the loop waits on its own epoll set, not on the socket");
}

BOOST_AUTO_TEST_CASE(polled_shared_pipe_never_blocks) {
    // The fallback when a pipe cannot be opened again: the shared, blocking descriptor,
    // written only after poll() and PIPE_BUF bytes at a time.
    auto p = make_pipe();
    boost::asio::io_context io;
    log_writer w(p.write, 64 * 1024, notice, log_writer::method::polled);
    auto const written = fill(w);
    BOOST_TEST(w.dropped() > 0u);
    BOOST_TEST(!nonblocking(p.write));

    w.attach(io);
    auto const got = drain(io, w, p.read);
    check_backlog(got, written, w.dropped());
    BOOST_TEST(!nonblocking(p.write));
}

BOOST_AUTO_TEST_CASE(without_a_loop_the_next_line_writes_the_backlog) {
    auto p = make_pipe();
    log_writer w(p.write, 64 * 1024, notice);
    fill(w, 2000);  // 200 KB: the pipe (64 KiB) full, 64 KiB queued, the rest dropped
    auto const queued = w.queued();
    BOOST_TEST(queued > 0u);
    read_available(p.read);
    w.write(numbered(999999));
    BOOST_TEST(w.queued() < queued, "a line written with a pipe that has room again takes the backlog with it");
}

BOOST_AUTO_TEST_CASE(flush_waits_at_most_its_bound) {
    auto p = make_pipe();
    log_writer w(p.write, 64 * 1024, notice);
    fill(w, 2000);
    auto const started = std::chrono::steady_clock::now();
    w.flush(200ms);
    auto const took = std::chrono::steady_clock::now() - started;
    BOOST_TEST(took >= 190ms);
    BOOST_TEST(took < 1500ms);
    BOOST_TEST(w.queued() > 0u, "nobody reads: still queued");

    // A pipe with room: everything goes.
    auto q = make_pipe();
    log_writer healthy(q.write, 64 * 1024, notice);
    for (int i = 0; i < 100; ++i) healthy.write(numbered(i));
    healthy.flush(1s);
    BOOST_TEST(healthy.queued() == 0u);
    BOOST_TEST(lines_of(read_available(q.read)).size() == 100u);
}

BOOST_AUTO_TEST_CASE(a_file_takes_every_line) {
    char path[] = "/tmp/nm-log-writer-XXXXXX";
    int fd = ::mkstemp(path);
    BOOST_TEST_REQUIRE(fd >= 0);
    ::unlink(path);
    {
        boost::asio::io_context io;
        log_writer w(fd, 4096, notice);
        BOOST_TEST((w.how() == log_writer::method::direct));
        w.attach(io);  // epoll refuses a file: nothing to wait for, every write completes
        for (int i = 0; i < 1000; ++i) w.write(numbered(i));
        BOOST_TEST(w.queued() == 0u);
        BOOST_TEST(w.dropped() == 0u);
    }
    BOOST_TEST(::lseek(fd, 0, SEEK_END) == 100 * 1000);
    ::close(fd);
}

BOOST_AUTO_TEST_CASE(a_closed_descriptor_counts_its_lines_as_dropped) {
    auto p = make_pipe();
    int const fd = ::dup(p.write);
    ::close(fd);  // a number nothing is open on
    log_writer w(fd, 4096, notice);
    for (int i = 0; i < 10; ++i) w.write(numbered(i));
    BOOST_TEST(w.queued() == 0u);
    BOOST_TEST(w.dropped() == 10u);
}

BOOST_AUTO_TEST_CASE(a_reader_gone_counts_its_lines_as_dropped) {
    ::signal(SIGPIPE, SIG_IGN);  // as the monitor runs
    auto p = make_pipe();
    ::close(p.read);
    p.read = -1;
    log_writer w(p.write, 4096, notice);
    for (int i = 0; i < 10; ++i) w.write(numbered(i));
    BOOST_TEST(w.queued() == 0u);
    BOOST_TEST(w.dropped() == 10u);
}

BOOST_AUTO_TEST_CASE(the_metric_has_help_and_starts_at_zero) {
    counters c;
    auto const text = render_metrics(c, gauges{}, process_stats{}, "test");
    BOOST_TEST(text.find("# HELP nodeos_monitor_log_lines_dropped_total ") != std::string::npos);
    BOOST_TEST(text.find("# TYPE nodeos_monitor_log_lines_dropped_total counter\n") != std::string::npos);
    BOOST_TEST(text.find("\nnodeos_monitor_log_lines_dropped_total 0\n") != std::string::npos);
    c.log_lines_dropped = 12;
    auto const counted = render_metrics(c, gauges{}, process_stats{}, "test");
    BOOST_TEST(counted.find("\nnodeos_monitor_log_lines_dropped_total 12\n") != std::string::npos);
}
