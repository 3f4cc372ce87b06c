# Twin of test_loop_sync.c case sync_lock: Lock FIFO hand-off (A42),
# release of an unlocked lock, async with, locked().
import asyncio
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "sync_twinlib"))
from sync_vloop import run, now, out, call


async def user(lock, n):
    async with lock:
        out(f"{now()} u{n} in locked={lock.locked()}")
        await asyncio.sleep(10)
        out(f"{now()} u{n} out")


async def main():
    lock = asyncio.Lock()
    out(f"locked={lock.locked()}")
    out(f"acquire -> {await lock.acquire()}")
    ts = [asyncio.create_task(user(lock, i)) for i in range(3)]
    await asyncio.sleep(0)
    out(f"{now()} release")
    lock.release()
    out(f"locked after release={lock.locked()}")
    await asyncio.gather(*ts)
    out(f"{now()} release unlocked: {call(lock.release)}")
    out(f"locked={lock.locked()}")
    # an uncontended acquire does not suspend
    order = []

    async def other():
        order.append("other")

    t = asyncio.create_task(other())
    await lock.acquire()
    order.append("acquired")
    lock.release()
    await t
    out(f"order={order}")
    # async with releases on an exception
    try:
        async with lock:
            raise ValueError("boom")
    except ValueError as e:
        out(f"body raised {e!r}; locked={lock.locked()}")
    # release inside the body: __aexit__'s release fails, chained
    try:
        async with lock:
            lock.release()
    except RuntimeError as e:
        out(f"exit raised {e!r}")


run(main)
