# Twin of test_loop_sync.c case queue_basic: Queue FIFO, blocking get and
# put, QueueFull/QueueEmpty, task_done/join (A40), sizes.
import asyncio
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "sync_twinlib"))
from sync_vloop import run, now, out, call


async def getter(q, name):
    item = await q.get()
    out(f"{now()} {name} got {item}")


async def putter(q, name, item):
    await q.put(item)
    out(f"{now()} {name} put {item} qsize={q.qsize()}")


async def main():
    q = asyncio.Queue(maxsize=2)
    out(f"maxsize={q.maxsize} qsize={q.qsize()} empty={q.empty()} full={q.full()}")
    q.put_nowait(1)
    q.put_nowait(2)
    out(f"qsize={q.qsize()} empty={q.empty()} full={q.full()}")
    out(f"put_nowait full: {call(q.put_nowait, 3)}")
    a = [q.get_nowait(), q.get_nowait()]
    out(f"nowait FIFO={a}")
    out(f"get_nowait empty: {call(q.get_nowait)}")

    g = [asyncio.create_task(getter(q, f"g{i}")) for i in range(3)]
    await asyncio.sleep(0)
    await q.put(10)
    await q.put(11)
    out(f"{now()} two put, qsize={q.qsize()}")
    await asyncio.sleep(1)
    q.put_nowait(12)
    await asyncio.gather(*g)

    # putters blocked on a full queue, served in order
    q.put_nowait(20)
    q.put_nowait(21)
    p = [asyncio.create_task(putter(q, f"p{i}", 22 + i)) for i in range(3)]
    await asyncio.sleep(5)
    out(f"{now()} full={q.full()} qsize={q.qsize()}")
    for _ in range(5):
        item = await q.get()
        out(f"{now()} get -> {item}")
        await asyncio.sleep(1)
    await asyncio.gather(*p)

    # join waits for task_done of every item put so far (10 puts)
    async def joiner():
        await q.join()
        out(f"{now()} joined")

    j = asyncio.create_task(joiner())
    for i in range(9):
        q.task_done()
    await asyncio.sleep(3)
    out(f"{now()} one task left, joined={j.done()}")
    q.task_done()
    await j
    out(f"join with nothing unfinished -> {await q.join()}")
    out(f"extra task_done: {call(q.task_done)}")

    # unbounded
    u = asyncio.Queue()
    for i in range(100):
        u.put_nowait(i)
    out(f"unbounded qsize={u.qsize()} full={u.full()} maxsize={u.maxsize}")
    s = 0
    while not u.empty():
        s += u.get_nowait()
    out(f"sum={s}")
    n = asyncio.Queue(-3)
    n.put_nowait(1)
    out(f"negative maxsize full={n.full()} maxsize={n.maxsize}")


run(main)
