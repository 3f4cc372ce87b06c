# Twin of test_loop_sync.c case sync_condition: Condition wait/notify(n)/
# notify_all, wait_for, misuse, and cancelled waiters (the lock is held
# again when the CancelledError comes out; a notified waiter cancelled
# before it runs passes the notification on).
import asyncio
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "sync_twinlib"))
from sync_vloop import run, now, out, call, acall


async def waiter(c, n):
    async with c:
        try:
            r = await c.wait()
            out(f"{now()} w{n} woke -> {r} locked={c.locked()}")
        except asyncio.CancelledError:
            out(f"{now()} w{n} cancelled locked={c.locked()}")
            raise


async def main():
    c = asyncio.Condition()
    out(f"wait unlocked: {await acall(c.wait())}")
    out(f"notify unlocked: {call(c.notify)}")
    out(f"notify_all unlocked: {call(c.notify_all)}")

    ts = [asyncio.create_task(waiter(c, i)) for i in range(5)]
    await asyncio.sleep(0)
    out(f"locked={c.locked()}")
    async with c:
        c.notify()
        out(f"{now()} notified 1")
    await asyncio.sleep(1)
    async with c:
        c.notify(2)
        out(f"{now()} notified 2")
        await asyncio.sleep(1)
        out(f"{now()} releasing")
    await asyncio.sleep(1)
    async with c:
        c.notify_all()
        out(f"{now()} notified all")
    await asyncio.gather(*ts)

    # wait_for with a predicate
    box = [0]

    async def consumer():
        async with c:
            r = await c.wait_for(lambda: box[0] >= 3 and box[0])
            out(f"{now()} wait_for -> {r}")

    t = asyncio.create_task(consumer())
    for _ in range(4):
        await asyncio.sleep(2)
        async with c:
            box[0] += 1
            out(f"{now()} box={box[0]}")
            c.notify()
    await t

    # cancelled while waiting: the lock is re-acquired first
    ts = [asyncio.create_task(waiter(c, i)) for i in range(5, 7)]
    await asyncio.sleep(0)
    async with c:
        ts[0].cancel()
        await asyncio.sleep(3)
        out(f"{now()} releasing with w5 cancelled")
    await asyncio.sleep(0)
    async with c:
        c.notify()
    await asyncio.gather(*ts, return_exceptions=True)

    # notified, then cancelled before it runs: the next waiter is notified
    ts = [asyncio.create_task(waiter(c, i)) for i in range(7, 10)]
    await asyncio.sleep(0)
    async with c:
        c.notify(1)
        ts[0].cancel()
    await asyncio.gather(*ts[:2], return_exceptions=True)
    out(f"{now()} w7 cancelled={ts[0].cancelled()} w8 done={ts[1].done()} w9 done={ts[2].done()}")
    async with c:
        c.notify_all()
    await ts[2]

    # notified, then cancelled while re-acquiring the lock: it waits for
    # the lock all the same, then raises and notifies the next waiter
    ts = [asyncio.create_task(waiter(c, i)) for i in (10, 11)]
    await asyncio.sleep(0)
    async with c:
        c.notify(1)
        await asyncio.sleep(1)
        ts[0].cancel()
        await asyncio.sleep(1)
        out(f"{now()} releasing with w10 cancelled")
    await asyncio.gather(*ts, return_exceptions=True)
    out(f"{now()} w10 cancelled={ts[0].cancelled()} w11 done={ts[1].done()} locked={c.locked()}")

    # a condition on a shared lock
    lock = asyncio.Lock()
    c2 = asyncio.Condition(lock)
    async with lock:
        out(f"shared: c2.locked={c2.locked()}")
    out(f"shared: c2.locked={c2.locked()}")


run(main)
