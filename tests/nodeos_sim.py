#!/usr/bin/env python3
"""A stand-in for nodeos, for the real-process tests and the demo: a model of how a real
nodeos (Antelope Spring) starts, produces, pauses, answers its HTTP API and stops, with
the shared ledger as the proof of who signed what, and when.

Where a real nodeos objects (a dirty database, a pause that lets one more block through,
a slow start, a stale chain), the simulator objects the same way. It is one file, with
the standard library only, so that it can be copied anywhere as "nodeos".

THE MODEL

Chain.  Every simulator writing to one ledger is a node of one chain. Block slots are
  `--sim-block-ms` long and aligned on the wall clock; a block's timestamp is the end of
  its slot. Each simulator tails the ledger (incrementally) and applies the blocks other
  processes signed ("network blocks"); its head is the newest block applied, whoever
  signed it, and a producer's next block is that head + 1. Before any block the head is
  the genesis block, #1 at 2018-06-08T08:08:08.500 by eosio. The last irreversible block
  is 2 blocks behind the head (Savanna finality), never below #1.

Producing.  A node produces iff a `producer-name` is configured (config.ini or `-p`): the
  producer plugin is built into nodeos and always runs. Like nodeos, a producer is always
  building its next block while production is on: it starts a block as soon as the
  previous one is signed (or at start, or at a resume), for the slot after
  max(now, head time), and signs it at 92 % of that slot (nodeos signs about 460 ms into
  a 500 ms slot); a slot whose signing instant has already passed is skipped. So a pause
  never stops the block under construction: after the 201 exactly one more block is
  signed, within one block interval, and then none. A pause that arrives while production
  is stalled or not enabled lets none through. Two unpaused producers both sign every
  slot (a fork); the ledger reports it as an overlap.

Stale production.  As nodeos, a producer signs only when production is enabled:
  `--enable-stale-production` (`-e`), or it has applied, since it started, a network
  block whose timestamp is at most `--sim-fresh-block-ms` older than the wall clock when
  it applied it. Once enabled it stays enabled. nodeos's own rule is one block interval
  (head timestamp + 500 ms >= now); the simulator allows 1 s by default because it learns
  of blocks by polling a file. On this one-producer chain a node started after the last
  producer stopped never produces without -e, as on a real one-producer testnet.

The data dir and the dirty flag.  DIR/state/shared_memory.bin stands for chainbase's
  state file: its `dirty=` byte models the dirty flag in the database header, and an
  exclusive flock on it models chainbase's file lock. At start, as nodeos: the flag is
  checked first (set: log `database dirty flag set (likely due to unclean shutdown):
  replay required` at error level, ledger `dirty`, exit 2), then the lock is taken
  (taken by another process: exit 254), then the flag is set for as long as the process
  runs. A clean exit (SIGTERM, SIGINT or SIGQUIT) clears it; SIGKILL and crashes leave
  it, so the next start exits 2, and so does a second simulator on a data dir in use.
  Recovery, as nodeos: `--replay-blockchain` or `--hard-replay-blockchain` delete the
  state and rebuild it during `--sim-replay-ms`; `--snapshot FILE` loads FILE (which
  must exist) into an empty state directory during the same delay. --snapshot on a
  state dir that still has its shared_memory.bin fails as nodeos does (exit 255:
  "Snapshot can only be used to initialize an empty database"), unless combined with a
  replay flag, which empties it first. Missing snapshot file: exit 255.

Starting and stopping.  A `start` record is written at process start; the state is
  opened, then replayed if asked, then loaded for `--sim-startup-ms`, during which the
  HTTP port is not bound and nothing is produced; then the port is bound and a `ready`
  record written. A port in use: exit 254 (clean database), as nodeos. SIGTERM, SIGINT
  and SIGQUIT stop it (after `--sim-stop-delay-ms`, producing meanwhile, the worst case
  for fencing): the flag is cleared, `nodeos successfully exiting` logged, exit 0.
  SIGHUP is logged and ignored (nodeos reloads its logging configuration).

THE HTTP API (nodeos's http_plugin, served from the one main loop, as in nodeos where the
  API runs on the main thread: when pause has answered, the flag is set)
  Address: --http-server-address HOST:PORT, else `http-server-address` in config.ini, else
  127.0.0.1:8888; an empty value disables HTTP; port 0 binds a free port (see `ready`).
  The server runs iff eosio::chain_api_plugin or eosio::producer_api_plugin is enabled
  (config.ini `plugin =` lines or --plugin). HTTP/1.0 and 1.1, keep-alive, `Connection:
  close` honoured, Content-Length or chunked bodies, `Expect: 100-continue`. Any method
  reaches a handler (nodeos does not check it), OPTIONS answers 200 `{}`.
  - with eosio::chain_api_plugin: /v1/chain/get_info -> 200, nodeos's get_info_results:
    server_version, chain_id, head_block_num, last_irreversible_block_num,
    last_irreversible_block_id, head_block_id, head_block_time, head_block_producer,
    virtual_block_cpu_limit, virtual_block_net_limit, block_cpu_limit, block_net_limit,
    server_version_string, fork_db_head_block_num, fork_db_head_block_id,
    server_full_version_string, total_cpu_weight, total_net_weight (above 2^32, so
    strings, as fc writes them), earliest_available_block_num,
    last_irreversible_block_time. Times: UTC, milliseconds, no zone
    ("2025-09-04T12:00:00.500"); ids: 64 hex digits, the first 8 the block number.
  - with eosio::producer_api_plugin: /v1/producer/pause and /v1/producer/resume -> 201
    {"result":"ok"}; /v1/producer/paused -> 201, bare true or false.
  - /v1/node/get_supported_apis -> 200 {"apis":[...]}.
  - A body other than empty or `{}` -> 400 "Invalid Request"; a path the enabled plugins
    do not serve, or any query string -> 404 "Not Found"; a target not starting with "/"
    or containing ".." -> 400. A malformed request -> 400 and the connection is closed; a
    head over 16 KiB -> 431, a body over 2 MiB -> 413 (nodeos's max-body-size). Error
    bodies are nodeos's: {"code":404,"message":"Not Found","error":{"code":0,
    "name":"exception","what":"unspecified","details":[{"message":"Unknown Endpoint",
    "file":...,"line_number":...,"method":...}]}}. At most 64 connections at once; more
    wait in the listen backlog.

OPTIONS
nodeos's own (`--x=v` and `--x v` both work; anything unknown is ignored):
  --config-dir DIR          where config.ini is (default ~/.local/share/eosio/nodeos/config)
  -c, --config NAME         the config file's name in it (default config.ini)
  -d, --data-dir DIR        default ~/.local/share/eosio/nodeos/data, as nodeos
  --plugin NAME             enables a plugin, besides config.ini's `plugin =` lines
  -p, --producer-name NAME  besides config.ini's `producer-name =`
  --http-server-address A   wins over config.ini
  -e, --enable-stale-production      also `enable-stale-production = true` in config.ini
  -x, --pause-on-startup    start paused; only resume clears it (also in config.ini)
  --replay-blockchain, --hard-replay-blockchain, --snapshot FILE   see the data dir
Its own:
  --sim-node NAME           node label written to the ledger (default: the host name)
  --sim-ledger PATH         shared ledger file, one JSON object per line
  --sim-block-ms N          block interval (default 500)
  --sim-startup-ms N        loading time before HTTP and production start (default 0)
  --sim-replay-ms N         replay or snapshot loading time (default 300)
  --sim-fresh-block-ms N    how old a network block may be and still enable production
                            (default 1000)
  --sim-stop-delay-ms N     after SIGTERM keep running, and producing if producing, for N
                            ms, then exit 0 (default 0)
  --sim-ignore-sigterm[=MODE]
                            log SIGTERM/SIGINT/SIGQUIT and carry on, so that only SIGKILL
                            ends it; with MODE "producer" or "validator", only in that mode
  --sim-crash-after-ms N    abort (SIGABRT, dirty flag left set) N ms after start
  --sim-control DIR         fault switches, below
  --fault-control DIR       the same (the name the fault tests used)
Command-line errors exit 255 (nodeos's INITIALIZE_FAIL); a missing config.ini exits 1.

FAULT SWITCHES: files in --sim-control DIR, one value each; absent (or empty) = normal.
Read at each request, before each signing and at each poll of the ledger (every half
block interval, 10 to 250 ms), so a test switches them at run time; only the names below
are read, so a test can write a value to ".name" and rename it into place.
  lag-ms      N: network blocks are applied N ms after they were signed, so the head
              lags (a producer's own blocks are its head at once: a node behind the
              chain is not the one extending it)
  stall       any value: the head freezes where it is; nothing is applied and nothing
              signed (a block under construction is abandoned); the API still answers
  api         "hang": every request is read and never answered; "500": every request
              gets 500 Internal Service Error
  pause       "error": pause answers 500 and production goes on; "hang": pause is read
              and never answered, production goes on; "ignore": 201 {"result":"ok"} but
              production goes on, so paused still says false
Read once, at start (they override the flags):
  crash-producer-ms, crash-validator-ms   N: crash N ms after start in that mode
  ignore-sigterm     "all", "producer" or "validator", as --sim-ignore-sigterm
  stop-delay-ms      N, as --sim-stop-delay-ms
  startup-ms         N, as --sim-startup-ms

THE LEDGER: records are {"t", "node", "pid", "event", "mode"}, where t is
time.monotonic_ns() (CLOCK_MONOTONIC, one clock for every process on the machine) and mode
"producer" or "validator". Each record is appended with a single os.write on an O_APPEND
descriptor, so lines from several processes never interleave. Events:
  start      the process started (before the data dir is opened)
  dirty      it refused to start: the dirty flag was set (exit 2)
  replay     a replay or snapshot load began; "how" (replay-blockchain,
             hard-replay-blockchain or snapshot) and "ms"
  ready      the state is loaded; "http" is the bound HOST:PORT, or null without HTTP
  producing  production turned on: written before the first block of each producing
             period (at start, when stale production is enabled by a fresh network block,
             at a resume), at the instant from which it builds blocks
  block      one per signed block, written at the instant it is signed, just before the
             Produced block line: "block" (the chain-wide number), "time" (its
             timestamp, as head_block_time writes it), "producer" (the producer name)
  paused     a pause took effect: written after the last block it let through (at once
             when none was under construction); ends the producing period
  sigterm    SIGTERM, SIGINT or SIGQUIT arrived ("signal" names it)
  stop       written after the last block when exiting cleanly
  crash      written just before aborting
A producer signs only at the instants its block records carry, so the producing period
of a process that was SIGKILLed ends at its last block record.

WHAT A REAL NODEOS DOES THAT THIS MODEL LEAVES OUT
  - Many producers and a schedule: here every slot belongs to whoever produces; a real
    chain has 21 producers in rounds, so other producers' blocks keep arriving (and keep
    a restarted node's stale production enabled) while one producer is away.
  - Forks and their resolution, transactions, the p2p network, syncing at a finite
    speed (the ledger is read at once, however far behind a node is, unless lag-ms).
  - Savanna: finalizer votes, the automatic pause when votes stop
    (production-pause-vote-timeout-ms: `paused` is true only when paused by hand here),
    safety.dat, BLS keys. LIB here is simply head - 2.
  - Signature providers: a producer-name is enough to sign; keys are not checked.
  - The rest of the API (get_block, producer runtime options, snapshots, ...): 404.
    Per-category addresses (http-category-address) and unix sockets.
  - Shutdown: a real nodeos stops producing and answering at once on SIGTERM and spends
    the stop time writing state (seconds to many minutes); here --sim-stop-delay-ms
    keeps producing, the worst case for a fence.
  - Logs: the "Not producing block because ..." lines are repeated every 5 s, not every
    slot. A missing config.ini makes a real nodeos write a default one; here it is an
    error (exit 1). A validator's Received block lines cover blocks signed after it
    started, not the history it syncs.
  - A replay's length does not depend on the chain's length; a snapshot's content is not
    read (any existing file will do).
"""

import argparse
import datetime
import fcntl
import hashlib
import json
import os
import resource
import selectors
import signal
import socket
import sys
import time

# --- facts of nodeos -------------------------------------------------------------------

SERVER_VERSION = "d7f3b2a1"  # nodeos reports a short hash of its version here
VERSION_STRING = "v1.2.2"
FULL_VERSION_STRING = "v1.2.2-17ed17f68b6c33fe3bb9d7b2cfe7d1c4e3b1f2a0"
CHAIN_ID = hashlib.sha256(b"nodeos-monitor simulated chain").hexdigest()
GENESIS_PRODUCER = "eosio"
EPOCH = datetime.datetime(1970, 1, 1)
MILLISECOND = datetime.timedelta(milliseconds=1)
GENESIS_TIME_MS = (datetime.datetime(2018, 6, 8, 8, 8, 8, 500000) - EPOCH) // MILLISECOND
SIGN_FRACTION = 0.92        # a block is signed 460 ms into a 500 ms slot
LIB_DEPTH = 2               # Savanna: the last irreversible block trails the head by ~2
DEFAULT_HTTP_ADDRESS = "127.0.0.1:8888"
CHAIN_API_PLUGIN = "eosio::chain_api_plugin"
PRODUCER_API_PLUGIN = "eosio::producer_api_plugin"
STATE_FILE = "shared_memory.bin"
STATE_HEADER = b"chainbase state (nodeos simulator)\ndirty="
NOTICE_EVERY_NS = 5_000_000_000

# programs/nodeos/main.cpp's exit codes, as the process exit status
EXIT_SUCCESS = 0
EXIT_CONFIG_MISSING = 1
EXIT_DATABASE_DIRTY = 2
EXIT_OTHER_FAIL = 254       # OTHER_FAIL = -2
EXIT_INITIALIZE_FAIL = 255  # INITIALIZE_FAIL = -1

MAX_HEAD_BYTES = 16 * 1024
MAX_BODY_BYTES = 2 * 1024 * 1024
MAX_CONNECTIONS = 64

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)

NS_PER_MS = 1_000_000


def default_nodeos_dir(leaf):
    """nodeos's defaults: fc::app_path() / "eosio/nodeos" / leaf, app_path being
    ~/.local/share on Linux."""
    return os.path.join(os.path.expanduser("~"), ".local", "share", "eosio", "nodeos", leaf)


# --- command line and config.ini -------------------------------------------------------

class NodeosArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        # appbase prints the parse error and nodeos returns INITIALIZE_FAIL.
        sys.stderr.write(f"Error parsing command line: {message}\n")
        sys.exit(EXIT_INITIALIZE_FAIL)


def parse_args(argv):
    """nodeos's flags this model uses; the rest is accepted and ignored, as the monitor
    passes everything through."""
    parser = NodeosArgumentParser(prog="nodeos", allow_abbrev=False, add_help=False)
    parser.add_argument("--config-dir")
    parser.add_argument("-c", "--config", default="config.ini")
    parser.add_argument("-d", "--data-dir")
    parser.add_argument("--plugin", action="append", default=[])
    parser.add_argument("-p", "--producer-name", action="append", default=[])
    parser.add_argument("--http-server-address")
    parser.add_argument("-e", "--enable-stale-production", action="store_true")
    parser.add_argument("-x", "--pause-on-startup", action="store_true")
    parser.add_argument("--replay-blockchain", action="store_true")
    parser.add_argument("--hard-replay-blockchain", action="store_true")
    parser.add_argument("--snapshot")
    parser.add_argument("--sim-node", default=socket.gethostname())
    parser.add_argument("--sim-ledger")
    parser.add_argument("--sim-block-ms", type=int, default=500)
    parser.add_argument("--sim-startup-ms", type=int, default=0)
    parser.add_argument("--sim-replay-ms", type=int, default=300)
    parser.add_argument("--sim-fresh-block-ms", type=int, default=1000)
    parser.add_argument("--sim-stop-delay-ms", type=int, default=0)
    parser.add_argument("--sim-ignore-sigterm", nargs="?", const="all",
                        choices=("all", "producer", "validator"))
    parser.add_argument("--sim-crash-after-ms", type=int)
    parser.add_argument("--sim-control", "--fault-control", dest="sim_control")
    args, _unknown = parser.parse_known_args(argv)
    if args.sim_block_ms <= 0:
        parser.error("--sim-block-ms must be positive")
    for name in ("sim_startup_ms", "sim_replay_ms", "sim_stop_delay_ms", "sim_fresh_block_ms"):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')} must not be negative")
    args.config_dir = args.config_dir or default_nodeos_dir("config")
    args.data_dir = os.path.abspath(args.data_dir or default_nodeos_dir("data"))
    return args


def read_config(path):
    """nodeos's `key = value` config.ini as {key: [values in order]}; raises OSError."""
    entries = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if "=" not in line:
                continue
            key, value = (part.strip() for part in line.split("=", 1))
            entries.setdefault(key, []).append(value)
    return entries


def truthy(value):
    return value.strip().lower() in ("1", "true", "yes", "on")


class Settings:
    """The command line and config.ini merged as nodeos merges them: list options
    (plugin, producer-name) from both, single values from the command line first."""

    def __init__(self, args, config):
        plugins = []
        for entry in config.get("plugin", []) + args.plugin:
            plugins += [p for p in entry.replace(",", " ").split() if p]
        self.plugins = set(plugins)
        self.producers = [p for p in config.get("producer-name", []) + args.producer_name if p]
        if args.http_server_address is not None:
            self.http_address = args.http_server_address
        else:
            self.http_address = config.get("http-server-address", [DEFAULT_HTTP_ADDRESS])[0]
        self.stale_production = args.enable_stale_production or any(
            truthy(v) for v in config.get("enable-stale-production", []))
        self.pause_on_startup = args.pause_on_startup or any(
            truthy(v) for v in config.get("pause-on-startup", []))

    @property
    def producer(self):
        return self.producers[0] if self.producers else None

    @property
    def http_enabled(self):
        return bool(self.http_address) and bool(
            self.plugins & {CHAIN_API_PLUGIN, PRODUCER_API_PLUGIN})


# --- output ----------------------------------------------------------------------------

def format_time_ms(epoch_ms):
    """nodeos's timestamp format: UTC, millisecond precision, no zone suffix."""
    moment = EPOCH + epoch_ms * MILLISECOND
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}"


def wall_ms():
    return time.time_ns() // NS_PER_MS


def log_line(fd, level, source, function, message):
    """Writes one nodeos-style line; a vanished reader must not stop the simulated node."""
    text = f"{level:<5} {format_time_ms(wall_ms())} nodeos    {source:<28} {function:<20} ] " \
           f"{message}\n"
    try:
        os.write(fd, text.encode())
    except (BrokenPipeError, BlockingIOError):
        pass


def log(level, source, function, message):
    log_line(2, level, source, function, message)


class LedgerWriter:
    """The append-only record a test reads to prove that no two nodes produced at once."""

    def __init__(self, path, node, mode):
        self.node = node
        self.mode = mode
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                          0o644) if path else None

    def record(self, event, **extra):
        if self.fd is None:
            return
        entry = {"t": time.monotonic_ns(), "node": self.node, "pid": os.getpid(),
                 "event": event, "mode": self.mode}
        entry.update(extra)
        os.write(self.fd, (json.dumps(entry, separators=(",", ":")) + "\n").encode())


class LedgerTail:
    """Reads the block records appended since the last read; a line without its newline
    is still being written and waits for the next read. The first read takes only the end
    of the ledger: a long ledger's history matters only for its newest blocks."""

    CHUNK = 1 << 16

    def __init__(self, path, history_blocks):
        self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC) if path else None
        self.history_blocks = history_blocks
        self.offset = None  # where the next read starts; None before the first
        self.partial = b""

    def read_history(self):
        """The end of the ledger, backwards from its end until it holds enough blocks."""
        end = os.fstat(self.fd).st_size
        start, data = end, b""
        while start > 0 and data.count(b'"event":"block"') <= self.history_blocks:
            earlier = max(0, start - self.CHUNK)
            data = os.pread(self.fd, start - earlier, earlier) + data
            start = earlier
        if start > 0:  # began inside a line: drop its end
            data = data[data.find(b"\n") + 1:]
        self.offset = end
        return data

    def read_blocks(self):
        """The new "block" records, in ledger order."""
        if self.fd is None:
            return []
        if self.offset is None:
            chunks = [self.read_history()]
        else:
            chunks = []
        while True:
            chunk = os.pread(self.fd, self.CHUNK, self.offset)
            if not chunk:
                break
            self.offset += len(chunk)
            chunks.append(chunk)
        if not any(chunks):
            return []
        lines = (self.partial + b"".join(chunks)).split(b"\n")
        self.partial = lines.pop()
        records = []
        for line in lines:
            if b'"block"' not in line:  # cheap, before parsing
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue  # not ours to judge: the test's Ledger reports broken lines
            if isinstance(record, dict) and record.get("event") == "block":
                records.append(record)
        return records


# --- the chain -------------------------------------------------------------------------

class Block:
    __slots__ = ("num", "time_ms", "producer", "t")

    def __init__(self, num, time_ms, producer, t):
        self.num, self.time_ms, self.producer, self.t = num, time_ms, producer, t

    @property
    def id(self):
        """64 hex digits, the first 8 the block number, as nodeos's block ids; the same in
        every simulator for the same block."""
        digest = hashlib.sha256(f"{self.num}:{self.time_ms}:{self.producer}".encode())
        return f"{self.num:08x}" + digest.hexdigest()[8:]

    @property
    def time(self):
        return format_time_ms(self.time_ms)

    @classmethod
    def from_record(cls, record):
        """The block of a ledger "block" record, or None when it lacks the fields."""
        try:
            moment = datetime.datetime.fromisoformat(record["time"])
            if moment.tzinfo is not None:
                return None
            time_ms = (moment - EPOCH) // MILLISECOND
            return cls(int(record["block"]), time_ms, str(record["producer"]), int(record["t"]))
        except (KeyError, TypeError, ValueError):
            return None


GENESIS = Block(1, GENESIS_TIME_MS, GENESIS_PRODUCER, 0)


class Chain:
    """The head this node has applied and the few blocks behind it that get_info names."""

    def __init__(self):
        self.head = GENESIS
        self.recent = {GENESIS.num: GENESIS}

    def apply(self, block):
        if block.num >= self.head.num:
            self.head = block
        self.recent[block.num] = block
        for num in [n for n in self.recent if n < self.head.num - 32]:
            del self.recent[num]

    def irreversible(self):
        target = max(GENESIS.num, self.head.num - LIB_DEPTH)
        known = [n for n in self.recent if n <= target]
        return self.recent[max(known)] if known else GENESIS

    def info(self):
        head, lib = self.head, self.irreversible()
        return {
            "server_version": SERVER_VERSION,
            "chain_id": CHAIN_ID,
            "head_block_num": head.num,
            "last_irreversible_block_num": lib.num,
            "last_irreversible_block_id": lib.id,
            "head_block_id": head.id,
            "head_block_time": head.time,
            "head_block_producer": head.producer,
            "virtual_block_cpu_limit": 200000000,
            "virtual_block_net_limit": 1048576000,
            "block_cpu_limit": 200000,
            "block_net_limit": 1048576,
            "server_version_string": VERSION_STRING,
            "fork_db_head_block_num": head.num,
            "fork_db_head_block_id": head.id,
            "server_full_version_string": FULL_VERSION_STRING,
            # fc writes integers above 2^32 as strings
            "total_cpu_weight": "383524473934591",
            "total_net_weight": "95881118483648",
            "earliest_available_block_num": GENESIS.num,
            "last_irreversible_block_time": lib.time,
        }


# --- the state database ----------------------------------------------------------------

def database_state(data_dir):
    """"absent", "clean" or "dirty": what the next start will find in DIR/state."""
    try:
        with open(os.path.join(data_dir, "state", STATE_FILE), "rb") as f:
            data = f.read(len(STATE_HEADER) + 1)
    except FileNotFoundError:
        return "absent"
    if len(data) <= len(STATE_HEADER):
        return "absent"  # still being created by the process that holds it
    return "dirty" if data[len(STATE_HEADER):] == b"1" else "clean"


class DatabaseError(Exception):
    def __init__(self, exit_code, message):
        super().__init__(message)
        self.exit_code = exit_code


class StateDatabase:
    """chainbase's state file: its dirty flag and its lock."""

    def __init__(self, data_dir):
        self.state_dir = os.path.join(data_dir, "state")
        self.path = os.path.join(self.state_dir, STATE_FILE)
        self.fd = None

    def clear(self):
        """Deletes the state, as a replay does first (another process may still have the
        old file open and locked: the new one is a new file)."""
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def exists(self):
        return os.path.isfile(self.path)

    def open(self):
        """The dirty flag, then the lock, then the flag set: chainbase's order."""
        if database_state(os.path.dirname(self.state_dir)) == "dirty":
            raise DatabaseError(EXIT_DATABASE_DIRTY,
                                "database dirty flag set (likely due to unclean shutdown): "
                                "replay required")
        os.makedirs(self.state_dir, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DatabaseError(EXIT_OTHER_FAIL,
                                "Could not gain write access to the shared memory file") from None
        self.fd = fd
        self.set_dirty(True)

    def set_dirty(self, dirty):
        os.pwrite(self.fd, STATE_HEADER + (b"1" if dirty else b"0") + b"\n", 0)

    def close_clean(self):
        if self.fd is not None:
            self.set_dirty(False)
            os.close(self.fd)
            self.fd = None


# --- fault switches --------------------------------------------------------------------

class Controls:
    """The files of --sim-control DIR; absent or empty means no fault."""

    RUNTIME_VALUES = {"api": ("hang", "500"), "pause": ("error", "hang", "ignore")}

    def __init__(self, directory):
        self.directory = directory
        self.values = {}
        self.warned = set()

    def read(self, name):
        if not self.directory:
            return None
        try:
            with open(os.path.join(self.directory, name), encoding="utf-8") as f:
                return f.read().strip() or None
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    def warn(self, name, value, expected):
        if (name, value) not in self.warned:
            self.warned.add((name, value))
            log("warn", "nodeos_sim.py", "controls",
                f"ignoring fault switch {name} = {value!r}: expected {expected}")

    def read_ms(self, name):
        value = self.read(name)
        if value is None:
            return None
        try:
            number = int(value)
            if number >= 0:
                return number
        except ValueError:
            pass
        self.warn(name, value, "a number of milliseconds")
        return None

    def refresh(self):
        """Reads the run-time switches."""
        values = {"lag-ms": self.read_ms("lag-ms"), "stall": self.read("stall") is not None}
        for name, allowed in self.RUNTIME_VALUES.items():
            value = self.read(name)
            if value is not None and value not in allowed:
                self.warn(name, value, " or ".join(allowed))
                value = None
            values[name] = value
        self.values = values

    def get(self, name):
        return self.values.get(name)


# --- HTTP ------------------------------------------------------------------------------

REASONS = {100: "Continue", 200: "OK", 201: "Created", 400: "Bad Request", 404: "Not Found",
           413: "Payload Too Large", 431: "Request Header Fields Too Large",
           500: "Internal Server Error", 501: "Not Implemented"}
HANG = object()  # a handler's answer that is never sent


class BadRequest(Exception):
    def __init__(self, status, why):
        super().__init__(why)
        self.status = status


class Request:
    __slots__ = ("method", "target", "version", "headers", "body", "keep_alive")


def parse_chunked(buf, start):
    """(body, end) of a complete chunked body in buf from `start`, or None while
    incomplete."""
    body, pos = bytearray(), start
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            if len(buf) - pos > 1024:
                raise BadRequest(400, "chunk size line too long")
            return None
        size_text = bytes(buf[pos:eol]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise BadRequest(400, "bad chunk size") from None
        if size < 0 or len(body) + size > MAX_BODY_BYTES:
            raise BadRequest(413, "body too large")
        pos = eol + 2
        if size == 0:
            while True:  # trailer fields, up to the empty line
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    return None
                if eol == pos:
                    return bytes(body), eol + 2
                pos = eol + 2
        if len(buf) < pos + size + 2:
            return None
        if buf[pos + size:pos + size + 2] != b"\r\n":
            raise BadRequest(400, "chunk not followed by CRLF")
        body += buf[pos:pos + size]
        pos += size + 2


class RequestParser:
    """HTTP/1.x requests out of a byte stream, one at a time; no I/O."""

    TOKEN = set(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

    def __init__(self):
        self.buf = bytearray()
        self.head = None  # a parsed head waiting for its body
        self.wants_continue = False  # the client waits for "100 Continue" before its body

    def feed(self, data):
        self.buf += data

    def next(self):
        """The next complete request, or None while it is incomplete; raises BadRequest."""
        if self.head is None:
            while self.buf.startswith(b"\r\n"):  # tolerated before a request line
                del self.buf[:2]
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEAD_BYTES:
                    raise BadRequest(431, "request head too large")
                return None
            if end > MAX_HEAD_BYTES:
                raise BadRequest(431, "request head too large")
            self.head = self.parse_head(bytes(self.buf[:end]))
            del self.buf[:end + 4]
        request, length, chunked, expect = self.head
        if chunked:
            parsed = parse_chunked(self.buf, 0)
            if parsed is None:
                self.wants_continue = expect
                return None
            request.body, end = parsed
        else:
            if len(self.buf) < length:
                self.wants_continue = expect
                return None
            request.body, end = bytes(self.buf[:length]), length
        del self.buf[:end]
        self.head = None
        self.wants_continue = False
        return request

    def parse_head(self, head):
        try:
            text = head.decode("ascii")
        except UnicodeDecodeError:
            raise BadRequest(400, "request head is not ASCII") from None
        lines = text.split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[0] or not set(parts[0].encode()) <= self.TOKEN:
            raise BadRequest(400, "bad request line")
        method, target, version = parts
        if version not in ("HTTP/1.1", "HTTP/1.0") or not target:
            raise BadRequest(400, "bad request line")
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or not set(name.encode()) <= self.TOKEN:
                raise BadRequest(400, "bad header line")
            name, value = name.lower(), value.strip()
            if name in headers and name in ("content-length", "transfer-encoding", "host"):
                if headers[name] != value:
                    raise BadRequest(400, f"conflicting {name} headers")
            headers[name] = value
        chunked, length = False, 0
        if "transfer-encoding" in headers:
            if "content-length" in headers:
                raise BadRequest(400, "both Content-Length and Transfer-Encoding")
            if headers["transfer-encoding"].lower() != "chunked":
                raise BadRequest(501, "unsupported transfer coding")
            chunked = True
        elif "content-length" in headers:
            value = headers["content-length"]
            if not value.isdigit():
                raise BadRequest(400, "bad Content-Length")
            length = int(value)
            if length > MAX_BODY_BYTES:
                raise BadRequest(413, "body too large")
        tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
        request = Request()
        request.method, request.target, request.version = method, target, version
        request.headers, request.body = headers, b""
        request.keep_alive = "close" not in tokens if version == "HTTP/1.1" \
            else "keep-alive" in tokens
        expect = headers.get("expect", "").lower() == "100-continue"
        return request, length, chunked, expect


def http_response(status, body, version="HTTP/1.1", keep_alive=True):
    head = [f"{version} {status} {REASONS.get(status, 'Unknown')}",
            f"Server: nodeos/{VERSION_STRING}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            f"Connection: {'keep-alive' if keep_alive else 'close'}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def error_results(code, message, detail, name="exception", what="unspecified", error_code=0,
                  where=("beast_http_session.hpp", 186, "handle_request")):
    """nodeos's error_results, with one detail (verbose-http-errors off)."""
    details = [] if detail is None else [
        {"message": detail, "file": where[0], "line_number": where[1], "method": where[2]}]
    return code, {"code": code, "message": message,
                  "error": {"code": error_code, "name": name, "what": what, "details": details}}


def not_found():
    return error_results(404, "Not Found", "Unknown Endpoint")


def is_empty_content(body):
    """http_plugin's rule for calls without parameters: empty, or `{}` with blanks."""
    text = body.strip(b" ")
    if not text:
        return True
    return len(text) > 1 and text[:1] == b"{" and text[-1:] == b"}" and \
        not text[1:-1].strip(b" \t")


class Connection:
    """One HTTP client on the main loop: reads requests, answers them in order."""

    def __init__(self, server, sock):
        self.server = server
        self.sock = sock
        self.parser = RequestParser()
        self.out = bytearray()
        self.closing = False       # close once `out` is sent
        self.shut = False          # our side is closed; reading on until the client closes
        self.peer_closed = False   # the client sent its last byte; answers still go out
        self.hung = False          # a request is never going to be answered
        self.continue_sent = False
        self.events = selectors.EVENT_READ

    def on_event(self, mask):
        if mask & selectors.EVENT_READ:
            self.on_readable()
        if self.sock is not None and mask & selectors.EVENT_WRITE:
            self.flush()

    def on_readable(self):
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return self.close()
        if not data:
            self.peer_closed = True
            return self.flush()
        if self.hung or self.closing:
            return  # read and dropped: nothing more is answered on this connection
        self.parser.feed(data)
        while not (self.hung or self.closing):
            try:
                request = self.parser.next()
            except BadRequest as e:
                status, body = error_results(e.status, REASONS.get(e.status, "Bad Request"),
                                             str(e))
                self.send(http_response(status, json.dumps(body, separators=(",", ":")).encode(),
                                        keep_alive=False))
                self.closing = True
                break
            if request is None:
                if self.parser.wants_continue and not self.continue_sent:
                    self.continue_sent = True
                    self.send(b"HTTP/1.1 100 Continue\r\n\r\n")
                break
            self.continue_sent = False
            try:
                answer = self.server.handle(request)
            except Exception as e:  # nodeos answers 500 and serves on; so does the model
                log("error", "http_plugin.cpp:588", "handle_exception",
                    f"STD Exception encountered while processing {request.target}: {e!r}")
                code, body = error_results(500, "Internal Service Error", repr(e))
                answer = code, json.dumps(body, separators=(",", ":")).encode()
            if answer is HANG:
                self.hung = True
                break
            status, body = answer
            response = http_response(status, body, request.version, request.keep_alive)
            if request.method == "HEAD":  # the head only, with the body's length
                response = response[:len(response) - len(body)]
            self.send(response)
            if not request.keep_alive:
                self.closing = True
        if self.sock is not None:
            self.flush()

    def send(self, data):
        self.out += data

    def flush(self):
        if self.out:
            try:
                sent = self.sock.send(self.out)
                del self.out[:sent]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                return self.close()
        if not self.out and self.peer_closed:
            return self.close()
        if not self.out and self.closing and not self.shut:
            # Closing with unread input would reset the connection and could destroy the
            # answer in flight: close our side, read on until the client closes.
            self.shut = True
            try:
                self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                return self.close()
        events = (0 if self.peer_closed else selectors.EVENT_READ) | \
            (selectors.EVENT_WRITE if self.out else 0)
        if events != self.events:
            self.events = events
            self.server.selector.modify(self.sock, events, self.on_event)

    def close(self):
        if self.sock is None:
            return
        self.server.forget(self)
        try:
            self.sock.close()
        except OSError:
            pass
        self.sock = None


def parse_address(address):
    """(host, port) of nodeos's HOST:PORT, [IPv6]:PORT or :PORT (every interface)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"invalid http-server-address {address!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or None, int(port)


class HttpServer:
    """nodeos's http_plugin on the simulator's loop."""

    def __init__(self, selector, handle):
        self.selector = selector
        self.handle = handle
        self.listener = None
        self.connections = set()
        self.accepting = False

    def listen(self, address):
        """Binds and listens; returns the bound "HOST:PORT"; raises OSError or ValueError."""
        host, port = parse_address(address)
        error = None
        for family, kind, proto, _name, sockaddr in socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE):
            sock = socket.socket(family, kind, proto)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(sockaddr)
                sock.listen(128)
            except OSError as e:
                sock.close()
                error = e
                continue
            sock.setblocking(False)
            self.listener = sock
            self.resume_accepting()
            bound = sock.getsockname()
            shown = f"[{bound[0]}]" if family == socket.AF_INET6 else bound[0]
            return f"{shown}:{bound[1]}"
        raise error or OSError(f"cannot listen on {address}")

    def resume_accepting(self):
        if not self.accepting and self.listener is not None:
            self.selector.register(self.listener, selectors.EVENT_READ, self.on_accept)
            self.accepting = True

    def on_accept(self, _mask):
        while len(self.connections) < MAX_CONNECTIONS:
            try:
                sock, _peer = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # out of descriptors, for one: try again later
                log("warn", "beast_http_listener.hpp:120", "on_accept", f"accept: {e}")
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = Connection(self, sock)
            self.connections.add(connection)
            self.selector.register(sock, selectors.EVENT_READ, connection.on_event)
        # full: leave the rest in the listen backlog until a connection closes
        self.selector.unregister(self.listener)
        self.accepting = False

    def forget(self, connection):
        self.selector.unregister(connection.sock)
        self.connections.discard(connection)
        self.resume_accepting()


# --- the node --------------------------------------------------------------------------

class Simulator:
    """One nodeos process: the start-up phases, the chain, production and the API, all on
    one selectors loop. A signal only writes a byte to a pipe that the loop watches."""

    HISTORY_BLOCKS = 64  # read at start: more than the blocks behind the head get_info names

    def __init__(self, args, settings):
        self.args = args
        self.settings = settings
        self.producer = settings.producer
        self.mode = "producer" if self.producer else "validator"
        self.controls = Controls(args.sim_control)
        self.ledger = LedgerWriter(args.sim_ledger, args.sim_node, self.mode)
        self.tail = LedgerTail(args.sim_ledger, self.HISTORY_BLOCKS)
        self.database = StateDatabase(args.data_dir)
        self.chain = Chain()
        self.interval_ns = args.sim_block_ms * NS_PER_MS
        self.poll_ns = min(max(self.interval_ns // 2, 10 * NS_PER_MS), 250 * NS_PER_MS)
        self.started_ns = time.monotonic_ns()

        # Start-time faults: a control file overrides the flag.
        crash_ms = self.controls.read_ms(f"crash-{self.mode}-ms")
        if crash_ms is None:
            crash_ms = args.sim_crash_after_ms
        self.crash_at = None if crash_ms is None else self.started_ns + crash_ms * NS_PER_MS
        ignore = self.controls.read("ignore-sigterm")
        if ignore not in (None, "all", "producer", "validator"):
            self.controls.warn("ignore-sigterm", ignore, "all, producer or validator")
            ignore = None
        ignore = ignore or args.sim_ignore_sigterm
        self.ignore_stop_signals = ignore in ("all", self.mode)
        delay = self.controls.read_ms("stop-delay-ms")
        self.stop_delay_ns = (args.sim_stop_delay_ms if delay is None else delay) * NS_PER_MS
        startup = self.controls.read_ms("startup-ms")
        self.startup_ns = (args.sim_startup_ms if startup is None else startup) * NS_PER_MS

        self.phase = "opening"     # then replaying, loading, running
        self.phase_end = None      # when replaying or loading ends
        self.stop_at = None        # set by a stop signal: when the stop delay ends

        # Production, as producer_plugin keeps it.
        self.paused = settings.pause_on_startup
        self.enabled = settings.stale_production
        self.building = None       # (block time ms, monotonic signing instant) under way
        self.period_open = False   # a "producing" record not yet ended
        self.stalled = False
        self.pending = []          # network blocks read but not applied yet (lag)
        self.last_poll = None
        self.notice = (None, 0)    # the last "Not producing" reason logged, and when

        self.selector = selectors.DefaultSelector()
        self.http = HttpServer(self.selector, self.handle_request)
        self.wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        for sig in (*STOP_SIGNALS, signal.SIGHUP):
            signal.signal(sig, lambda *_: None)
        self.selector.register(self.wake_r, selectors.EVENT_READ, self.on_wake)

    # --- start-up ----------------------------------------------------------------------

    def open_state(self):
        """chain_plugin's initialization: replay or snapshot options, then the database.
        Returns an exit status when the node cannot start, else None."""
        args = self.args
        how = None
        if args.hard_replay_blockchain:
            log("info", "chain_plugin.cpp:490", "do_hard_replay",
                "Hard replay requested: deleting state database")
            self.database.clear()
            how = "hard-replay-blockchain"
        elif args.replay_blockchain:
            log("info", "chain_plugin.cpp:790", "plugin_initialize",
                "Replay requested: deleting state database")
            self.database.clear()
            how = "replay-blockchain"
        if args.snapshot is not None:
            if not os.path.exists(args.snapshot):
                return self.fail_initialize(
                    f"Cannot load snapshot, {args.snapshot} does not exist")
            if self.database.exists():
                return self.fail_initialize(
                    "Snapshot can only be used to initialize an empty database, remove "
                    f"directory: {self.database.state_dir}")
            how = how or "snapshot"
        try:
            self.database.open()
        except DatabaseError as e:
            log("error", "main.cpp:222", "main", str(e))
            if e.exit_code == EXIT_DATABASE_DIRTY:
                self.ledger.record("dirty")
            return e.exit_code
        if how is not None:
            self.ledger.record("replay", how=how, ms=args.sim_replay_ms)
            message = f"Starting initialization from snapshot {args.snapshot}" \
                if how == "snapshot" else "Replaying blocks from the block log"
            log("info", "controller.cpp:1650", "replay", message)
            self.enter_phase("replaying", args.sim_replay_ms * NS_PER_MS)
        else:
            self.enter_phase("loading", self.startup_ns)
        return None

    def fail_initialize(self, message):
        log("error", "chain_plugin.cpp:1126", "plugin_initialize",
            f"3110006 plugin_config_exception: Incorrect plugin configuration\n{message}")
        sys.stderr.write("Failed to initialize\n")
        return EXIT_INITIALIZE_FAIL

    def enter_phase(self, phase, duration_ns):
        self.phase = phase
        self.phase_end = time.monotonic_ns() + duration_ns

    def advance_start_up(self, now):
        """Returns an exit status when the node cannot go on, else None."""
        if self.phase == "replaying" and now >= self.phase_end:
            log("info", "controller.cpp:1700", "replay",
                f"replay finished in {self.args.sim_replay_ms} ms")
            self.enter_phase("loading", self.startup_ns)
        if self.phase == "loading" and now >= self.phase_end:
            return self.go_live()
        return None

    def go_live(self):
        bound = None
        if self.settings.http_enabled:
            try:
                bound = self.http.listen(self.settings.http_address)
            except (OSError, ValueError) as e:
                log("error", "http_plugin.cpp:251", "create_listener",
                    f"http service failed to start for {self.settings.http_address}: {e}")
                log("error", "http_plugin.cpp:501", "plugin_startup",
                    "http_plugin startup fails, shutting down")
                self.database.close_clean()
                return EXIT_OTHER_FAIL
            log("info", "listener.hpp:176", "create_listener",
                f"start listening on {bound} for http requests (boost::beast)")
        self.phase = "running"
        self.ledger.record("ready", http=bound)
        if self.producer:
            log("info", "producer_plugin.cpp:1433", "plugin_startup",
                f"Launching block production for {len(self.settings.producers)} producers at "
                f"{format_time_ms(wall_ms())}.")
            if self.paused:
                log("info", "producer_plugin.cpp:1445", "plugin_startup",
                    "Producer paused on startup")
        else:
            log("info", "producer_plugin.cpp:1450", "plugin_startup",
                "no producer-name configured: validating only")
        self.poll(time.monotonic_ns(), force=True)
        return None

    # --- the loop ----------------------------------------------------------------------

    def run(self):
        config_path = os.path.join(self.args.config_dir, self.args.config)
        self.ledger.record("start")
        log("info", "main.cpp:158", "main", "nodeos started")
        log("info", "main.cpp:203", "main",
            f"nodeos version {VERSION_STRING} {FULL_VERSION_STRING} (simulated)")
        log("info", "main.cpp:206", "main", f"nodeos using configuration file {config_path}")
        log("info", "main.cpp:207", "main", f"nodeos data directory is {self.args.data_dir}")
        code = self.open_state()
        if code is not None:
            return code
        while True:
            now = time.monotonic_ns()
            if self.crash_at is not None and now >= self.crash_at:
                self.crash()
            if self.stop_at is not None and now >= self.stop_at:
                return self.stop()
            if self.phase != "running":
                code = self.advance_start_up(now)
                if code is not None:
                    return code
            if self.phase == "running":
                if self.last_poll is None or now - self.last_poll >= self.poll_ns:
                    self.poll(now)
                self.step_production(now)
            for key, mask in self.selector.select(self.wait_seconds()):
                key.data(mask)

    def wait_seconds(self):
        now = time.monotonic_ns()
        wakes = [self.crash_at, self.stop_at]
        if self.phase == "running":
            wakes.append(self.last_poll + self.poll_ns)
            if self.building is not None:
                wakes.append(self.building[1])
        else:
            wakes.append(self.phase_end)
        wake = min(t for t in wakes if t is not None)
        return max(0, wake - now) / 1e9

    def on_wake(self, _mask):
        try:
            signums = os.read(self.wake_r, 64)
        except BlockingIOError:
            return
        for signum in signums:
            if signum == signal.SIGHUP:
                log("info", "main.cpp:122", "operator()",
                    "Received HUP.  No log config found, setting to default.")
            elif signum in STOP_SIGNALS:
                self.on_stop_signal(signal.Signals(signum).name)

    def on_stop_signal(self, name):
        self.ledger.record("sigterm", signal=name)
        if self.ignore_stop_signals:
            log("warn", "main.cpp:160", "main", f"received {name}, ignoring it")
        elif self.stop_at is None:
            log("info", "main.cpp:160", "main", f"received {name}, shutting down")
            self.stop_at = time.monotonic_ns() + self.stop_delay_ns

    def stop(self):
        self.database.close_clean()
        log("info", "main.cpp:253", "main", "nodeos successfully exiting")
        self.ledger.record("stop")
        return EXIT_SUCCESS

    def crash(self):
        self.ledger.record("crash")
        log("error", "main.cpp:180", "main", "simulated crash: aborting")
        os.abort()

    # --- the chain ---------------------------------------------------------------------

    def poll(self, now, force=False):
        """Reads the fault switches and the ledger; applies the network blocks that are old
        enough (lag-ms) unless the head is stalled."""
        if not force and self.last_poll is not None and now - self.last_poll < self.poll_ns:
            return
        self.last_poll = now
        self.controls.refresh()
        stall = self.controls.get("stall")
        if stall and not self.stalled:
            log("warn", "nodeos_sim.py", "poll", f"fault: head stalled at #{self.chain.head.num}")
        self.stalled = stall
        me = os.getpid()
        for record in self.tail.read_blocks():
            if record.get("pid") != me:
                block = Block.from_record(record)
                if block is not None:
                    self.pending.append(block)
        if self.stalled:
            return
        lag_ns = (self.controls.get("lag-ms") or 0) * NS_PER_MS
        applied = 0
        for block in self.pending:
            if lag_ns and now - block.t < lag_ns:
                break
            self.apply_network_block(block)
            applied += 1
        del self.pending[:applied]

    def apply_network_block(self, block):
        self.chain.apply(block)
        if not self.enabled and block.time_ms >= wall_ms() - self.args.sim_fresh_block_ms:
            self.enabled = True  # producer_plugin: a fresh block proves the chain is live
        if block.t >= self.started_ns:
            log_line(1, "info", "producer_plugin.cpp:375", "on_incoming_block",
                     f"Received block {block.id[:16]}... #{block.num} @ {block.time} signed by "
                     f"{block.producer} [trxs: 0, lat: 0 ms, auth: 0 us, exec: 0 us]")

    # --- production --------------------------------------------------------------------

    def not_producing_because(self):
        if not self.enabled:
            return "stale production not enabled"
        if self.paused:
            return "production is explicitly paused"
        if self.stalled:
            return "the head is stalled"
        return None

    def step_production(self, now):
        if not self.producer:
            return
        if self.building is not None and now >= self.building[1]:
            block_time_ms, _ = self.building
            self.building = None
            if not self.stalled:
                self.poll(now, force=True)  # the newest head first: the number follows it
            if not self.stalled:
                self.sign(block_time_ms)
        if self.building is not None:
            return
        reason = self.not_producing_because()
        if reason is None:
            if not self.period_open:
                self.period_open = True
                self.ledger.record("producing")
            self.start_block(now)
            return
        if self.period_open and self.paused:
            self.period_open = False
            self.ledger.record("paused")
        self.log_not_producing(reason, now)

    def start_block(self, now):
        """The block for the slot after max(now, head time), signed at 92 % of its slot;
        a slot whose signing instant has passed is skipped."""
        wall_now_ns = time.time_ns()
        interval_ms = self.args.sim_block_ms
        base_ms = max(wall_now_ns // NS_PER_MS, self.chain.head.time_ms)
        block_time_ms = (base_ms // interval_ms + 1) * interval_ms
        unsigned_ns = int(self.interval_ns * (1 - SIGN_FRACTION))
        sign_wall_ns = block_time_ms * NS_PER_MS - unsigned_ns
        if sign_wall_ns <= wall_now_ns:
            block_time_ms += interval_ms
            sign_wall_ns += self.interval_ns
        self.building = (block_time_ms, now + (sign_wall_ns - wall_now_ns))

    def sign(self, block_time_ms):
        block = Block(self.chain.head.num + 1, block_time_ms, self.producer, time.monotonic_ns())
        self.chain.apply(block)
        self.ledger.record("block", block=block.num, time=block.time, producer=block.producer)
        log_line(1, "info", "producer_plugin.cpp:2483", "produce_block",
                 f"Produced block {block.id[:16]}... #{block.num} @ {block.time} signed by "
                 f"{block.producer} [trxs: 0, lat: 0 ms, auth: 0 us, exec: 0 us]")

    def log_not_producing(self, reason, now):
        last_reason, last_at = self.notice
        if reason == last_reason and now - last_at < NOTICE_EVERY_NS:
            return
        self.notice = (reason, now)
        level = "warn" if reason == "production is explicitly paused" else "error"
        block_time = format_time_ms((wall_ms() // self.args.sim_block_ms + 1)
                                    * self.args.sim_block_ms)
        log(level, "producer_plugin.cpp:2099", "determine_pending_",
            f"Not producing block because {reason}, block {block_time}")

    # --- the API -----------------------------------------------------------------------

    def routes(self):
        routes = {}
        if CHAIN_API_PLUGIN in self.settings.plugins:
            routes["/v1/chain/get_info"] = self.api_get_info
        if PRODUCER_API_PLUGIN in self.settings.plugins:
            routes["/v1/producer/pause"] = self.api_pause
            routes["/v1/producer/resume"] = self.api_resume
            routes["/v1/producer/paused"] = self.api_paused
        return routes

    def handle_request(self, request):
        """(status, body bytes) or HANG."""
        now = time.monotonic_ns()
        self.poll(now, force=True)
        fault = self.controls.get("api")
        if fault == "hang":
            return HANG
        if fault == "500":
            status, body = error_results(500, "Internal Service Error",
                                         "simulated fault: api = 500")
            return status, self.json(body)
        if request.method == "OPTIONS":
            return 200, b"{}"
        target = request.target
        if not target.startswith("/") or ".." in target:
            status, body = error_results(400, "Illegal request-target", None, name="", what="")
            return status, self.json(body)
        routes = self.routes()
        if target == "/v1/node/get_supported_apis":
            return 200, self.json({"apis": sorted(routes)})
        handler = routes.get(target)  # the whole target: a query string finds nothing
        if handler is None:
            status, body = not_found()
            return status, self.json(body)
        if not is_empty_content(request.body):
            status, body = error_results(
                400, "Invalid Request", "no parameter should be given",
                name="invalid_http_request", what="invalid http request", error_code=3200006,
                where=("http_plugin.hpp", 268, "parse_params"))
            return status, self.json(body)
        answer = handler()
        if answer is HANG:
            return HANG
        status, value = answer
        return status, self.json(value)

    @staticmethod
    def json(value):
        return json.dumps(value, separators=(",", ":")).encode()

    def api_get_info(self):
        return 200, self.chain.info()

    def api_pause(self):
        fault = self.controls.get("pause")
        if fault == "hang":
            return HANG
        if fault == "error":
            return error_results(500, "Internal Service Error", "simulated fault: pause = error",
                                 where=("producer_api_plugin.cpp", 99, "operator()"))
        if fault != "ignore" and not self.paused:
            self.paused = True
            log("info", "producer_plugin.cpp:1736", "pause", "Producer paused.")
            # The block under construction, if any, is still signed at its instant; the
            # "paused" record follows it (step_production).
            self.step_production(time.monotonic_ns())
        return 201, {"result": "ok"}

    def api_resume(self):
        if self.paused:
            self.paused = False
            log("info", "producer_plugin.cpp:1224", "resume",
                "Producer resumed. Scheduling production.")
            self.notice = (None, 0)
            self.step_production(time.monotonic_ns())
        return 201, {"result": "ok"}

    def api_paused(self):
        return 201, self.paused


def main(argv):
    args = parse_args(argv)
    # A crash, or a SIGSEGV sent by a test, must not leave core files behind.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    config_path = os.path.join(args.config_dir, args.config)
    try:
        config = read_config(config_path)
    except OSError as e:
        log("error", "main.cpp:140", "main", f"cannot read {config_path}: {e.strerror}")
        return EXIT_CONFIG_MISSING
    return Simulator(args, Settings(args, config)).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
