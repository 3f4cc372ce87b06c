#!/usr/bin/env python3
"""Real clients for the I/O examples over loopback (make test).

    io_examples.py echo [EMULATOR...] PROG      build/examples/echo-server
    io_examples.py http [EMULATOR...] PROG      build/examples/http-hello

Each starts the server on port 0 (it prints the port it got), checks it as
a client would (asyncio streams, byte for byte), checks that the server's
fds come back to their count once the clients are gone, then sends SIGINT
(echo) or SIGTERM (http) while clients are still connected and expects a
clean exit, status 0.
"""
import asyncio
import os
import random
import re
import signal
import subprocess
import sys
import time


def start(argv):
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
    if not m:
        p.kill()
        sys.exit(f"no port in {line!r}")
    return p, int(m.group(1))


def fds(p):
    return len(os.listdir(f"/proc/{p.pid}/fd"))


def wait_fds(p, want, timeout=5.0):
    end = time.monotonic() + timeout
    while fds(p) != want and time.monotonic() < end:
        time.sleep(0.02)
    assert fds(p) == want, f"server fds {fds(p)}, {want} before the clients"


async def signal_with_clients(p, port, sig):
    """SIGTERM (or SIGINT) with clients connected: each sees the end."""
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
    await asyncio.sleep(0.1)
    p.send_signal(sig)
    for r, w in conns:
        assert await asyncio.wait_for(r.read(), 10) == b""
        w.close()


def stop(p):
    """After the signal: a clean exit, status 0."""
    try:
        out, _ = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        sys.exit("the server did not stop on the signal")
    assert p.returncode == 0, f"exit status {p.returncode}"
    assert "stopped" in out, out


async def echo_client(port, seed):
    rnd = random.Random(seed)
    r, w = await asyncio.open_connection("127.0.0.1", port)
    total = rnd.choice([1, 100, 5000, 300000])
    data = bytes(rnd.getrandbits(8) for _ in range(min(total, 4096))) * (total // 4096 + 1)
    data = data[:total]

    async def send():
        i = 0
        while i < len(data):
            k = rnd.randint(1, 70000)
            w.write(data[i:i + k])
            await w.drain()
            i += k
        w.write_eof()

    t = asyncio.create_task(send())
    got = await r.read(-1)  # to the server's close after our EOF
    await t
    w.close()
    await w.wait_closed()
    assert got == data, f"client {seed}: {len(got)} bytes back of {len(data)}"


async def echo_main(port, p, base):
    await asyncio.gather(*(echo_client(port, i) for i in range(60)))
    wait_fds(p, base)
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"still here")
    assert await r.readexactly(10) == b"still here"
    await signal_with_clients(p, port, signal.SIGINT)
    w.close()


async def read_response(r):
    head = await r.readuntil(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:] if l)}
    body = await r.readexactly(int(headers["content-length"]))
    return status, headers, body


GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


async def http_main(port, p, base):
    # keep-alive: two requests on one connection
    r, w = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(2):
        w.write(GET)
        st, h, body = await read_response(r)
        assert (st, body) == (200, b"Hello, World!"), (st, body)
        assert h["content-length"] == "13"
    # pipelining: ten requests at once, a POST with a body among them
    batch = GET * 4 + b"POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc" + GET * 5
    w.write(batch)
    got = [await read_response(r) for _ in range(10)]
    assert [g[0] for g in got] == [200] * 4 + [405] + [200] * 5, [g[0] for g in got]
    assert all(g[2] == b"Hello, World!" for i, g in enumerate(got) if i != 4)
    # Connection: close, then the server closes
    w.write(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert (await read_response(r))[0] == 200
    assert await r.read() == b""
    w.close()
    # HTTP/1.0 without keep-alive: closed after the answer
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"GET / HTTP/1.0\r\n\r\n")
    assert (await read_response(r))[2] == b"Hello, World!"
    assert await r.read() == b""
    w.close()
    # a malformed request: 400, closed
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"GARBAGE\r\n\r\n")
    assert (await read_response(r))[0] == 400
    assert await r.read() == b""
    w.close()
    # idle timeout (0.5 s here): an idle connection is closed
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(GET)
    await read_response(r)
    t0 = time.monotonic()
    assert await asyncio.wait_for(r.read(), 5) == b""
    idle = time.monotonic() - t0
    assert 0.4 <= idle <= 3, idle
    w.close()
    # many keep-alive clients at once
    async def client():
        r, w = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(20):
            w.write(GET * 3)
            for _ in range(3):
                assert (await read_response(r))[2] == b"Hello, World!"
        w.close()
        await w.wait_closed()
    await asyncio.gather(*(client() for _ in range(30)))
    wait_fds(p, base)
    await signal_with_clients(p, port, signal.SIGTERM)


def main():
    kind, prog = sys.argv[1], sys.argv[2:]  # PROG, or EMULATOR... PROG
    argv = prog + ["0"] + (["0.5"] if kind == "http" else [])
    p, port = start(argv)
    try:
        time.sleep(0.3)  # the loop makes its eventfd once it first blocks
        base = fds(p)
        asyncio.run((echo_main if kind == "echo" else http_main)(port, p, base))
        stop(p)
    finally:
        if p.poll() is None:
            p.kill()
    print(f"{kind}: ok")


if __name__ == "__main__":
    main()
