"""A loopback TCP proxy that a test controls, to put network faults between a monitor and
etcd (or between etcd members) without touching the machine's firewall.

One thread per proxy runs a selector loop; the test thread changes the fault with the
methods below, which take effect at once.

Faults (`Proxy.set(mode, delay=...)`):
  pass        forward both ways (with `delay` seconds added to every chunk, if given)
  blackhole   packets lost both ways, as on a dead link: nothing is read or forwarded, so
              the bytes wait in the kernel's buffers (TCP would retransmit them); new
              connections are accepted but get no answer. On heal everything flows again.
  cut         every connection reset (RST), new ones refused (the listening socket is
              closed, so a connect gets ECONNREFUSED); on heal the port listens again.
  stall_c2s   client-to-server bytes held (requests never arrive), replies flow
  stall_s2c   server-to-client bytes held (etcd handles requests, answers never arrive)
  drop_c2s    client-to-server bytes read and thrown away; a connection that lost bytes is
  drop_s2c    corrupt, so it is reset when the fault heals (as TCP would end it eventually)
  cut_watch   as `pass`, except for etcd watches (a connection whose first request is
              `POST /v3/watch`): each is closed (FIN to the client, after the bytes already
              forwarded) as soon as the header of its answer has reached the client, maybe
              with the `created` message, as a load balancer that cuts streaming connections
              does. A watch already open when the mode is set is closed at once. Unary
              requests, on their own connections, flow untouched. A client that sends a
              watch after other requests on a kept-alive connection is not recognised; etcd's
              clients and the monitor open a connection for each watch.

Whatever the mode, the proxy counts the watch requests it forwarded (`watch_requests`) and
the watches it cut (`watches_cut`): a watch rate measured apart from the client's own
figures. Both are plain integers, written by the proxy's thread, readable from any thread.

`only_from` restricts the fault to connections opened by the given process ids (found
through /proc): that is how one etcd member is cut off from its peers while the others
still talk to each other through the same proxies.
"""

import errno
import os
import selectors
import socket
import struct
import threading
import time

MODES = ("pass", "blackhole", "cut", "stall_c2s", "stall_s2c", "drop_c2s", "drop_s2c",
         "cut_watch")
CHUNK = 65536
# A request line or an answer header longer than this is not HTTP from etcd or the
# monitor: the connection is judged on what was seen by then.
HEAD_LIMIT = 8192
WATCH_PATHS = (b"/v3/watch", b"/v3beta/watch")


def is_watch(request_line):
    """True for the request line of an etcd watch through the HTTP/JSON gateway."""
    parts = request_line.split(b" ")
    return len(parts) >= 2 and parts[0] == b"POST" and parts[1].split(b"?")[0] in WATCH_PATHS


def _reset(sock):
    """Closes with an RST instead of a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def socket_owner(sock, candidates):
    """The pid among `candidates` that owns the other end of `sock` (a connection accepted
    on loopback), or None."""
    host, port = sock.getpeername()[:2]
    want = f"{socket.inet_aton(host)[::-1].hex().upper()}:{port:04X}"
    inode = None
    try:
        with open("/proc/net/tcp", encoding="ascii") as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[1] == want:
                    inode = fields[9]
                    break
    except OSError:
        return None
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in candidates:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                        return pid
                except OSError:
                    continue
        except OSError:
            continue
    return None


class _Pipe:
    """One proxied connection: the client side and the server side."""

    def __init__(self, client, server, source):
        self.client = client
        self.server = server
        self.source = source
        # Per direction, chunks waiting: (due time, bytes)
        self.out = {"c2s": [], "s2c": []}
        self.eof = {"c2s": False, "s2c": False}
        self.tainted = False
        self.closed = False
        # The client's first request line, until complete; then whether it is a watch.
        self.request_head = b""
        self.watch = None
        # Answer bytes forwarded to the client, until the end of the header is among them.
        self.answer_head = b""
        self.answered = False  # the client has the whole header of the answer


class Proxy:
    def __init__(self, target_port, name="proxy", identify=None):
        self.name = name
        self._identify = identify  # a callable giving the pids `only_from` may name
        self.target = ("127.0.0.1", target_port)
        self._lock = threading.Lock()
        self._mode = "pass"
        self._delay = 0.0
        self._only_from = None  # None: every connection; else a set of pids
        self._listener = None
        self._pipes = []
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, ("wake", None))
        self._stop = False
        self._cmd = None
        self.port = self._listen(0)
        self.url = f"http://127.0.0.1:{self.port}"
        self.watch_requests = 0  # watch requests passed on to the server, in any mode
        self.watches_cut = 0     # watch connections closed by `cut_watch`
        self._thread = threading.Thread(target=self._run, name=f"proxy-{name}", daemon=True)
        self._thread.start()

    # --- control (test thread) ----------------------------------------------------------

    def set(self, mode, delay=0.0, only_from=None):
        """Applies a fault (see the module text); `delay` seconds are added to every chunk
        forwarded while the mode lets bytes through."""
        if mode not in MODES:
            raise ValueError(f"unknown proxy mode {mode!r}")
        with self._lock:
            self._mode = mode
            self._delay = float(delay)
            self._only_from = set(only_from) if only_from is not None else None
            done = threading.Event()
            self._cmd = done
        self._wake()
        # Synchronous: when this returns, the fault is in place.
        if not done.wait(5):
            raise AssertionError(f"proxy {self.name} did not apply {mode} within 5 s")

    def heal(self):
        self.set("pass")

    def close(self):
        self._stop = True
        self._wake()
        self._thread.join(5)
        if self._thread.is_alive():
            raise AssertionError(f"proxy {self.name} thread did not stop within 5 s")

    # --- the loop -----------------------------------------------------------------------

    def _wake(self):
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def _listen(self, port):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(128)
        s.setblocking(False)
        self._listener = s
        self._sel.register(s, selectors.EVENT_READ, ("listen", None))
        return s.getsockname()[1]

    def _applies(self, pipe):
        return self._only_from is None or pipe.source in self._only_from

    def _mode_for(self, pipe):
        return self._mode if self._applies(pipe) else "pass"

    def _apply(self):
        """Called in the loop after the test changed the fault."""
        mode_all = self._mode
        if mode_all == "cut" and self._only_from is None:
            if self._listener is not None:
                self._sel.unregister(self._listener)
                self._listener.close()
                self._listener = None
        elif self._listener is None:
            self._listen(self.port)
        for pipe in list(self._pipes):
            mode = self._mode_for(pipe)
            if mode == "cut" or (pipe.tainted and not mode.startswith("drop")):
                self._close(pipe, reset=True)
            elif mode == "cut_watch" and pipe.watch and pipe.answered:
                self._cut_watch(pipe)

    def _accept(self):
        try:
            client, _ = self._listener.accept()
        except OSError:  # BlockingIOError and InterruptedError among them
            return
        source = None
        if self._identify is not None:
            source = socket_owner(client, self._identify())
        elif self._only_from is not None:
            source = socket_owner(client, self._only_from)
        probe = _Pipe(client, None, source)
        mode = self._mode_for(probe)
        if mode == "cut":
            _reset(client)
            return
        try:
            server = socket.create_connection(self.target, timeout=1.0)
        except OSError:
            _reset(client)
            return
        client.setblocking(False)
        server.setblocking(False)
        for s in (client, server):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        probe.server = server
        self._pipes.append(probe)

    def _close(self, pipe, reset=False):
        if pipe.closed:
            return
        pipe.closed = True
        for s in (pipe.client, pipe.server):
            if s is None:
                continue
            try:
                self._sel.unregister(s)
            except (KeyError, ValueError):
                pass
            if reset:
                _reset(s)
            else:
                try:
                    s.close()
                except OSError:
                    pass
        self._pipes.remove(pipe)

    def _register(self, now):
        """(Re)computes what each socket waits for; returns the next due time of a delayed
        chunk, or None."""
        next_due = None
        for pipe in self._pipes:
            mode = self._mode_for(pipe)
            for sock, src_dir, dst_dir in ((pipe.client, "c2s", "s2c"), (pipe.server, "s2c", "c2s")):
                events = 0
                # Read from this side unless its direction is held.
                held_in = mode == "blackhole" or mode == f"stall_{src_dir}"
                if not held_in and not pipe.eof[src_dir] and len(pipe.out[src_dir]) < 64:
                    events |= selectors.EVENT_READ
                # Write to this side what the other side sent, when due and not held.
                held_out = mode == "blackhole" or mode == f"stall_{dst_dir}"
                queue = pipe.out[dst_dir]
                if queue and not held_out:
                    if queue[0][0] <= now:
                        events |= selectors.EVENT_WRITE
                    else:
                        next_due = queue[0][0] if next_due is None else min(next_due, queue[0][0])
                try:
                    if events:
                        try:
                            self._sel.modify(sock, events, ("pipe", pipe))
                        except KeyError:
                            self._sel.register(sock, events, ("pipe", pipe))
                    else:
                        try:
                            self._sel.unregister(sock)
                        except KeyError:
                            pass
                except (ValueError, OSError):
                    pass
        return next_due

    def _run(self):
        while not self._stop:
            now = time.monotonic()
            with self._lock:
                pending = self._cmd
                self._cmd = None
            if pending:
                self._apply()
                pending.set()
            next_due = self._register(now)
            timeout = None if next_due is None else max(0.0, next_due - now)
            for key, events in self._sel.select(timeout if timeout is not None else 1.0):
                kind, pipe = key.data
                if kind == "wake":
                    try:
                        while self._wake_r.recv(4096):
                            pass
                    except (BlockingIOError, InterruptedError):
                        pass
                elif kind == "listen":
                    if self._listener is not None:
                        self._accept()
                elif not pipe.closed:
                    self._service(pipe, key.fileobj, events)
        for pipe in list(self._pipes):
            self._close(pipe, reset=True)
        if self._listener is not None:
            self._listener.close()
        self._sel.close()
        self._wake_r.close()
        self._wake_w.close()

    def _service(self, pipe, sock, events):
        src_dir = "c2s" if sock is pipe.client else "s2c"
        dst_dir = "s2c" if src_dir == "c2s" else "c2s"
        if events & selectors.EVENT_READ:
            try:
                data = sock.recv(CHUNK)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                self._close(pipe, reset=True)
                return
            if data == b"":
                pipe.eof[src_dir] = True
                # A FIN from one side: pass it on once its bytes are out.
                if not pipe.out[src_dir]:
                    self._shutdown_other(pipe, src_dir)
                if pipe.eof["c2s"] and pipe.eof["s2c"]:
                    self._close(pipe)
                    return
            elif data:
                mode = self._mode_for(pipe)
                if mode == f"drop_{src_dir}":
                    pipe.tainted = True
                else:
                    if src_dir == "c2s" and pipe.watch is None:
                        self._judge_request(pipe, data)
                    pipe.out[src_dir].append((time.monotonic() + self._delay, data))
        if pipe.closed:
            return
        if events & selectors.EVENT_WRITE:
            queue = pipe.out[dst_dir]
            now = time.monotonic()
            try:
                while queue and queue[0][0] <= now:
                    due, data = queue[0]
                    n = sock.send(data)
                    if dst_dir == "s2c" and pipe.watch and not pipe.answered:
                        self._note_answer(pipe, data[:n])
                    if n < len(data):
                        queue[0] = (due, data[n:])
                        break
                    queue.pop(0)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                self._close(pipe, reset=True)
                return
            if pipe.answered and self._mode_for(pipe) == "cut_watch":
                self._cut_watch(pipe)
                return
            if not queue and pipe.eof[dst_dir]:
                self._shutdown_other(pipe, dst_dir)

    def _judge_request(self, pipe, data):
        """Reads the client's first request line as it arrives; counts a watch."""
        pipe.request_head += data[:HEAD_LIMIT - len(pipe.request_head)]
        end = pipe.request_head.find(b"\r\n")
        if end < 0 and len(pipe.request_head) < HEAD_LIMIT:
            return
        pipe.watch = is_watch(pipe.request_head[:end] if end >= 0 else pipe.request_head)
        pipe.request_head = b""
        if pipe.watch:
            self.watch_requests += 1

    @staticmethod
    def _note_answer(pipe, sent):
        """Follows the answer of a watch to the end of its header."""
        pipe.answer_head += sent
        if b"\r\n\r\n" in pipe.answer_head or len(pipe.answer_head) >= HEAD_LIMIT:
            pipe.answered = True
            pipe.answer_head = b""

    def _cut_watch(self, pipe):
        """Ends a watch as an intermediary that cuts streams does: the client gets what was
        forwarded, then a FIN. Whatever the client sent since is read first: closing a
        socket with unread bytes would send an RST and could discard the answer."""
        self.watches_cut += 1
        try:
            while pipe.client.recv(CHUNK):
                pass
        except OSError:  # BlockingIOError once drained
            pass
        self._close(pipe)

    def _shutdown_other(self, pipe, src_dir):
        other = pipe.server if src_dir == "c2s" else pipe.client
        try:
            other.shutdown(socket.SHUT_WR)
        except OSError as e:
            if e.errno not in (errno.ENOTCONN, errno.EBADF):
                self._close(pipe, reset=True)
