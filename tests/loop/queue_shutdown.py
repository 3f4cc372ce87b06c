# Twin of test_loop_sync.c case queue_shutdown: Queue.shutdown (3.13):
# blocked putters and getters raise QueueShutDown, items left can still be
# got unless immediate, immediate counts them as done (join returns).
import asyncio
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "sync_twinlib"))
from sync_vloop import run, now, out, call, acall


async def getter(q, n):
    try:
        item = await q.get()
        out(f"{now()} g{n} got {item}")
    except asyncio.QueueShutDown as e:
        out(f"{now()} g{n} raised {e!r}")


async def putter(q, n, item):
    try:
        await q.put(item)
        out(f"{now()} p{n} put {item}")
    except asyncio.QueueShutDown as e:
        out(f"{now()} p{n} raised {e!r}")


async def joiner(q, n):
    await q.join()
    out(f"{now()} j{n} joined")


async def main():
    q = asyncio.Queue(2)
    q.put_nowait("a")
    q.put_nowait("b")
    p = [asyncio.create_task(putter(q, i, f"c{i}")) for i in range(2)]
    await asyncio.sleep(1)
    out(f"{now()} shutdown")
    q.shutdown()
    await asyncio.gather(*p)
    out(f"qsize={q.qsize()} full={q.full()}")
    out(f"put_nowait: {call(q.put_nowait, 'd')}")
    out(f"put: {await acall(q.put('d'))}")
    out(f"get -> {await q.get()}")
    out(f"get_nowait -> {q.get_nowait()}")
    out(f"get empty: {await acall(q.get())}")
    out(f"get_nowait empty: {call(q.get_nowait)}")
    q.task_done()
    q.task_done()
    out(f"join -> {await q.join()}")
    q.shutdown()

    # blocked getters
    q = asyncio.Queue()
    g = [asyncio.create_task(getter(q, i)) for i in range(3)]
    await asyncio.sleep(2)
    out(f"{now()} shutdown")
    q.shutdown()
    await asyncio.gather(*g)

    # immediate: the items are dropped and count as done
    q = asyncio.Queue()
    for x in "xyz":
        q.put_nowait(x)
    j = [asyncio.create_task(joiner(q, i)) for i in range(2)]
    await asyncio.sleep(1)
    out(f"{now()} shutdown immediate, qsize={q.qsize()}")
    q.shutdown(immediate=True)
    out(f"qsize={q.qsize()} empty={q.empty()}")
    await asyncio.gather(*j)
    out(f"get: {await acall(q.get())}")
    out(f"task_done: {call(q.task_done)}")

    # immediate with an item got but not done: join still waits for it
    q = asyncio.Queue()
    for x in "uvw":
        q.put_nowait(x)
    out(f"got {q.get_nowait()}")
    t = asyncio.create_task(joiner(q, 2))
    await asyncio.sleep(1)
    q.shutdown(immediate=True)
    await asyncio.sleep(1)
    out(f"{now()} qsize={q.qsize()} joined={t.done()}")
    q.task_done()
    await t
    out(f"get: {await acall(q.get())}; put: {await acall(q.put('late'))}")

run(main)
