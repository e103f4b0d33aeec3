#!/usr/bin/env python3
"""The loopback proxy the fault scenarios use: each fault does what it says, against a
local echo server; `cut_watch`, which must tell an etcd watch from other requests, against
a real etcd. Every wait is bounded by a socket timeout or a deadline."""

import base64
import http.client
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

from harness import Etcd  # noqa: E402
from proxy import Proxy, is_watch  # noqa: E402


class Echo:
    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn):
        with conn:
            try:
                while True:
                    data = conn.recv(4096)
                    if not data:
                        return
                    conn.sendall(data)
            except OSError:
                return

    def close(self):
        self.sock.close()


class ProxyTest(unittest.TestCase):
    def setUp(self):
        self.echo = Echo()
        self.proxy = Proxy(self.echo.port, name="test")
        self.addCleanup(self.echo.close)
        self.addCleanup(self.proxy.close)

    def connect(self, timeout=1.0):
        conn = socket.create_connection(("127.0.0.1", self.proxy.port), timeout=timeout)
        self.addCleanup(conn.close)
        return conn

    def round_trip(self, conn, data=b"ping"):
        conn.sendall(data)
        return conn.recv(100)

    def test_pass_and_delay(self):
        self.assertEqual(self.round_trip(self.connect()), b"ping")
        self.proxy.set("pass", delay=0.2)
        started = time.monotonic()
        self.assertEqual(self.round_trip(self.connect()), b"ping")
        self.assertGreaterEqual(time.monotonic() - started, 0.4, "0.2 s each way")

    def test_blackhole_holds_then_delivers(self):
        conn = self.connect(0.5)
        self.assertEqual(self.round_trip(conn), b"ping")
        self.proxy.set("blackhole")
        with self.assertRaises(socket.timeout):
            self.round_trip(conn, b"held")
        with self.assertRaises(socket.timeout):
            self.round_trip(self.connect(0.5))  # accepted, never answered
        self.proxy.heal()
        conn.settimeout(2)
        self.assertEqual(conn.recv(100), b"held")

    def test_cut_resets_and_refuses(self):
        conn = self.connect()
        self.assertEqual(self.round_trip(conn), b"ping")
        self.proxy.set("cut")
        with self.assertRaises((ConnectionResetError, BrokenPipeError)):
            self.round_trip(conn)
        with self.assertRaises(ConnectionRefusedError):
            self.connect()
        self.proxy.heal()
        self.assertEqual(self.round_trip(self.connect()), b"ping")

    def test_one_direction_stalled(self):
        conn = self.connect(0.5)
        self.proxy.set("stall_s2c")
        with self.assertRaises(socket.timeout):
            self.round_trip(conn, b"a")
        self.proxy.set("stall_c2s")  # the held answer flows now; new requests wait
        self.assertEqual(conn.recv(100), b"a")
        with self.assertRaises(socket.timeout):
            self.round_trip(conn, b"b")
        self.proxy.heal()
        conn.settimeout(2)
        self.assertEqual(conn.recv(100), b"b")

    def test_one_direction_dropped_resets_at_heal(self):
        conn = self.connect(0.5)
        self.proxy.set("drop_c2s")
        with self.assertRaises(socket.timeout):
            self.round_trip(conn, b"lost")
        self.proxy.heal()
        conn.settimeout(2)
        with self.assertRaises(ConnectionResetError):
            conn.recv(100)
        self.assertEqual(self.round_trip(self.connect()), b"ping")

    def test_fault_only_for_the_named_processes(self):
        """`only_from` cuts off the connections of the given pids only (how one etcd member
        is cut off from its peers behind the same proxies)."""
        self.proxy.set("blackhole", only_from=[os.getppid()])  # not this process
        self.assertEqual(self.round_trip(self.connect(0.5)), b"ping")
        self.proxy.set("blackhole", only_from=[os.getpid()])
        with self.assertRaises(socket.timeout):
            self.round_trip(self.connect(0.5))


def b64(text):
    return base64.b64encode(text.encode()).decode()


class CutWatchTest(unittest.TestCase):
    """`cut_watch` against a real etcd: a watch through the proxy gets the header of its
    answer, then EOF; unary requests on other connections are untouched; the proxy counts
    the watches it saw and cut."""

    key = "nm-proxy-test/lock"

    def setUp(self):
        workdir = tempfile.mkdtemp(prefix="nm-proxy-")
        self.addCleanup(shutil.rmtree, workdir, ignore_errors=True)
        self.etcd = Etcd(workdir)
        self.addCleanup(self.etcd.stop)
        self.etcd.start()
        self.proxy = Proxy(self.etcd.client_port, name="etcd")
        self.addCleanup(self.proxy.close)

    def open_watch(self):
        """A watch on `key` through the proxy, sent as the monitor sends it: one POST on a
        connection of its own."""
        body = json.dumps({"create_request": {"key": b64(self.key)}}).encode()
        conn = socket.create_connection(("127.0.0.1", self.proxy.port), timeout=2.0)
        self.addCleanup(conn.close)
        conn.sendall(b"POST /v3/watch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        return conn

    def read_until(self, conn, want, timeout, what):
        """Reads until `want` is among the bytes; fails on EOF or after `timeout` s."""
        data, deadline = b"", time.monotonic() + timeout
        while want not in data:
            conn.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = conn.recv(65536)
            except socket.timeout:
                self.fail(f"no {what} within {timeout} s; got {data[:300]!r}")
            if not chunk:
                self.fail(f"EOF before {what}; got {data[:300]!r}")
            data += chunk
        return data

    def read_to_eof(self, conn, timeout, what):
        """Reads until the peer's FIN; fails on a reset or after `timeout` s."""
        data, deadline = b"", time.monotonic() + timeout
        while True:
            conn.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = conn.recv(65536)
            except socket.timeout:
                self.fail(f"the connection still open after {timeout} s: expected {what}; "
                          f"got {data[:300]!r}")
            except ConnectionResetError:
                self.fail(f"the connection reset: expected {what} (a FIN); got {data[:300]!r}")
            if not chunk:
                return data
            data += chunk

    def unary_requests(self, value):
        """A put then a range of `key`, on one kept-alive connection through the proxy."""
        conn = http.client.HTTPConnection("127.0.0.1", self.proxy.port, timeout=2.0)
        self.addCleanup(conn.close)
        answers = []
        for path, body in (("/v3/kv/put", {"key": b64(self.key), "value": b64(value)}),
                           ("/v3/kv/range", {"key": b64(self.key)})):
            conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            reply = conn.getresponse()
            self.assertEqual(reply.status, 200, f"{path} through the proxy")
            answers.append(json.loads(reply.read()))
        kvs = answers[1].get("kvs", [])
        self.assertEqual([base64.b64decode(kv["value"]).decode() for kv in kvs], [value],
                         "the range through the proxy reads the value just put")

    def test_watch_request_line(self):
        self.assertTrue(is_watch(b"POST /v3/watch HTTP/1.1"))
        self.assertTrue(is_watch(b"POST /v3beta/watch HTTP/1.1"))
        for line in (b"POST /v3/watchers HTTP/1.1", b"GET /v3/watch HTTP/1.1",
                     b"POST /v3/lease/keepalive HTTP/1.1", b"POST /v3/kv/txn HTTP/1.1", b""):
            self.assertFalse(is_watch(line), line)

    def test_cut_watch_ends_watches_only(self):
        self.proxy.set("cut_watch")
        data = self.read_to_eof(self.open_watch(), 3.0, "the watch cut after its header")
        self.assertTrue(data.startswith(b"HTTP/1.1 200"), f"the watch's answer: {data[:300]!r}")
        self.assertIn(b"\r\n\r\n", data, "the whole header reaches the client before the cut")
        self.assertEqual((self.proxy.watch_requests, self.proxy.watches_cut), (1, 1))
        # Other connections, and a watch key read through them, are left alone.
        self.unary_requests("after-cut")
        self.assertEqual((self.proxy.watch_requests, self.proxy.watches_cut), (1, 1),
                         "unary requests are neither counted nor cut")
        # Every watch is cut, not only the first.
        self.read_to_eof(self.open_watch(), 3.0, "a second watch cut after its header")
        self.assertEqual((self.proxy.watch_requests, self.proxy.watches_cut), (2, 2))

    def test_pass_keeps_watch_until_cut_watch(self):
        """The control: in `pass` the same watch stays open and streams events, so the EOF
        above is the mode's doing; setting `cut_watch` then closes the open watch at once."""
        conn = self.open_watch()
        self.read_until(conn, b'"created":true', 3.0, "the watch's created message")
        self.unary_requests("through-pass")
        self.read_until(conn, b64("through-pass").encode(), 3.0, "the put's event on the open watch")
        self.assertEqual((self.proxy.watch_requests, self.proxy.watches_cut), (1, 0))
        self.proxy.set("cut_watch")
        self.read_to_eof(conn, 2.0, "the open watch cut when the mode is set")
        self.assertEqual(self.proxy.watches_cut, 1)


if __name__ == "__main__":
    unittest.main()
