# Twin of test_loop_sync.c case queue_mixed: producers and consumers on a
# bounded queue, a semaphore around the puts, a lock around the work,
# pseudo-random sleeps (an LCG both sides draw from in the same order only
# if the schedules agree), timers cancelling a consumer and a producer, and
# a shutdown that drains the queue.
import asyncio
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "sync_twinlib"))
from sync_vloop import run, now, out

seed = [12345]


def rnd(n):
    seed[0] = (seed[0] * 1103515245 + 12345) % 2**31
    return (seed[0] >> 16) % n


async def producer(q, sem, n):
    i = 0
    try:
        for i in range(6):
            await asyncio.sleep(rnd(3))
            async with sem:
                await q.put(n * 100 + i)
            out(f"{now()} P{n} put {n * 100 + i} qsize={q.qsize()}")
    except asyncio.CancelledError:
        out(f"{now()} P{n} cancelled at {i} qsize={q.qsize()} sem={sem._value}")
        raise


async def consumer(q, lock, n):
    try:
        while True:
            item = await q.get()
            async with lock:
                out(f"{now()} C{n} got {item}")
                await asyncio.sleep(rnd(2))
            q.task_done()
    except asyncio.CancelledError:
        out(f"{now()} C{n} cancelled qsize={q.qsize()} locked={lock.locked()}")
        raise
    except asyncio.QueueShutDown:
        out(f"{now()} C{n} shut down")


async def main():
    q = asyncio.Queue(3)
    lock = asyncio.Lock()
    sem = asyncio.Semaphore(2)
    ps = [asyncio.create_task(producer(q, sem, n)) for n in range(4)]
    cs = [asyncio.create_task(consumer(q, lock, n)) for n in range(3)]
    loop = asyncio.get_running_loop()
    loop.call_later(7, cs[1].cancel)
    loop.call_later(5, ps[2].cancel)
    loop.call_later(8, ps[1].cancel)
    await asyncio.gather(*ps, return_exceptions=True)
    out(f"{now()} producers done qsize={q.qsize()}")
    q.shutdown()
    await asyncio.gather(*cs, return_exceptions=True)
    out(f"{now()} end qsize={q.qsize()} cancelled={[t.cancelled() for t in cs]} sem={sem._value}")


run(main)
