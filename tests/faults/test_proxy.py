#!/usr/bin/env python3
"""The loopback proxy the fault scenarios use: each fault does what it says, against a
local echo server. Every wait is bounded by a socket timeout."""

import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from proxy import Proxy  # noqa: E402


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


if __name__ == "__main__":
    unittest.main()
