"""asyncio_server.py: the asyncio and uvloop peers of the I/O benchmarks.

    python3 bench/io/asyncio_server.py PORT [--uvloop] [--http]

An asyncio streams server on 127.0.0.1:PORT, one task per connection, the
shape issue 10 asks of cogen's own servers: `await reader.read()`, then
`writer.write()` and `await writer.drain()`. Without --http it echoes every
byte; with --http it answers "Hello, World!" to every HTTP/1.1 request of
a keep-alive connection (pipelined ones too), as bench/io/server_*.c do.
With --uvloop the same code runs on uvloop's loop (asyncio.Runner with
uvloop.new_event_loop as the loop factory). Runs until SIGTERM or SIGINT,
then closes the server and every connection and exits with status 0.
"""
import argparse
import asyncio
import signal

READ_SIZE = 65536
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n"
            b"Hello, World!")


async def answer_each_read(reader, writer, answer):
    """The connection's task: each read's answer(data) written and drained."""
    try:
        while True:
            data = await reader.read(READ_SIZE)
            if not data:
                break
            out = answer(data)
            if out:
                writer.write(out)
                await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def echo(reader, writer):
    await answer_each_read(reader, writer, lambda data: data)


async def hello(reader, writer):
    # Requests end with an empty line; a GET has no body. `tail` keeps what
    # follows the last one found (3 bytes at most), so that a "\r\n\r\n"
    # split across reads is found.
    tail = b""

    def answer(data):
        nonlocal tail
        buf = tail + data
        n = buf.count(b"\r\n\r\n")
        tail = (buf[buf.rfind(b"\r\n\r\n") + 4:] if n else buf)[-3:]
        return RESPONSE * n

    await answer_each_read(reader, writer, answer)


async def serve(port, handler):
    conns = set()

    async def tracked(reader, writer):
        task = asyncio.current_task()
        conns.add(task)
        try:
            await handler(reader, writer)
        finally:
            conns.discard(task)

    # backlog 1024: 1,000 connections arrive at once (asyncio's default is 100).
    server = await asyncio.start_server(tracked, "127.0.0.1", port, backlog=1024)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
    for task in list(conns):
        task.cancel()
    await asyncio.gather(*conns, return_exceptions=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("port", type=int)
    ap.add_argument("--uvloop", action="store_true")
    ap.add_argument("--http", action="store_true")
    a = ap.parse_args()
    handler = hello if a.http else echo
    if a.uvloop:
        import uvloop
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(serve(a.port, handler))
    else:
        asyncio.run(serve(a.port, handler))


if __name__ == "__main__":
    main()
