#!/usr/bin/env python3
"""A stand-in for nodeos, for the real-process tests and the demo.

It takes nodeos's arguments (`--config-dir` required, `--data-dir` and anything unknown
ignored) and reads DIR/config.ini to decide whether it produces: it does iff the file has a
`producer-name` and `plugin = eosio::producer_plugin`. Every block interval it prints a
nodeos-like `Produced block` (producer) or `Received block` (validator) line on stdout.

Its own options (`--x=v` and `--x v` both work):
  --sim-node NAME           node label written to the ledger (default: the host name)
  --sim-ledger PATH         shared ledger file, one JSON object per line
  --sim-block-ms N          block interval (default 500)
  --sim-stop-delay-ms N     after SIGTERM keep running, and producing if a producer (the worst
                            case for fencing), for N ms, then exit 0 (default 0)
  --sim-ignore-sigterm[=MODE]
                            log SIGTERM and carry on, so that only SIGKILL ends it; with MODE
                            "producer" or "validator", only when running in that mode
  --sim-crash-after-ms N    abort (SIGABRT) N ms after start

Ledger records are {"t", "node", "pid", "event", "mode"}, where t is time.monotonic_ns()
(CLOCK_MONOTONIC, one clock for every process on the machine). Each record is appended with
a single os.write on an O_APPEND descriptor, so lines from several processes never interleave.
Events:
  start      the process is up (mode "producer" or "validator")
  producing  written before the first block is signed
  block      one per produced block, written at the instant it is signed, just before the
             Produced block line; validators write none
  sigterm    SIGTERM arrived (lets a test wait for it instead of sleeping)
  stop       written after the last block when exiting on SIGTERM
  crash      written just before aborting
A producer signs blocks only at the instants its block records carry, so the producing
period of a process that was SIGKILLed ends at its last block record.
"""

import argparse
import datetime
import json
import os
import resource
import select
import signal
import socket
import sys
import time

PRODUCER_PLUGIN = "eosio::producer_plugin"


def parse_args(argv):
    """nodeos's own flags are accepted and ignored, as the monitor passes them through."""
    parser = argparse.ArgumentParser(prog="nodeos", allow_abbrev=False, add_help=False)
    parser.add_argument("--config-dir", required=True)
    parser.add_argument("--data-dir")
    parser.add_argument("--sim-node", default=socket.gethostname())
    parser.add_argument("--sim-ledger")
    parser.add_argument("--sim-block-ms", type=int, default=500)
    parser.add_argument("--sim-stop-delay-ms", type=int, default=0)
    parser.add_argument("--sim-ignore-sigterm", nargs="?", const="all",
                        choices=("all", "producer", "validator"))
    parser.add_argument("--sim-crash-after-ms", type=int)
    args, _unknown = parser.parse_known_args(argv)
    if args.sim_block_ms <= 0:
        parser.error("--sim-block-ms must be positive")
    return args


def read_config(path):
    """Returns (producer_name or None, plugins) from nodeos's `key = value` config.ini."""
    producer, plugins = None, []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if "=" not in line:
                continue
            key, value = (part.strip() for part in line.split("=", 1))
            if key == "producer-name" and value:
                producer = value
            elif key == "plugin":
                plugins.append(value)
    return producer, plugins


def wall_clock():
    """nodeos's timestamp format: UTC, millisecond precision, no zone suffix."""
    moment = datetime.datetime.now(datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def log_line(fd, level, source, function, message):
    """Writes one nodeos-style line; a vanished reader must not stop the simulated node."""
    text = f"{level:<5} {wall_clock()} nodeos    {source:<28} {function:<20} ] {message}\n"
    try:
        os.write(fd, text.encode())
    except (BrokenPipeError, BlockingIOError):
        pass


class Ledger:
    """The append-only record a test reads to prove that no two nodes produced at once."""

    def __init__(self, path, node):
        self.node = node
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) if path else None

    def record(self, event, mode, **extra):
        if self.fd is None:
            return
        entry = {"t": time.monotonic_ns(), "node": self.node, "pid": os.getpid(),
                 "event": event, "mode": mode}
        entry.update(extra)
        os.write(self.fd, (json.dumps(entry, separators=(",", ":")) + "\n").encode())


class Simulator:
    def __init__(self, args, producer):
        self.args = args
        self.producer = producer
        self.mode = "producer" if producer else "validator"
        self.ignore_sigterm = args.sim_ignore_sigterm in ("all", self.mode)
        self.ledger = Ledger(args.sim_ledger, args.sim_node)
        self.interval_ns = args.sim_block_ms * 1_000_000
        self.block_num = 0
        self.stop_at_ns = None  # set by SIGTERM: when the stop delay ends
        # SIGTERM only writes a byte to this pipe; the loop wakes on it at once.
        self.wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: None)

    def run(self):
        now = time.monotonic_ns()
        crash_at = None
        if self.args.sim_crash_after_ms is not None:
            crash_at = now + self.args.sim_crash_after_ms * 1_000_000
        self.ledger.record("start", self.mode)
        if self.producer:
            self.ledger.record("producing", self.mode)
        next_block = time.monotonic_ns()
        while True:
            now = time.monotonic_ns()
            if crash_at is not None and now >= crash_at:
                self.crash()
            if self.stop_at_ns is not None and now >= self.stop_at_ns:
                return self.stop()
            if now >= next_block:
                self.block()
                next_block += self.interval_ns
                if next_block <= now:  # fell behind (the machine was busy): skip, never burst
                    next_block = now + self.interval_ns
                continue
            wake = min(t for t in (next_block, crash_at, self.stop_at_ns) if t is not None)
            ready, _, _ = select.select([self.wake_r], [], [], max(0, wake - now) / 1e9)
            if ready:
                self.on_signals(os.read(self.wake_r, 64))

    def on_signals(self, signums):
        for signum in signums:
            if signum not in (signal.SIGTERM, signal.SIGINT):
                continue
            name = signal.Signals(signum).name
            self.ledger.record("sigterm", self.mode, signal=name)
            if self.ignore_sigterm:
                log_line(2, "warn", "main.cpp:160", "main", f"received {name}, ignoring it")
            elif self.stop_at_ns is None:
                log_line(2, "info", "main.cpp:160", "main", f"received {name}, shutting down")
                self.stop_at_ns = time.monotonic_ns() + self.args.sim_stop_delay_ms * 1_000_000

    def block(self):
        self.block_num += 1
        # nodeos block ids start with the block number; the rest is a hash.
        block = (f"{self.block_num:08x}{os.urandom(4).hex()}... #{self.block_num} "
                 f"@ {wall_clock()}")
        stats = "[trxs: 0, lat: 0 ms, auth: 0 us, exec: 0 us]"
        if self.producer:
            self.ledger.record("block", self.mode, block=self.block_num)
            log_line(1, "info", "producer_plugin.cpp:2483", "produce_block",
                     f"Produced block {block} signed by {self.producer} {stats}")
        else:
            log_line(1, "info", "producer_plugin.cpp:375", "on_incoming_block",
                     f"Received block {block} signed by othernode {stats}")

    def stop(self):
        log_line(2, "info", "main.cpp:170", "main", "nodeos successfully exiting")
        self.ledger.record("stop", self.mode)
        return 0

    def crash(self):
        self.ledger.record("crash", self.mode)
        log_line(2, "error", "main.cpp:180", "main", "simulated crash: aborting")
        os.abort()


def producer_of(config_dir):
    """The producer's name when the dir's config.ini enables the producer plugin, else
    None (a validator); raises OSError when it cannot be read."""
    producer, plugins = read_config(os.path.join(config_dir, "config.ini"))
    return producer if PRODUCER_PLUGIN in plugins else None


def main(argv):
    args = parse_args(argv)
    # A crash, or a SIGSEGV sent by a test, must not leave core files behind.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    config_path = os.path.join(args.config_dir, "config.ini")
    try:
        producer = producer_of(args.config_dir)
    except OSError as e:
        log_line(2, "error", "main.cpp:140", "main", f"cannot read {config_path}: {e.strerror}")
        return 1
    log_line(2, "info", "main.cpp:110", "main", "nodeos version v2.0.13 (simulated)")
    log_line(2, "info", "main.cpp:111", "main", f"nodeos using configuration file {config_path}")
    if producer:
        log_line(2, "info", "producer_plugin.cpp:945", "plugin_startup",
                 f"Launching block production for producer {producer}")
    else:
        log_line(2, "info", "producer_plugin.cpp:950", "plugin_startup",
                 "producer plugin not enabled: validating only")
    return Simulator(args, producer).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
