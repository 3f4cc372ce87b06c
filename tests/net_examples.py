#!/usr/bin/env python3
"""net_examples.py: the network examples tested over loopback by real
clients (and a real server, for the fetcher).

    net_examples.py chat PATH/chat-server
    net_examples.py fetcher PATH/fetcher

COGEN_TEST_WRAPPER (valgrind, qemu: tools/check.sh) goes before the
program; timeouts are stretched when it is set.

chat: four clients; A floods lines while B and C read them and D, whose
receive buffer is small, never reads. The server must drop D (its queue
or its drain time runs out) while B and C receive every one of A's lines,
in order; then B's line still reaches A and C; SIGINT ends the server with
status 0. Another run ends with SIGTERM while a client is connected: the
server closes it and exits 0 too.

fetcher: a threaded HTTP server that counts the requests in flight
(each answered after 100 ms, Content-Length or chunked), one path that
never answers and a closed port: the fetcher must get every answer byte
for byte, time the silent one out, report the refused one as
ConnectionRefusedError, never have more requests in flight than its
limit, exit 1 (some failed); and exit 0 when all succeed. SIGINT while a
request waits on a server that never answers cancels it at once (the
request reported as CancelledError, status 1).
"""
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import http.server

WRAPPER = shlex.split(os.environ.get("COGEN_TEST_WRAPPER", ""))
SLOW = 10 if WRAPPER else 1


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Lines:
    """A client of the chat: lines received in a thread."""

    def __init__(self, port, rcvbuf=None, read=True):
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect(("127.0.0.1", port))
        self.lines = []
        self.eof = threading.Event()
        self.buf = b""
        if read:
            threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                self.eof.set()
                return
            self.buf += data
            *done, self.buf = self.buf.split(b"\n")
            self.lines.extend(done)

    def wait_for(self, pred, what, timeout):
        end = time.time() + timeout
        while time.time() < end:
            if pred(self.lines):
                return
            time.sleep(0.01)
        fail(f"timed out waiting for {what}: last lines {self.lines[-3:]}")


def start_chat(prog, *args):
    """The chat server on a free port, once it listens: (process, its
    stdout's lines as they come, port)."""
    port = free_port()
    srv = subprocess.Popen(WRAPPER + [prog, str(port), *args], stdout=subprocess.PIPE, text=True)
    out = []
    threading.Thread(target=lambda: out.extend(iter(srv.stdout.readline, "")), daemon=True).start()
    end = time.time() + 30 * SLOW
    while not any("listening" in l for l in out):
        if time.time() > end or srv.poll() is not None:
            srv.kill()
            fail(f"the server did not start: {out}")
        time.sleep(0.02)
    return srv, out, port


def stop_chat(srv, out, sig, clients):
    """sig ends the server cleanly: status 0, 'signal N: shutting down' and
    'shut down' printed, every client's connection closed."""
    srv.send_signal(sig)
    try:
        rc = srv.wait(30 * SLOW)
    except subprocess.TimeoutExpired:
        fail(f"the server did not stop on {sig.name}")
    time.sleep(0.1)
    if rc != 0:
        fail(f"the server exited {rc} on {sig.name}")
    if not any(l.strip() == "signal %d: shutting down" % sig for l in out) or \
            not any(l.strip() == "shut down" for l in out):
        fail(f"no clean shutdown on {sig.name}: {out[-5:]}")
    for cl in clients:
        if not cl.eof.wait(5):
            fail(f"a client's connection stayed open after {sig.name}")


def chat(prog):
    drop_ms = 500 * SLOW
    srv, out, port = start_chat(prog, str(drop_ms))
    try:
        a, b, c = Lines(port), Lines(port), Lines(port)
        d = Lines(port, rcvbuf=4096, read=False)
        for cl in (a, b, c):
            cl.wait_for(lambda ls: ls and ls[0].startswith(b"welcome"), "the welcome", 10 * SLOW)
        a_id = int(a.lines[0].split()[-1])
        b_id = int(b.lines[0].split()[-1])
        d_id = max(a_id, b_id, int(c.lines[0].split()[-1])) + 1  # D connected last
        # A floods: far more than D's buffers, its queue and the server's
        # send buffer hold; B and C read along
        n = 3000
        payload = b"x" * 200
        sent = [b"%d %s" % (i, payload) for i in range(n)]
        a.sock.sendall(b"".join(s + b"\n" for s in sent))
        want = [b"client %d: %s" % (a_id, s) for s in sent]
        for cl in (b, c):
            cl.wait_for(lambda ls: len(ls) >= n + 1, f"{n} lines", 30 * SLOW)
            if cl.lines[1:n + 1] != want:
                fail("a reading client did not get A's lines exactly, in order")
        # D is dropped: the server says so, and D's connection ends
        end = time.time() + 10 * SLOW
        while not any("dropped" in l for l in out):
            if time.time() > end:
                fail(f"the client that never reads was not dropped: {out[-5:]}")
            time.sleep(0.02)
        dropped = [l for l in out if "dropped" in l]
        if len(dropped) != 1 or "client %d dropped" % d_id not in dropped[0]:
            fail(f"the wrong client was dropped: {dropped}")
        d.sock.settimeout(10 * SLOW)
        got = 0
        try:
            while True:
                data = d.sock.recv(65536)
                if not data:
                    break
                got += len(data)
        except ConnectionResetError:
            pass
        except socket.timeout:
            fail("the dropped client's connection stayed open")
        if got >= len(b"".join(w + b"\n" for w in want)):
            fail("the dropped client got everything: no backpressure")
        # the others go on
        b.sock.sendall(b"still here\n")
        for cl in (a, c):
            cl.wait_for(lambda ls: ls and ls[-1] == b"client %d: still here" % b_id, "B's line", 10 * SLOW)
        stop_chat(srv, out, signal.SIGINT, (a, b, c))
        print(f"chat: {n} lines to two readers, the client that never read dropped after {got} bytes: ok")
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait()
    chat_sigterm(prog)


def chat_sigterm(prog):
    srv, out, port = start_chat(prog)
    try:
        a = Lines(port)
        a.wait_for(lambda ls: ls and ls[0].startswith(b"welcome"), "the welcome", 10 * SLOW)
        stop_chat(srv, out, signal.SIGTERM, (a,))
        print("chat: SIGTERM with a client connected: a clean shutdown: ok")
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait()


class Counting(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    lock = threading.Lock()
    now = 0
    most = 0

    def log_message(self, *args):
        pass

    silent = threading.Event()  # a request for /silent came

    def do_GET(self):
        if self.path == "/silent":
            Counting.silent.set()
            time.sleep(60)
            return
        with Counting.lock:
            Counting.now += 1
            Counting.most = max(Counting.most, Counting.now)
        time.sleep(0.1)
        with Counting.lock:
            Counting.now -= 1
        n = int(self.path.strip("/").split("/")[-1] or "0")
        body = bytes((i * 7 + n) % 256 for i in range(n * 1000))
        self.send_response(200)
        if self.path.startswith("/chunked/"):
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")
            self.end_headers()
            for i in range(0, len(body), 777):
                part = body[i:i + 777]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
        self.close_connection = True


def fetcher(prog):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Counting)
    server.daemon_threads = True
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    closed = free_port()
    base = f"http://127.0.0.1:{port}"
    targets = [f"{base}/{n}" for n in range(1, 9)] + [f"{base}/chunked/5", f"{base}/silent",
                                                       f"http://127.0.0.1:{closed}/"]
    timeout_ms = 1500 * SLOW
    r = subprocess.run(WRAPPER + [prog, "-c", "3", "-t", str(timeout_ms)] + targets, capture_output=True,
                       text=True, timeout=120 * SLOW)
    lines = r.stdout.splitlines()
    want = [f"GET {base}/{n} -> 200, {n * 1000} bytes" for n in range(1, 9)]
    want += [f"GET {base}/chunked/5 -> 200, 5000 bytes", f"GET {base}/silent -> TimeoutError",
             f"GET http://127.0.0.1:{closed}/ -> ConnectionRefusedError: [Errno 111] Connect call failed "
             f"('127.0.0.1', {closed})", "11 requests: 9 ok, 2 failed"]
    if lines != want:
        fail("fetcher printed:\n" + r.stdout + r.stderr + "\nwanted:\n" + "\n".join(want))
    if r.returncode != 1:
        fail(f"fetcher exited {r.returncode} with failed requests")
    if Counting.most > 3:
        fail(f"{Counting.most} requests in flight, over the limit of 3")
    if Counting.most < 2:
        fail(f"never more than {Counting.most} request in flight: not concurrent")
    Counting.most = 0
    r = subprocess.run(WRAPPER + [prog, "-c", "2", "-n", "3", str(port)], capture_output=True, text=True,
                       timeout=120 * SLOW)
    if r.returncode != 0 or r.stdout.splitlines()[-1] != "3 requests: 3 ok, 0 failed":
        fail("fetcher with every request answered:\n" + r.stdout + r.stderr)
    # SIGINT while the silent request waits (60 s of timeout left; one
    # request at a time, so /1 is done by then): it is cancelled at once,
    # and reported
    Counting.silent.clear()
    p = subprocess.Popen(WRAPPER + [prog, "-c", "1", "-t", "60000", f"{base}/1", f"{base}/silent"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if not Counting.silent.wait(30 * SLOW):
            fail("the fetcher never asked for /silent")
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30 * SLOW)
    except subprocess.TimeoutExpired:
        p.kill()
        fail("the fetcher did not stop on SIGINT")
    want = [f"GET {base}/1 -> 200, 1000 bytes", f"GET {base}/silent -> CancelledError",
            "2 requests: 1 ok, 1 failed"]
    if out.splitlines() != want or p.returncode != 1 or \
            f"signal {int(signal.SIGINT)}: cancelling the requests in flight" not in err:
        fail(f"fetcher on SIGINT exited {p.returncode}, printed:\n{out}{err}\nwanted:\n" + "\n".join(want))
    server.shutdown()
    print(f"fetcher: 11 requests, at most {3} in flight, a timeout and a refusal reported: ok")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("chat", "fetcher"):
        print(__doc__)
        sys.exit(2)
    {"chat": chat, "fetcher": fetcher}[sys.argv[1]](sys.argv[2])
