"""A hostile etcd: a fake etcd v3 HTTP/JSON gateway on loopback that a monitor can be
pointed at (`--etcd-endpoints` = `HostileEtcd.url`). It forwards every request to a real
etcd, so that the monitor works normally, until the test switches it to misbehave.

Standard library only. One thread accepts connections and one thread serves each; the
test thread changes the fault with `set()`, which takes effect at once (for requests
already in flight too, where that means something), and `heal()` goes back to `pass`.
Every socket it opened is closed by `close()`.

Faults (`HostileEtcd.set(mode, paths=None)`; `paths` restricts the fault to requests whose
path is in it, e.g. ("/v3/lease/keepalive",); the others are forwarded untouched):

  pass                  forward both ways
  garbage modes (unary answers and each message of a watch, after etcd answered):
    truncated           the answer's JSON cut in the middle (a complete HTTP message)
    wrong_types         every field etcd writes given another JSON type: 64-bit integers
                        as floats, arrays, objects or booleans (rotating), booleans as
                        strings, keys and values as numbers, arrays as objects
    missing_fields      every field the gateway may omit, and the wrappers, left out
                        (header, ID, TTL, succeeded, responses, kvs, result, events, key,
                        value, lease, revisions)
  size and time modes (the answer is never etcd's):
    huge_body           a 200 whose body announces and sends 300 MB (a JSON object that
                        starts like etcd's); on a watch, one 300 MB message
    huge_chunked        the same 300 MB in 64 KiB chunks, without a length
    endless_chunked     a chunked 200 that never ends; on a watch, after `created`, a
                        message that never ends
    endless_chunk_header  a chunked 200 whose first chunk-size line never ends (a chunk
                        extension of endless bytes)
    watch_flood         on a watch only: after `created`, valid progress notifications
                        as fast as the socket takes them
    dense_json          an answer just under the client's limit (DENSE_UNARY bytes; on a
                        watch, after `created`, a message of DENSE_WATCH bytes) made of
                        the smallest JSON values there are: `{}` by the hundred thousand
    slow                etcd's real answer (header and body) sent one byte a second
    hang                the request is read and never answered (nor forwarded)
  lies (the answer is well formed, and false):
    campaign_lie_held   a txn is forwarded CAMPAIGN_DELAY late (so that a peer racing for
                        a free lock wins it first) and, when etcd answered it as failed
                        (the key is held by another), answered `succeeded: true`
    campaign_lie_unwritten  a txn is not sent to etcd: its puts are answered as done,
                        its ranges with etcd's real read, and `succeeded: true`
    grant_wrong_id      a lease grant answered with another lease's ID: that of the
                        lock key's holder (`lock_key`) when there is one, else the ID + 1
    keepalive_wrong_id  a keepalive forwarded, answered with the ID + 1
    ttl_inflated        grant and keepalive answers say TTL 3600
    watch_foreign_event each watch message is preceded by a message with events for keys
                        outside what was watched: a DELETE of the lock key of another
                        group, and a PUT of a key just past the watched range whose value
                        names the watcher's own node

A stream that a size or time mode produces ends (the connection is closed) as soon as the
mode changes: that is what "the fake passes traffic through again" means for an answer
that would otherwise never end. A watch already open when a size or time mode is set is
closed at once, so that the client meets the mode when it opens its next one. Garbage
modes and `watch_foreign_event` apply to the messages of open watches from the next one.

The fake counts what it saw: `requests[path]` (every request, whatever the mode) and
`faulted[path]` (requests it answered with a fault), read from the test thread as a
snapshot (`counts()`); and `lies`, the answers that said the opposite of etcd's
(campaign_lie_held: a failed txn answered as won).
"""

import base64
import copy
import http.client
import json
import select
import socket
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler

GARBAGE_MODES = ("truncated", "wrong_types", "missing_fields")
GENERATED_MODES = ("huge_body", "huge_chunked", "endless_chunked", "endless_chunk_header",
                   "watch_flood", "dense_json", "slow", "hang")
LIE_MODES = ("campaign_lie_held", "campaign_lie_unwritten", "grant_wrong_id",
             "keepalive_wrong_id", "ttl_inflated", "watch_foreign_event")
MODES = ("pass",) + GARBAGE_MODES + GENERATED_MODES + LIE_MODES

WATCH_PATHS = ("/v3/watch", "/v3beta/watch")
HUGE = 300 * 1024 * 1024
# Just under the client's limits on an answer's body and on a watch message.
DENSE_UNARY = 1024 * 1024 - 1024
DENSE_WATCH = 4 * 1024 * 1024 - 1024
BLOCK = 64 * 1024
UPSTREAM_TIMEOUT = 10.0
CAMPAIGN_DELAY = 0.3

# The fields etcd writes as 64-bit integers (strings on the wire).
INT_FIELDS = {"ID", "TTL", "revision", "lease", "create_revision", "mod_revision",
              "version", "count", "raft_term", "compact_revision", "watch_id",
              "cluster_id", "member_id", "grantedTTL"}
BOOL_FIELDS = {"succeeded", "created", "canceled", "more", "fragment"}
BYTES_FIELDS = {"key", "value"}
LIST_FIELDS = {"kvs", "events", "responses", "leases", "keys"}
MISSING_FIELDS = {"header", "ID", "TTL", "succeeded", "responses", "kvs", "result",
                  "events", "key", "value", "lease", "revision", "create_revision",
                  "mod_revision", "created"}


def b64(text):
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def is_watch(path):
    return path.split("?")[0] in WATCH_PATHS


# --- JSON rewriting --------------------------------------------------------------------

def wrong_types(value, counter):
    """A copy of an etcd answer with every field it knows given another type."""
    if isinstance(value, dict):
        out = {}
        for name, item in value.items():
            counter[0] += 1
            turn = counter[0] % 4
            if name in INT_FIELDS:
                out[name] = (3.5, [item], {"value": item}, True)[turn]
            elif name in BOOL_FIELDS:
                out[name] = ("true", 1, [True], {"v": True})[turn]
            elif name in BYTES_FIELDS:
                out[name] = (12345, [item], {"b64": item}, False)[turn]
            elif name in LIST_FIELDS and isinstance(item, list):
                out[name] = {str(i): wrong_types(x, counter) for i, x in enumerate(item)}
            else:
                out[name] = wrong_types(item, counter)
        return out
    if isinstance(value, list):
        return [wrong_types(x, counter) for x in value]
    return value


def missing_fields(value):
    """A copy of an etcd answer without any of the fields in MISSING_FIELDS."""
    if isinstance(value, dict):
        return {k: missing_fields(v) for k, v in value.items() if k not in MISSING_FIELDS}
    if isinstance(value, list):
        return [missing_fields(x) for x in value]
    return value


def garbled(mode, text, counter):
    """The text of one answer or watch message (JSON) after a garbage mode."""
    if mode == "truncated":
        return text[:max(1, len(text) // 2)]
    try:
        doc = json.loads(text)
    except ValueError:
        return text
    if mode == "wrong_types":
        return json.dumps(wrong_types(doc, counter)).encode()
    return json.dumps(missing_fields(doc)).encode()


# --- chunked bodies --------------------------------------------------------------------

class Dechunker:
    """Decodes a chunked HTTP body incrementally into lines (etcd's watch messages)."""

    def __init__(self):
        self.raw = b""
        self.body = b""
        self.left = 0      # bytes of the current chunk still to come
        self.done = False  # the last chunk arrived

    def feed(self, data):
        """Returns the complete lines (with their newline) that `data` completes."""
        self.raw += data
        while not self.done:
            if self.left == 0:
                end = self.raw.find(b"\r\n")
                if end < 0:
                    break
                size = int(self.raw[:end].split(b";")[0] or b"0", 16)
                self.raw = self.raw[end + 2:]
                if size == 0:
                    self.done = True
                    break
                self.left = size + 2  # and its CRLF
            take = self.raw[:self.left]
            self.raw = self.raw[len(take):]
            self.left -= len(take)
            self.body += take if self.left >= 2 else take[:len(take) - (2 - self.left)]
            if self.left > 0:
                break
        lines = []
        while b"\n" in self.body:
            line, self.body = self.body.split(b"\n", 1)
            lines.append(line + b"\n")
        return lines


def chunk(data):
    return b"%x\r\n%s\r\n" % (len(data), data)


# --- the server ------------------------------------------------------------------------

class _Closed(Exception):
    """The client went away, or the mode changed under an answer that must end."""


class HostileEtcd:
    def __init__(self, upstream_port, name="hostile", lock_key=None):
        self.name = name
        self.upstream = ("127.0.0.1", upstream_port)
        self.lock_key = lock_key  # the key whose holder's lease grant_wrong_id names
        self._lock = threading.Lock()
        self._mode = "pass"
        self._paths = None
        self.generation = 0  # bumped by every set(): answers in progress look at it
        self._sockets = set()
        self.requests = {}
        self.faulted = {}
        self.lies = 0
        fake = self

        class Handler(_Handler):
            pass
        Handler.fake = fake

        class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"hostile-{name}", daemon=True)
        self._thread.start()

    # --- control (test thread) ----------------------------------------------------------

    def set(self, mode, paths=None):
        """Applies a fault (see the module text) to every request, or to those whose path
        is in `paths`."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        with self._lock:
            self._mode = mode
            self._paths = tuple(paths) if paths is not None else None
            self.generation += 1

    def heal(self):
        self.set("pass")

    def mode_for(self, path):
        with self._lock:
            if self._paths is not None and path.split("?")[0] not in self._paths:
                return "pass"
            return self._mode

    def counts(self):
        """(requests, faulted): copies of the counters, by path."""
        with self._lock:
            return dict(self.requests), dict(self.faulted)

    def close(self):
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            sockets = list(self._sockets)
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass
        self._thread.join(5)
        if self._thread.is_alive():
            raise AssertionError(f"hostile etcd {self.name}: server thread did not stop within 5 s")

    # --- bookkeeping (server threads) ---------------------------------------------------

    def track(self, sock):
        with self._lock:
            self._sockets.add(sock)

    def untrack(self, sock):
        with self._lock:
            self._sockets.discard(sock)

    def count(self, path, faulted):
        with self._lock:
            self.requests[path] = self.requests.get(path, 0) + 1
            if faulted:
                self.faulted[path] = self.faulted.get(path, 0) + 1

    def upstream_request(self, path, body):
        """A unary request to the real etcd: (status, body)."""
        conn = http.client.HTTPConnection(*self.upstream, timeout=UPSTREAM_TIMEOUT)
        try:
            conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
            answer = conn.getresponse()
            return answer.status, answer.read()
        finally:
            conn.close()

    def holder_lease(self):
        """The lease of the lock key's holder in the real etcd, or None."""
        if not self.lock_key:
            return None
        status, body = self.upstream_request("/v3/kv/range", json.dumps({"key": b64(self.lock_key)}).encode())
        kvs = json.loads(body).get("kvs", []) if status == 200 else []
        return kvs[0].get("lease") if kvs else None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake = None  # set by HostileEtcd

    def log_message(self, *args):  # quiet
        pass

    def setup(self):
        super().setup()
        self.fake.track(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            self.fake.untrack(self.connection)

    def do_GET(self):
        self.serve()

    def do_POST(self):
        self.serve()

    # --- dispatch -----------------------------------------------------------------------

    def serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path
        mode = self.fake.mode_for(path)
        generation = self.fake.generation
        watch = is_watch(path)
        applies = mode != "pass" and self.applies(mode, path, watch)
        self.fake.count(path, applies)
        try:
            if not applies:
                return self.stream_watch(body, generation) if watch else self.forward(path, body)
            if mode in GENERATED_MODES:
                self.close_connection = True
                return self.generate(mode, path, body, watch, generation)
            if watch:
                return self.stream_watch(body, generation)
            if mode in GARBAGE_MODES:
                status, answer = self.fake.upstream_request(path, body)
                return self.reply(status, garbled(mode, answer, [0]))
            return self.lie(mode, path, body)
        except (_Closed, OSError, ValueError):
            self.close_connection = True

    @staticmethod
    def applies(mode, path, watch):
        """Whether `mode` changes this request at all."""
        plain = path.split("?")[0]
        if mode == "watch_flood" or mode == "watch_foreign_event":
            return watch
        if mode in ("campaign_lie_held", "campaign_lie_unwritten"):
            return plain.endswith("/kv/txn")
        if mode == "grant_wrong_id":
            return plain.endswith("/lease/grant")
        if mode == "keepalive_wrong_id":
            return plain.endswith("/lease/keepalive")
        if mode == "ttl_inflated":
            return plain.endswith("/lease/grant") or plain.endswith("/lease/keepalive")
        return True

    # --- plain answers ------------------------------------------------------------------

    def forward(self, path, body):
        status, answer = self.fake.upstream_request(path, body)
        self.reply(status, answer)

    def reply(self, status, body):
        head = (f"HTTP/1.1 {status} {http.client.responses.get(status, 'Status')}\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        self.wfile.write(head + body)

    # --- lies ---------------------------------------------------------------------------

    def lie(self, mode, path, body):
        if mode == "campaign_lie_unwritten":
            return self.reply(200, self.unwritten_txn(body))
        if mode == "campaign_lie_held":
            time.sleep(CAMPAIGN_DELAY)
        status, answer = self.fake.upstream_request(path, body)
        if status != 200:
            return self.reply(status, answer)
        doc = json.loads(answer.splitlines()[0] if answer.strip() else b"{}")
        inner = doc.get("result", doc)  # keepalive answers are wrapped
        if mode == "campaign_lie_held":
            if not doc.get("succeeded"):
                with self.fake._lock:
                    self.fake.lies += 1
            doc["succeeded"] = True
        elif mode == "grant_wrong_id":
            other = self.fake.holder_lease()
            inner["ID"] = other if other and other != inner.get("ID") else str(int(inner.get("ID", "0")) + 1)
        elif mode == "keepalive_wrong_id":
            inner["ID"] = str(int(inner.get("ID", "0")) + 1)
        elif mode == "ttl_inflated":
            inner["TTL"] = "3600"
        self.reply(200, json.dumps(doc).encode() + b"\n")

    def unwritten_txn(self, body):
        """A txn's success branch answered as done without doing it: puts acknowledged,
        ranges read from etcd as they stand."""
        txn = json.loads(body)
        status, head = self.fake.upstream_request("/v3/kv/range", json.dumps({"key": b64("\0")}).encode())
        header = json.loads(head).get("header", {})
        responses = []
        for op in txn.get("success", []):
            if "request_put" in op:
                responses.append({"response_put": {"header": header}})
            elif "request_range" in op:
                _, read = self.fake.upstream_request("/v3/kv/range", json.dumps(op["request_range"]).encode())
                responses.append({"response_range": json.loads(read)})
            else:
                responses.append({"response_delete_range": {"header": header}})
        return json.dumps({"header": header, "succeeded": True, "responses": responses}).encode()

    # --- generated answers --------------------------------------------------------------

    def check(self, generation):
        """Raises _Closed when the mode changed since the answer began."""
        if self.fake.generation != generation:
            raise _Closed()

    def client_gone(self, timeout=0.0):
        """True when the client closed its side (it sends nothing else while it waits)."""
        readable, _, _ = select.select([self.connection], [], [], timeout)
        if not readable:
            return False
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def send(self, data, generation):
        self.check(generation)
        self.connection.sendall(data)

    def generate(self, mode, path, body, watch, generation):
        if mode == "hang":
            while not self.client_gone(0.1):
                self.check(generation)
            return
        if mode == "slow":
            if watch:
                return self.stream_watch(body, generation, slow=True)
            status, answer = self.fake.upstream_request(path, body)
            head = (f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(answer)}\r\n\r\n").encode()
            return self.drip(head + answer, generation)
        chunked = mode != "huge_body" or watch  # a watch must be chunked to be read at all
        head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        head += "Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {HUGE}\r\n\r\n"
        self.send(head.encode(), generation)
        if mode == "endless_chunk_header":
            self.send(b"1;x=", generation)
            filler = b"a" * BLOCK
            while True:
                self.send(filler, generation)
        start = b""
        if watch:
            start = b'{"result":{"header":{"revision":"1"},"created":true}}\n'
            if mode == "watch_flood":
                line = b'{"result":{"header":{"cluster_id":"1","member_id":"1","revision":"1","raft_term":"1"}}}\n'
                block = line * (BLOCK // len(line))
                self.send(chunk(start), generation)
                while True:
                    self.send(chunk(block), generation)
        if mode == "watch_flood":  # on a unary request: a plain forward
            return self.forward(path, body)
        if mode == "dense_json":
            size = DENSE_WATCH if watch else DENSE_UNARY
            head, tail = (b'{"result":{"header":{"revision":"1"},"events":[', b"{}]}}\n") if watch else \
                (b'{"header":{"revision":"1"},"ID":"1","TTL":"5","pad":[', b"{}]}")
            items = (size - len(head) - len(tail)) // 3
            message = head + b"{}," * items + tail
            if watch:
                self.send(chunk(start), generation)
                self.send(chunk(message), generation)
                while not self.client_gone(0.1):  # the watch stays open
                    self.check(generation)
                return
            self.send(chunk(message) + b"0\r\n\r\n", generation)
            return
        # A JSON object that starts like etcd's and goes on with a string of filler.
        prefix = start + b'{"header":{"revision":"1"},"ID":"1","TTL":"5","pad":"'
        filler = b"x" * BLOCK
        endless = mode == "endless_chunked"
        sent = 0
        out = (lambda data: self.send(chunk(data), generation)) if chunked else \
            (lambda data: self.send(data, generation))
        out(prefix)
        sent += len(prefix)
        while endless or sent + BLOCK + 2 <= HUGE:
            out(filler)
            sent += len(filler)
        tail = b"x" * (HUGE - sent - 2) + b'"}'
        out(tail)
        if chunked:
            self.send(b"0\r\n\r\n", generation)

    def drip(self, data, generation):
        """Sends `data` one byte a second, until the client leaves or the mode changes."""
        for i in range(len(data)):
            self.send(data[i:i + 1], generation)
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                if self.client_gone(0.05):
                    raise _Closed()
                self.check(generation)

    # --- watches ------------------------------------------------------------------------

    def stream_watch(self, body, generation, slow=False):
        """A watch on the real etcd, its messages passed on one chunk each, rewritten by
        the mode in force when each arrives."""
        upstream = socket.create_connection(self.fake.upstream, timeout=UPSTREAM_TIMEOUT)
        self.fake.track(upstream)
        try:
            upstream.sendall(
                f"POST /v3/watch HTTP/1.1\r\nHost: {self.fake.upstream[0]}:{self.fake.upstream[1]}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
            upstream.settimeout(None)
            head = b""
            while b"\r\n\r\n" not in head:
                data = upstream.recv(BLOCK)
                if not data:
                    raise _Closed()
                head += data
            head, rest = head.split(b"\r\n\r\n", 1)
            status_line = head.split(b"\r\n", 1)[0]
            if b" 200 " not in status_line + b" ":
                # A refusal: pass it on as a plain answer.
                self.close_connection = True
                self.connection.sendall(head + b"\r\n\r\n" + rest)
                return
            out_head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            if slow:
                return self.drip_watch(upstream, rest, out_head, generation)
            self.connection.sendall(out_head)
            dechunker = Dechunker()
            lines = dechunker.feed(rest)
            counter = [0]
            while True:
                for line in lines:
                    self.pass_message(line, body, counter)
                if dechunker.done:
                    self.connection.sendall(b"0\r\n\r\n")
                    return
                mode = self.fake.mode_for("/v3/watch")
                if mode in GENERATED_MODES:
                    raise _Closed()  # the client meets the mode at its next watch
                readable, _, _ = select.select([self.connection, upstream], [], [], 0.1)
                if self.connection in readable and self.client_gone():
                    raise _Closed()
                lines = []
                if upstream in readable:
                    data = upstream.recv(BLOCK)
                    if not data:
                        raise _Closed()
                    lines = dechunker.feed(data)
        finally:
            self.fake.untrack(upstream)
            upstream.close()

    def pass_message(self, line, request, counter):
        mode = self.fake.mode_for("/v3/watch")
        if mode in GARBAGE_MODES:
            line = garbled(mode, line.rstrip(b"\n"), counter) + b"\n"
        elif mode == "watch_foreign_event":
            self.connection.sendall(chunk(self.foreign_event(line, request)))
        self.connection.sendall(chunk(line))

    def foreign_event(self, line, request):
        """A message with events for keys outside the watched range."""
        try:
            header = json.loads(line).get("result", {}).get("header", {"revision": "1"})
            watched = base64.b64decode(json.loads(request)["create_request"]["key"]).decode()
        except (ValueError, KeyError):
            header, watched = {"revision": "1"}, "lock"
        revision = str(int(header.get("revision", "1")) + 1)
        value = json.dumps({"node": self.fake.name, "instance": "forged", "pid": 1})
        events = [
            {"type": "DELETE", "kv": {"key": b64("another-group"), "mod_revision": revision}},
            {"kv": {"key": b64(watched + "0"), "value": b64(value), "create_revision": revision,
                    "mod_revision": revision, "version": "1", "lease": "1"}},
        ]
        return json.dumps({"result": {"header": header, "events": events}}).encode() + b"\n"

    def drip_watch(self, upstream, rest, out_head, generation):
        """The watch's answer, header and messages, one byte a second."""
        self.drip(out_head, generation)
        dechunker = Dechunker()
        queue = b"".join(chunk(line) for line in dechunker.feed(rest))
        while True:
            if queue:
                self.drip(queue[:1], generation)
                queue = queue[1:]
            readable, _, _ = select.select([upstream], [], [], 0)
            if readable:
                data = upstream.recv(BLOCK)
                if not data:
                    raise _Closed()
                queue += b"".join(chunk(line) for line in dechunker.feed(data))
            elif not queue:
                if self.client_gone(0.1):
                    raise _Closed()
                self.check(generation)
