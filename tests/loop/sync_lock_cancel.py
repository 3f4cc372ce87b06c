# Twin of test_loop_sync.c case sync_lock_cancel: cancelled lock waiters
# (A52): before the hand-off, after it (the lock passes to the next
# waiter), and acquire when every waiter is cancelled.
import asyncio
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "sync_twinlib"))
from sync_vloop import run, now, out


async def locker(lock, n):
    try:
        async with lock:
            out(f"{now()} l{n} has lock")
            await asyncio.sleep(5)
    except asyncio.CancelledError:
        out(f"{now()} l{n} cancelled locked={lock.locked()}")
        raise


async def main():
    lock = asyncio.Lock()
    await lock.acquire()
    l1 = asyncio.create_task(locker(lock, 1))
    l2 = asyncio.create_task(locker(lock, 2))
    await asyncio.sleep(0)
    l1.cancel()          # waiting, not yet handed the lock
    lock.release()
    await asyncio.gather(l1, l2, return_exceptions=True)
    out(f"A52: l1 cancelled={l1.cancelled()} locked={lock.locked()}")

    # cancelled after release() handed it the lock, before it ran
    await lock.acquire()
    l3 = asyncio.create_task(locker(lock, 3))
    l4 = asyncio.create_task(locker(lock, 4))
    l5 = asyncio.create_task(locker(lock, 5))
    await asyncio.sleep(0)
    lock.release()       # l3's future gets the result
    l3.cancel()          # before l3 runs
    out(f"{now()} released and cancelled l3, locked={lock.locked()}")
    await asyncio.gather(l3, l4, l5, return_exceptions=True)
    out(f"{now()} l3 cancelled={l3.cancelled()} l4 done={l4.done()} l5 done={l5.done()} locked={lock.locked()}")

    # every waiter cancelled: a new acquire takes the lock at once
    await lock.acquire()
    w = [asyncio.create_task(lock.acquire()) for _ in range(2)]
    await asyncio.sleep(0)
    for t in w:
        t.cancel()
    lock.release()
    out(f"locked={lock.locked()}")
    got = await lock.acquire()
    out(f"acquire with only cancelled waiters -> {got}, locked={lock.locked()}")
    await asyncio.gather(*w, return_exceptions=True)
    out(f"cancelled={[t.cancelled() for t in w]} locked={lock.locked()}")
    lock.release()

    # waiters cancelled by a timer while another holds the lock
    await lock.acquire()

    async def patient(n):
        try:
            await lock.acquire()
            out(f"{now()} p{n} acquired")
            lock.release()
        except asyncio.CancelledError:
            out(f"{now()} p{n} cancelled locked={lock.locked()}")

    ps = [asyncio.create_task(patient(i)) for i in range(3)]
    loop = asyncio.get_running_loop()
    loop.call_later(20, ps[0].cancel)
    loop.call_later(20, ps[2].cancel)
    await asyncio.sleep(30)
    out(f"{now()} releasing")
    lock.release()
    await asyncio.gather(*ps)
    out(f"{now()} end locked={lock.locked()}")


run(main)
