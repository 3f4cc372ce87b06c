# Twin of test_loop_sync.c case queue_cancel: cancelled getters and
# putters lose nothing (A52): cancelled while waiting, or after the item
# or slot was handed to them (it passes to the next in line).
import asyncio
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "sync_twinlib"))
from sync_vloop import run, now, out


async def getter(q, n):
    try:
        item = await q.get()
        out(f"{now()} g{n} got {item}")
    except asyncio.CancelledError:
        out(f"{now()} g{n} cancelled qsize={q.qsize()}")
        raise


async def putter(q, n, item):
    try:
        await q.put(item)
        out(f"{now()} p{n} put {item} qsize={q.qsize()}")
    except asyncio.CancelledError:
        out(f"{now()} p{n} cancelled qsize={q.qsize()}")
        raise


async def main():
    q = asyncio.Queue()
    g = [asyncio.create_task(getter(q, i)) for i in (1, 2)]
    await asyncio.sleep(0)
    g[0].cancel()
    q.put_nowait("item")
    await asyncio.gather(*g, return_exceptions=True)
    out(f"A52: g1 cancelled={g[0].cancelled()} qsize={q.qsize()}")

    # woken by put_nowait, cancelled before it ran: the next getter is woken
    g = [asyncio.create_task(getter(q, i)) for i in (3, 4, 5)]
    await asyncio.sleep(0)
    q.put_nowait("x")
    g[0].cancel()
    await asyncio.gather(*g[:2], return_exceptions=True)
    out(f"{now()} g3 cancelled={g[0].cancelled()} g5 done={g[2].done()} qsize={q.qsize()}")
    q.put_nowait("y")
    await g[2]

    # the same with putters on a full queue
    f = asyncio.Queue(1)
    f.put_nowait("a")
    p = [asyncio.create_task(putter(f, i, f"b{i}")) for i in (1, 2, 3)]
    await asyncio.sleep(0)
    out(f"{now()} get_nowait -> {f.get_nowait()}")
    p[0].cancel()
    await asyncio.gather(*p[:2], return_exceptions=True)
    out(f"{now()} p1 cancelled={p[0].cancelled()} p3 done={p[2].done()} qsize={f.qsize()}")
    item = await f.get()
    out(f"{now()} get -> {item}")
    await p[2]
    item = await f.get()
    out(f"{now()} get -> {item}")

    # getters cancelled by timers, one item for the one left
    g = [asyncio.create_task(getter(q, i)) for i in (6, 7, 8)]
    loop = asyncio.get_running_loop()
    loop.call_later(4, g[0].cancel)
    loop.call_later(4, g[1].cancel)
    await asyncio.sleep(5)
    q.put_nowait("z")
    await asyncio.gather(*g, return_exceptions=True)
    out(f"{now()} cancelled={[t.cancelled() for t in g]} qsize={q.qsize()}")


run(main)
