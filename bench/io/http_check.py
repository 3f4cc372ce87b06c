"""http_check.py: checks an HTTP hello server of the I/O benchmarks beyond
what wrk sees (ctest bench_io_http_check_*).

    python3 bench/io/http_check.py SERVER_CMD...

Starts `SERVER_CMD... PORT` on a free port and sends, on one keep-alive
connection, a request, then three pipelined in one write, then one split
inside its final "\\r\\n\\r\\n"; expects exactly one well-formed answer per
request ("HTTP/1.1 200 OK", Content-Length matching the body, the body
"Hello, World!"), then SIGTERM and exit status 0. Exits 1 with what differs.
"""
import re
import signal
import socket
import subprocess
import sys
import time

REQ = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_answers(sock, count):
    """Reads until count answers have come whole; returns their bodies."""
    buf, bodies = b"", []
    sock.settimeout(5)
    while len(bodies) < count:
        m = re.match(rb"HTTP/1\.1 200 OK\r\n((?:[^\r\n]+\r\n)*)\r\n", buf)
        if m:
            length = re.search(rb"(?im)^content-length: *(\d+)\r$", m.group(1) + b"\r")
            if not length:
                sys.exit("http_check: an answer without Content-Length: %r" % m.group(0))
            end = m.end() + int(length.group(1))
            if len(buf) >= end:
                bodies.append(buf[m.end():end])
                buf = buf[end:]
                continue
        elif len(buf) >= 17 and not buf.startswith(b"HTTP/1.1 200 OK\r\n"):
            sys.exit("http_check: not an HTTP/1.1 200 answer: %r" % buf[:80])
        data = sock.recv(65536)
        if not data:
            sys.exit("http_check: connection closed after %d of %d answers" % (len(bodies), count))
        buf += data
    if buf:
        sys.exit("http_check: %d bytes more than %d answers: %r" % (len(buf), count, buf[:80]))
    return bodies


def main():
    port = free_port()
    server = subprocess.Popen(sys.argv[1:] + [str(port)])
    try:
        for _ in range(500):
            try:
                sock = socket.create_connection(("127.0.0.1", port))
                break
            except ConnectionRefusedError:
                time.sleep(0.01)
        else:
            sys.exit("http_check: nothing listens on port %d" % port)
        bodies = []
        sock.sendall(REQ)
        bodies += read_answers(sock, 1)
        sock.sendall(REQ * 3)
        bodies += read_answers(sock, 3)
        sock.sendall(REQ[:-3])
        time.sleep(0.05)
        sock.sendall(REQ[-3:])
        bodies += read_answers(sock, 1)
        sock.close()
        if bodies != [b"Hello, World!"] * 5:
            sys.exit("http_check: bodies %r" % bodies)
    finally:
        server.send_signal(signal.SIGTERM)
        rc = server.wait(timeout=5)
    if rc != 0:
        sys.exit("http_check: the server exited with status %d after SIGTERM" % rc)
    print("http_check: 5 requests (1, 3 pipelined, 1 split) answered; clean exit")


if __name__ == "__main__":
    main()
