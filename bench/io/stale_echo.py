"""stale_echo.py: a broken echo server, to show that bench_io_load checks
what comes back (ctest bench_io_loadgen_catches_stale_echo).

    python3 bench/io/stale_echo.py PORT

On 127.0.0.1:PORT, it answers each connection's first message correctly
and every later one with the first one's bytes again, as a server that
wrote a stale buffer would: the right length, the wrong content. Runs until
SIGTERM or SIGINT.
"""
import asyncio
import signal
import sys


async def stale(reader, writer):
    first = None
    while True:
        data = await reader.read(65536)
        if not data:
            break
        if first is None:
            first = data
        writer.write(first[:len(data)].ljust(len(data), b"\0"))
        await writer.drain()
    writer.close()


async def main(port):
    server = await asyncio.start_server(stale, "127.0.0.1", port)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
