# Twin of test_loop_sync.c case sync_semaphore: Semaphore and
# BoundedSemaphore (A43) with 3.13's wake-up rules: a waiter cancelled
# after it was handed a slot gives it back to the next waiter, locked()
# counts waiters that are not cancelled.
import asyncio
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "sync_twinlib"))
from sync_vloop import run, now, out, call


async def user(sem, n):
    async with sem:
        out(f"{now()} in{n} value={sem._value}")
        await asyncio.sleep(1)
        out(f"{now()} out{n}")


async def taker(sem, n):
    try:
        await sem.acquire()
        out(f"{now()} t{n} acquired value={sem._value}")
    except asyncio.CancelledError:
        out(f"{now()} t{n} cancelled value={sem._value}")
        raise


async def main():
    sem = asyncio.Semaphore(2)
    await asyncio.gather(*(user(sem, i) for i in range(3)))
    out(f"value={sem._value} locked={sem.locked()}")
    out(f"negative: {call(asyncio.Semaphore, -1)}")
    out(f"bounded negative: {call(asyncio.BoundedSemaphore, -1)}")
    b = asyncio.BoundedSemaphore(1)
    out(f"bounded extra release: {call(b.release)}")
    await b.acquire()
    out(f"bounded locked={b.locked()}")
    b.release()
    out(f"bounded release -> value={b._value}")

    # handed a slot, cancelled before it runs: the next waiter gets it
    s = asyncio.Semaphore(0)
    ts = [asyncio.create_task(taker(s, i)) for i in range(3)]
    await asyncio.sleep(0)
    out(f"locked={s.locked()} value={s._value}")
    s.release()
    out(f"after release value={s._value}")
    ts[0].cancel()
    await asyncio.gather(*ts[:2], return_exceptions=True)
    out(f"{now()} t0 cancelled={ts[0].cancelled()} t1 done={ts[1].done()} t2 done={ts[2].done()} value={s._value}")

    # a waiter cancelled while waiting: locked() looks past it
    s.release()
    await ts[2]
    t = asyncio.create_task(taker(s, 3))
    await asyncio.sleep(0)
    t.cancel()
    out(f"value={s._value} locked with a cancelled waiter={s.locked()}")
    s.release()
    out(f"value={s._value} locked={s.locked()}")
    await asyncio.gather(t, return_exceptions=True)
    out(f"value={s._value} locked={s.locked()}")

    # two releases hand two slots in order, the third waiter waits on
    await s.acquire()
    out(f"main acquired value={s._value}")
    ts = [asyncio.create_task(taker(s, i)) for i in range(4, 7)]
    await asyncio.sleep(0)
    s.release()
    s.release()
    out(f"two releases value={s._value} locked={s.locked()}")
    await asyncio.gather(*ts[:2])
    out(f"{now()} t6 done={ts[2].done()}")
    s.release()
    await ts[2]
    out(f"{now()} value={s._value} locked={s.locked()}")


run(main)
