#!/usr/bin/env python3
"""http-hello on two loops (make test: example_http_server_loops).

    http_loops.py [EMULATOR...] PROG

Starts `PROG PORT 0.5 2` (idle timeout 0.5 s, two loops, each with a
listener of its own on PORT, SO_REUSEPORT), then, as real clients over
loopback: 40 keep-alive connections at once (spread over both loops by the
kernel), each sending 10 batches of 3 pipelined requests, every answer
checked; a head over 8 KiB gets 431 and the connection closed, a head cut
short by the peer's end is not answered; a connection left idle is closed
by its loop after the timeout;
SIGTERM with clients connected: each sees the end, both loops stop, and
the program prints 'http-hello: stopped' and exits with status 0.
"""
import asyncio
import re
import signal
import socket
import subprocess
import sys
import time

GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def client(port):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(10):
        w.write(GET * 3)
        got = await asyncio.wait_for(r.readexactly(3 * len(ANSWER)), 10)
        assert got == ANSWER * 3, got
    w.close()
    await w.wait_closed()


async def check(p, port):
    await asyncio.gather(*(client(port) for _ in range(40)))
    # a head over 8 KiB: 431, closed; one cut short by the peer: closed
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"GET / HTTP/1.1\r\n" + b"X-Long: " + b"a" * 9000 + b"\r\n\r\n")
    got = await asyncio.wait_for(r.read(), 5)
    assert got.startswith(b"HTTP/1.1 431 ") and got.endswith(b"\r\n\r\n"), got
    w.close()
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(GET + b"GET / HTTP/1.1\r\nHo")
    w.write_eof()
    assert await asyncio.wait_for(r.read(), 5) == ANSWER
    w.close()
    # idle: closed after the timeout (0.5 s) by the loop that has it
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(GET)
    assert await asyncio.wait_for(r.readexactly(len(ANSWER)), 10) == ANSWER
    t0 = time.monotonic()
    assert await asyncio.wait_for(r.read(), 5) == b""
    idle = time.monotonic() - t0
    assert 0.4 <= idle <= 3, idle
    w.close()
    # SIGTERM with clients connected on both loops
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(8)]
    await asyncio.sleep(0.1)
    p.send_signal(signal.SIGTERM)
    for r, w in conns:
        assert await asyncio.wait_for(r.read(), 10) == b""
        w.close()


def main():
    port = free_port()
    p = subprocess.Popen(sys.argv[1:] + [str(port), "0.5", "2"], stdout=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        if not re.search(r"listening on 127\.0\.0\.1:%d with 2 loops" % port, line):
            sys.exit(f"http_loops: unexpected first line {line!r}")
        asyncio.run(check(p, port))
        out, _ = p.communicate(timeout=10)
        if p.returncode != 0 or "http-hello: stopped" not in out:
            sys.exit(f"http_loops: exit status {p.returncode}, output {out!r}")
    finally:
        if p.poll() is None:
            p.kill()
    print("http_loops: ok")


if __name__ == "__main__":
    main()
