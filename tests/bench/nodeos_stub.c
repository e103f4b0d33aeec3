// A stand-in for nodeos that costs next to nothing, for the scale benchmark
// (tests/bench/scale_bench.py): a thousand of them run beside a thousand monitors on one
// machine, where a thousand Python simulators would measure themselves.
//
// It takes the simulator's arguments that the benchmark needs and writes the simulator's
// ledger records (tests/nodeos_sim.py, "THE LEDGER"), so that the same Ledger reads both:
//
//   --config-dir DIR   produce iff DIR/config.ini has a non-empty `producer-name`
//                      (a missing config.ini: exit 1, as the simulator)
//   --data-dir DIR     accepted, unused (-d too)
//   --sim-node NAME    the node written to the ledger (default: the host name)
//   --sim-ledger PATH  the ledger: one JSON object a line, each record one write() on an
//                      O_APPEND descriptor, so that lines of several processes never mix
//   --sim-block-ms N   block interval (default 500)
//   --sim-log-ms N     a nodeos-like log line on stdout every N ms (default 0: none but
//                      one line at start and one at exit)
//   --http-server-address HOST:PORT   serve the producer API (below) on this IPv4 address
//   -x, --pause-on-startup            start paused: only /v1/producer/resume starts production
// Anything else is accepted and ignored (the monitor passes nodeos's flags through).
//
// Records: "start" when the process starts; a producer then writes "producing" and signs
// its first block at once (a real nodeos would load its state and wait for its slot first:
// the stub times the monitor, not nodeos), then one block a slot, each "block" record
// with a chain-wide number (the slot's index counted from the simulator's genesis block
// #1, so two producers on one chain agree on the numbers), its timestamp (the end of its
// slot) and the producer's name. SIGTERM, SIGINT or SIGQUIT: "stop", exit 0. SIGHUP is
// ignored, as nodeos does. SIGKILL leaves no record: the producing period then ends at
// the last block, which is exact because blocks are signed only at recorded instants.
//
// Paused mode (--pause-on-startup, --http-server-address): the simulator's API, with its
// status codes and bodies (tests/nodeos_sim.py, "THE HTTP API"), for the paths the monitor
// calls: /v1/producer/pause and /resume -> 201 {"result":"ok"}; /v1/producer/paused -> 201,
// bare true or false; /v1/chain/get_info -> 200 with the simulator's fields; another path,
// or a query string -> 404 with nodeos's error body; a body other than empty or {} -> 400.
// A resume writes "producing" and builds the block of the slot after max(now, head), signed
// at 92 % of its slot, as the simulator; a pause lets that block through, then writes
// "paused" (nodeos signs the block it was building when the pause arrived). The head that
// get_info reports is the newest block of the ledger (read on each request from where the
// last read ended) or of this process; HTTP/1.1 keep-alive, at most 16 connections.
//
// One thread, no allocation after start: one poll() over a signalfd (SIGTERM, SIGINT,
// SIGQUIT, SIGHUP), the listening socket and the connections, whose timeout is the next
// block or log line.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { NS_PER_MS = 1000000 };
static const int64_t NS_PER_S = 1000000000LL;
// The simulator's genesis: block #1 at 2018-06-08T08:08:08.500 UTC.
static const int64_t GENESIS_TIME_MS = 1528445288500LL;

static char node[128];
static char producer[64];
static int ledger_fd = -1;
static const char* mode = "validator";
static int64_t block_ms = 500;
static int64_t log_ms = 0;

static int64_t clock_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static int64_t wall_ms(void) { return clock_ns(CLOCK_REALTIME) / NS_PER_MS; }

// nodeos's timestamp format: UTC, milliseconds, no zone.
static void format_time(char* out, size_t size, int64_t epoch_ms) {
    time_t secs = (time_t)(epoch_ms / 1000);
    struct tm utc;
    gmtime_r(&secs, &utc);
    size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &utc);
    snprintf(out + n, size - n, ".%03d", (int)(epoch_ms % 1000));
}

// A JSON string's content: names are plain here, but a quote must not break a record.
static void json_copy(char* out, size_t size, const char* in) {
    size_t n = 0;
    for (; *in && n + 7 < size; ++in) {
        unsigned char c = (unsigned char)*in;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c < 0x20) {
            n += (size_t)snprintf(out + n, size - n, "\\u%04x", c);
        } else {
            out[n++] = (char)c;
        }
    }
    out[n] = '\0';
}

// One record, one write(): `extra` is either empty or starts with a comma.
static void record(const char* event, const char* extra, ...) {
    if (ledger_fd < 0) return;
    char fields[256] = "";
    va_list ap;
    va_start(ap, extra);
    vsnprintf(fields, sizeof fields, extra, ap);
    va_end(ap);
    char line[512];
    int n = snprintf(line, sizeof line, "{\"t\":%lld,\"node\":\"%s\",\"pid\":%d,\"event\":\"%s\",\"mode\":\"%s\"%s}\n",
                     (long long)clock_ns(CLOCK_MONOTONIC), node, (int)getpid(), event, mode, fields);
    if (n > 0 && n < (int)sizeof line) {
        ssize_t w;
        do w = write(ledger_fd, line, (size_t)n);
        while (w < 0 && errno == EINTR);
    }
}

// A nodeos-like line on stdout; a monitor that is gone must not stop the node.
static void say(const char* level, const char* source, const char* function, const char* fmt, ...) {
    char stamp[40], message[256], line[512];
    format_time(stamp, sizeof stamp, wall_ms());
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    int n = snprintf(line, sizeof line, "%-5s %s nodeos    %-28s %-20s ] %s\n", level, stamp, source, function, message);
    if (n > 0) {
        if (n >= (int)sizeof line) n = (int)sizeof line - 1;
        ssize_t w = write(STDOUT_FILENO, line, (size_t)n);
        (void)w;
    }
}

static int64_t block_num(int64_t block_time_ms) { return (block_time_ms - GENESIS_TIME_MS) / block_ms + 1; }

// Signs the block of the slot that holds `now_wall_ms`: its timestamp is the slot's end.
// Returns that timestamp.
static int64_t sign(int64_t now_wall_ms) {
    int64_t block_time = (now_wall_ms / block_ms + 1) * block_ms;
    char stamp[40];
    format_time(stamp, sizeof stamp, block_time);
    record("block", ",\"block\":%lld,\"time\":\"%s\",\"producer\":\"%s\"", (long long)block_num(block_time), stamp,
           producer);
    return block_time;
}

// `--name value` or `--name=value`: the value, advancing *i past it; NULL if argv[*i] is
// another flag.
static const char* value_of(int argc, char** argv, int* i, const char* name) {
    size_t len = strlen(name);
    if (strncmp(argv[*i], name, len) != 0) return NULL;
    if (argv[*i][len] == '=') return argv[*i] + len + 1;
    if (argv[*i][len] == '\0' && *i + 1 < argc) return argv[++*i];
    return NULL;
}

static int64_t positive(const char* flag, const char* text, int zero_ok) {
    char* end = NULL;
    long long v = strtoll(text, &end, 10);
    if (*text == '\0' || *end != '\0' || v < 0 || (v == 0 && !zero_ok)) {
        fprintf(stderr, "Error parsing command line: %s: bad value '%s'\n", flag, text);
        exit(255);  // nodeos's INITIALIZE_FAIL
    }
    return v;
}

// config.ini's `producer-name = X`, the first non-empty one; comments start with '#'.
static int read_config(const char* dir) {
    char path[4096];
    if (strlen(dir) > sizeof path - sizeof "/config.ini") {
        fprintf(stderr, "error main.cpp:140 config dir too long: %s\n", dir);
        return -1;
    }
    snprintf(path, sizeof path, "%.4000s/config.ini", dir);
    FILE* f = fopen(path, "re");
    if (!f) {
        fprintf(stderr, "error %s cannot read %s: %s\n", "main.cpp:140", path, strerror(errno));
        return -1;
    }
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        char* hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char* eq = strchr(line, '=');
        if (!eq) continue;
        *eq = '\0';
        char *key = line, *value = eq + 1;
        while (*key == ' ' || *key == '\t') ++key;
        char* k_end = key + strlen(key);
        while (k_end > key && (k_end[-1] == ' ' || k_end[-1] == '\t')) *--k_end = '\0';
        if (strcmp(key, "producer-name") != 0) continue;
        while (*value == ' ' || *value == '\t') ++value;
        char* v_end = value + strlen(value);
        while (v_end > value && (v_end[-1] == ' ' || v_end[-1] == '\t' || v_end[-1] == '\n' || v_end[-1] == '\r'))
            *--v_end = '\0';
        if (*value && !producer[0]) json_copy(producer, sizeof producer, value);
    }
    fclose(f);
    return 0;
}

// --- production ---------------------------------------------------------------------

static int paused = 0;                // production explicitly paused (the API's flag)
static int pausing = 0;               // paused while a block was being built: sign it, then "paused"
static int64_t next_block = INT64_MAX;  // CLOCK_MONOTONIC instant of the next signature
static int64_t own_head_ms = 0;       // the timestamp of this process's latest block

// The chain's head as the ledger shows it: the highest block number read so far.
static int ledger_rd = -1;
static int64_t ledger_head = 1;
static char tail_buf[4096];
static size_t tail_len = 0;

static void read_ledger(void) {
    if (ledger_rd < 0) return;
    for (;;) {
        ssize_t n = read(ledger_rd, tail_buf + tail_len, sizeof tail_buf - tail_len);
        if (n <= 0) return;
        tail_len += (size_t)n;
        size_t start = 0;
        for (size_t i = 0; i < tail_len; ++i) {
            if (tail_buf[i] != '\n') continue;
            tail_buf[i] = '\0';
            char* line = tail_buf + start;
            char* b = strstr(line, "\"event\":\"block\"") ? strstr(line, "\"block\":") : NULL;
            if (b) {
                long long num = strtoll(b + 8, NULL, 10);
                if (num > ledger_head) ledger_head = num;
            }
            start = i + 1;
        }
        if (start == 0 && tail_len == sizeof tail_buf) start = tail_len;  // a line too long: dropped
        memmove(tail_buf, tail_buf + start, tail_len - start);
        tail_len -= start;
    }
}

static int64_t block_time_of(int64_t num) { return GENESIS_TIME_MS + (num - 1) * block_ms; }

static int64_t head_num(void) {
    read_ledger();
    int64_t own = own_head_ms ? block_num(own_head_ms) : 1;
    return own > ledger_head ? own : ledger_head;
}

// The block of the slot after max(now, head), signed at 92 % of its slot; a slot whose
// signing instant has passed is skipped (the simulator's start_block).
static void start_block(void) {
    int64_t w = wall_ms();
    int64_t head_ms = block_time_of(head_num());
    int64_t base = w > head_ms ? w : head_ms;
    int64_t block_time = (base / block_ms + 1) * block_ms;
    int64_t sign_at = block_time - block_ms * 8 / 100;
    if (sign_at <= w) sign_at += block_ms;
    next_block = clock_ns(CLOCK_MONOTONIC) + (sign_at - w) * NS_PER_MS;
}

static void on_block_due(void) {
    int64_t w = wall_ms();
    if (w < own_head_ms) w = own_head_ms;  // never the same slot twice
    own_head_ms = sign(w);
    if (pausing) {
        pausing = 0;
        next_block = INT64_MAX;
        record("paused", "");
        return;
    }
    next_block = clock_ns(CLOCK_MONOTONIC) + ((own_head_ms - w) + block_ms * 92 / 100) * NS_PER_MS;
}

static void pause_production(void) {
    if (paused) return;
    paused = 1;
    say("info", "producer_plugin.cpp:1736", "pause", "Producer paused.");
    if (next_block != INT64_MAX) pausing = 1;  // the block being built is still signed
}

static void resume_production(void) {
    if (!paused) return;
    paused = 0;
    say("info", "producer_plugin.cpp:1224", "resume", "Producer resumed. Scheduling production.");
    if (!producer[0]) return;
    if (pausing) {  // resumed before the block in construction was signed: production goes on
        pausing = 0;
        return;
    }
    record("producing", "");
    start_block();
}

// --- the HTTP API ---------------------------------------------------------------------

enum { MAX_CONNS = 16, REQ_MAX = 8192 };
static const char CHAIN_ID[] = "2072696c67fb7c08440401e701406a6f407e7ae8cd7f601bb1131483e30d7c06";

struct conn {
    int fd;
    size_t len;
    char buf[REQ_MAX];
};
static struct conn conns[MAX_CONNS];

static void conn_close(struct conn* c) {
    close(c->fd);
    c->fd = -1;
    c->len = 0;
}

// A block id: 64 hex digits, the first 8 the block number (the simulator hashes the rest).
static void block_id(char out[65], int64_t num) {
    uint64_t x = (uint64_t)num * 0x9E3779B97F4A7C15ULL;
    snprintf(out, 65, "%08llx%016llx%016llx%016llx%08llx", (unsigned long long)(num & 0xffffffff),
             (unsigned long long)x, (unsigned long long)(x ^ 0x5555555555555555ULL),
             (unsigned long long)(x * 3), (unsigned long long)(x >> 32));
}

static int get_info(char* out, size_t size) {
    int64_t head = head_num();
    int64_t lib = head - 2 > 1 ? head - 2 : 1;
    char head_id[65], lib_id[65], head_time[40], lib_time[40];
    block_id(head_id, head);
    block_id(lib_id, lib);
    format_time(head_time, sizeof head_time, block_time_of(head));
    format_time(lib_time, sizeof lib_time, block_time_of(lib));
    const char* head_producer = head == 1 ? "eosio" : (producer[0] ? producer : "bp1");
    return snprintf(out, size,
        "{\"server_version\":\"d7f3b2a1\",\"chain_id\":\"%s\",\"head_block_num\":%lld,"
        "\"last_irreversible_block_num\":%lld,\"last_irreversible_block_id\":\"%s\",\"head_block_id\":\"%s\","
        "\"head_block_time\":\"%s\",\"head_block_producer\":\"%s\",\"virtual_block_cpu_limit\":200000000,"
        "\"virtual_block_net_limit\":1048576000,\"block_cpu_limit\":200000,\"block_net_limit\":1048576,"
        "\"server_version_string\":\"v1.2.2\",\"fork_db_head_block_num\":%lld,\"fork_db_head_block_id\":\"%s\","
        "\"server_full_version_string\":\"v1.2.2-17ed17f68b6c33fe3bb9d7b2cfe7d1c4e3b1f2a0\","
        "\"total_cpu_weight\":\"383524473934591\",\"total_net_weight\":\"95881118483648\","
        "\"earliest_available_block_num\":1,\"last_irreversible_block_time\":\"%s\"}",
        CHAIN_ID, (long long)head, (long long)lib, lib_id, head_id, head_time, head_producer, (long long)head,
        head_id, lib_time);
}

static const char NOT_FOUND[] =
    "{\"code\":404,\"message\":\"Not Found\",\"error\":{\"code\":0,\"name\":\"exception\",\"what\":\"unspecified\","
    "\"details\":[{\"message\":\"Unknown Endpoint\",\"file\":\"beast_http_session.hpp\",\"line_number\":186,"
    "\"method\":\"handle_request\"}]}}";
static const char INVALID[] =
    "{\"code\":400,\"message\":\"Invalid Request\",\"error\":{\"code\":3200006,\"name\":\"invalid_http_request\","
    "\"what\":\"invalid http request\",\"details\":[{\"message\":\"no parameter should be given\","
    "\"file\":\"http_plugin.hpp\",\"line_number\":268,\"method\":\"parse_params\"}]}}";
static const char BAD[] =
    "{\"code\":400,\"message\":\"Bad Request\",\"error\":{\"code\":0,\"name\":\"exception\",\"what\":\"unspecified\","
    "\"details\":[{\"message\":\"bad request\",\"file\":\"beast_http_session.hpp\",\"line_number\":186,"
    "\"method\":\"handle_request\"}]}}";

static void respond(struct conn* c, int status, const char* body, int keep_alive) {
    const char* reason = status == 200 ? "OK" : status == 201 ? "Created" : status == 404 ? "Not Found" : "Bad Request";
    char out[4096];
    size_t body_len = strlen(body);
    int n = snprintf(out, sizeof out,
                     "HTTP/1.1 %d %s\r\nServer: nodeos/v1.2.2\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: %s\r\n\r\n%s",
                     status, reason, body_len, keep_alive ? "keep-alive" : "close", body);
    if (n > 0 && n < (int)sizeof out) {
        // Answers are small and the client waits for each: one send fills the socket's buffer.
        ssize_t w = send(c->fd, out, (size_t)n, MSG_NOSIGNAL);
        (void)w;
    }
    if (!keep_alive) conn_close(c);
}

// http_plugin's rule for a call without parameters: empty, or {} with blanks.
static int empty_body(const char* b, size_t n) {
    while (n && (*b == ' ' || *b == '\t' || *b == '\r' || *b == '\n')) ++b, --n;
    while (n && (b[n - 1] == ' ' || b[n - 1] == '\t' || b[n - 1] == '\r' || b[n - 1] == '\n')) --n;
    if (n == 0) return 1;
    if (b[0] != '{' || b[n - 1] != '}') return 0;
    for (size_t i = 1; i + 1 < n; ++i)
        if (b[i] != ' ' && b[i] != '\t') return 0;
    return 1;
}

static const char* header(const char* head, const char* name) {
    size_t len = strlen(name);
    for (const char* p = strstr(head, "\r\n"); p; p = strstr(p + 2, "\r\n"))
        if (strncasecmp(p + 2, name, len) == 0 && p[2 + len] == ':') return p + 3 + len;
    return NULL;
}

// Answers every complete request in the buffer; returns 0 once the connection is closed.
static int serve(struct conn* c) {
    for (;;) {
        c->buf[c->len] = '\0';
        char* end = strstr(c->buf, "\r\n\r\n");
        if (!end) {
            if (c->len >= REQ_MAX - 1) {
                respond(c, 400, BAD, 0);
                return 0;
            }
            return 1;
        }
        *end = '\0';
        const char* cl = header(c->buf, "content-length");
        size_t body_len = cl ? (size_t)strtoul(cl, NULL, 10) : 0;
        size_t head_len = (size_t)(end - c->buf) + 4;
        if (head_len + body_len >= REQ_MAX) {
            respond(c, 400, BAD, 0);
            return 0;
        }
        if (c->len < head_len + body_len) {
            *end = '\r';
            return 1;
        }
        const char* conn_hdr = header(c->buf, "connection");
        int keep_alive = strstr(c->buf, " HTTP/1.1") != NULL;  // 1.0: close unless asked
        if (conn_hdr) {
            while (*conn_hdr == ' ') ++conn_hdr;
            if (strncasecmp(conn_hdr, "close", 5) == 0) keep_alive = 0;
            if (strncasecmp(conn_hdr, "keep-alive", 10) == 0) keep_alive = 1;
        }
        char method[16] = "", target[256] = "";
        if (sscanf(c->buf, "%15s %255s", method, target) != 2) {
            respond(c, 400, BAD, 0);
            return 0;
        }
        const char* body = end + 4;
        char answer[2048];
        int status = 200;
        const char* text = answer;
        int known = !strcmp(target, "/v1/producer/pause") || !strcmp(target, "/v1/producer/resume") ||
                    !strcmp(target, "/v1/producer/paused") || !strcmp(target, "/v1/chain/get_info");
        if (!known) {
            status = 404;
            text = NOT_FOUND;
        } else if (!empty_body(body, body_len)) {
            status = 400;
            text = INVALID;
        } else if (!strcmp(target, "/v1/chain/get_info")) {
            get_info(answer, sizeof answer);
        } else {
            status = 201;
            if (!strcmp(target, "/v1/producer/pause")) pause_production();
            else if (!strcmp(target, "/v1/producer/resume")) resume_production();
            text = !strcmp(target, "/v1/producer/paused") ? (paused ? "true" : "false") : "{\"result\":\"ok\"}";
        }
        respond(c, status, text, keep_alive);
        if (!keep_alive) return 0;
        size_t used = head_len + body_len;
        memmove(c->buf, c->buf + used, c->len - used);
        c->len -= used;
    }
}

static int listen_on(const char* address) {
    char host[64];
    const char* colon = strrchr(address, ':');
    if (!colon || (size_t)(colon - address) >= sizeof host) return -1;
    memcpy(host, address, (size_t)(colon - address));
    host[colon - address] = '\0';
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    if (inet_pton(AF_INET, host[0] ? host : "0.0.0.0", &sa.sin_addr) != 1) return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr*)&sa, sizeof sa) != 0 || listen(fd, 64) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int main(int argc, char** argv) {
    const char* config_dir = NULL;
    const char* ledger = NULL;
    const char* name = NULL;
    const char* http_address = NULL;
    int pause_on_startup = 0;
    for (int i = 1; i < argc; ++i) {
        const char* v;
        if ((v = value_of(argc, argv, &i, "--config-dir"))) config_dir = v;
        else if ((v = value_of(argc, argv, &i, "--sim-node"))) name = v;
        else if ((v = value_of(argc, argv, &i, "--sim-ledger"))) ledger = v;
        else if ((v = value_of(argc, argv, &i, "--sim-block-ms"))) block_ms = positive("--sim-block-ms", v, 0);
        else if ((v = value_of(argc, argv, &i, "--sim-log-ms"))) log_ms = positive("--sim-log-ms", v, 1);
        else if ((v = value_of(argc, argv, &i, "--http-server-address"))) http_address = v;
        else if ((v = value_of(argc, argv, &i, "--data-dir"))) (void)v;
        else if ((v = value_of(argc, argv, &i, "-d"))) (void)v;
        else if (!strcmp(argv[i], "--pause-on-startup") || !strcmp(argv[i], "-x")) pause_on_startup = 1;
    }
    char host[64] = "nodeos";
    if (!name) {
        gethostname(host, sizeof host - 1);
        name = host;
    }
    json_copy(node, sizeof node, name);

    // Blocked before anything is written, so that a SIGTERM that arrives at once still
    // ends with a stop record; SIGPIPE: a vanished reader of stdout is not a reason to die.
    sigset_t stops;
    sigemptyset(&stops);
    sigaddset(&stops, SIGTERM);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGQUIT);
    sigaddset(&stops, SIGHUP);
    sigprocmask(SIG_BLOCK, &stops, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sig_fd = signalfd(-1, &stops, SFD_CLOEXEC | SFD_NONBLOCK);

    char default_dir[4096];
    if (!config_dir) {
        const char* home = getenv("HOME");
        snprintf(default_dir, sizeof default_dir, "%s/.local/share/eosio/nodeos/config", home ? home : "");
        config_dir = default_dir;
    }
    if (read_config(config_dir) != 0) return 1;  // the simulator's EXIT_CONFIG_MISSING
    if (producer[0]) mode = "producer";
    if (ledger) ledger_fd = open(ledger, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);

    record("start", "");
    int listen_fd = -1;
    if (http_address && *http_address) {
        listen_fd = listen_on(http_address);
        if (listen_fd < 0) {
            say("error", "http_plugin.cpp:200", "plugin_startup", "unable to listen on %s", http_address);
            return 254;  // nodeos: a port in use
        }
        if (ledger) {
            ledger_rd = open(ledger, O_RDONLY | O_CLOEXEC);
            // The chain's head is near the end: a long ledger is not read from its start.
            off_t size = ledger_rd >= 0 ? lseek(ledger_rd, 0, SEEK_END) : 0;
            if (ledger_rd >= 0) lseek(ledger_rd, size > 65536 ? size - 65536 : 0, SEEK_SET);
            read_ledger();
        }
    }
    for (int i = 0; i < MAX_CONNS; ++i) conns[i].fd = -1;
    say("info", "main.cpp:158", "main", "nodeos started (stub): %s%s%s", producer[0] ? "producing as " : "validating",
        producer, pause_on_startup ? ", paused" : "");

    int64_t now = clock_ns(CLOCK_MONOTONIC);
    int64_t next_log = INT64_MAX;
    paused = pause_on_startup;
    if (producer[0] && !paused) {
        // Restart mode: the first block at once (the stub times the monitor, not nodeos).
        record("producing", "");
        int64_t w = wall_ms();
        own_head_ms = sign(w);
        // The next slot's block, signed at 92 % of it as the simulator does.
        next_block = now + ((own_head_ms - w) + block_ms * 92 / 100) * NS_PER_MS;
    }
    if (log_ms) next_log = now + log_ms * NS_PER_MS;

    struct pollfd fds[2 + MAX_CONNS];
    for (;;) {
        now = clock_ns(CLOCK_MONOTONIC);
        if (now >= next_block) on_block_due();
        if (now >= next_log) {
            next_log += log_ms * NS_PER_MS;
            if (next_log <= now) next_log = now + log_ms * NS_PER_MS;
            int64_t t = own_head_ms ? own_head_ms : (wall_ms() / block_ms) * block_ms;
            char stamp[40];
            format_time(stamp, sizeof stamp, t);
            if (producer[0] && !paused) {
                say("info", "producer_plugin.cpp:2483", "produce_block",
                    "Produced block %08llx... #%lld @ %s signed by %s [trxs: 0, lat: 0 ms, auth: 0 us, exec: 0 us]",
                    (long long)block_num(t), (long long)block_num(t), stamp, producer);
            } else {
                say("info", "producer_plugin.cpp:375", "on_incoming_block",
                    "Received block %08llx... #%lld @ %s signed by bp [trxs: 0, lat: 0 ms, auth: 0 us, exec: 0 us]",
                    (long long)block_num(t), (long long)block_num(t), stamp);
            }
        }
        int nfds = 0;
        fds[nfds++] = (struct pollfd){.fd = sig_fd, .events = POLLIN};
        int open_conns = 0;
        for (int i = 0; i < MAX_CONNS; ++i) open_conns += conns[i].fd >= 0;
        // Full: new connections wait in the listen backlog. -1: ignored by poll().
        fds[nfds++] = (struct pollfd){.fd = open_conns < MAX_CONNS ? listen_fd : -1, .events = POLLIN};
        for (int i = 0; i < MAX_CONNS; ++i)
            if (conns[i].fd >= 0) fds[nfds++] = (struct pollfd){.fd = conns[i].fd, .events = POLLIN};
        int64_t wake = next_block < next_log ? next_block : next_log;
        int timeout = -1;
        if (wake != INT64_MAX) {
            int64_t left = wake - clock_ns(CLOCK_MONOTONIC);
            timeout = left <= 0 ? 0 : (int)((left + NS_PER_MS - 1) / NS_PER_MS);
        }
        if (poll(fds, (nfds_t)nfds, timeout) <= 0) continue;  // the timeout, or EINTR
        if (fds[0].revents) {
            struct signalfd_siginfo info;
            if (read(sig_fd, &info, sizeof info) == (ssize_t)sizeof info) {
                if (info.ssi_signo == SIGHUP) {
                    say("info", "main.cpp:122", "operator()", "Received HUP.  No log config found, setting to default.");
                } else {
                    record("stop", "");
                    say("info", "main.cpp:253", "main", "nodeos successfully exiting");
                    return 0;
                }
            }
        }
        if (listen_fd >= 0 && fds[1].revents) {
            for (int i = 0; i < MAX_CONNS; ++i) {
                if (conns[i].fd >= 0) continue;
                int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd >= 0) conns[i].fd = fd;
                break;
            }
        }
        for (int k = 2; k < nfds; ++k) {
            if (!fds[k].revents) continue;
            struct conn* c = NULL;
            for (int i = 0; i < MAX_CONNS; ++i)
                if (conns[i].fd == fds[k].fd) c = &conns[i];
            if (!c) continue;
            ssize_t n = read(c->fd, c->buf + c->len, REQ_MAX - 1 - c->len);
            if (n <= 0) {
                if (n == 0 || (errno != EAGAIN && errno != EINTR)) conn_close(c);
                continue;
            }
            c->len += (size_t)n;
            serve(c);
        }
    }
}
