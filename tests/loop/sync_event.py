# Twin of test_loop_sync.c case sync_event: Event (A41), set then clear
# before the waiters run, a cancelled waiter.
import asyncio
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "sync_twinlib"))
from sync_vloop import run, now, out


async def waiter(e, n):
    try:
        r = await e.wait()
        out(f"{now()} w{n}:{r} is_set={e.is_set()}")
    except asyncio.CancelledError:
        out(f"{now()} w{n} cancelled")
        raise


async def main():
    e = asyncio.Event()
    out(f"is_set={e.is_set()}")
    ts = [asyncio.create_task(waiter(e, i)) for i in range(3)]
    await asyncio.sleep(0)
    out(f"{now()} set")
    e.set()
    await asyncio.gather(*ts)
    out(f"wait on set event -> {await e.wait()}")
    e.clear()
    out(f"is_set after clear={e.is_set()}")

    # set then clear before the waiters run: they are released anyway
    ts = [asyncio.create_task(waiter(e, i)) for i in range(3, 5)]
    await asyncio.sleep(0)
    e.set()
    e.clear()
    out(f"{now()} set and cleared")
    await asyncio.gather(*ts)

    # a waiter cancelled by a timer, the others released by a later set
    ts = [asyncio.create_task(waiter(e, i)) for i in range(5, 8)]
    asyncio.get_running_loop().call_later(7, ts[1].cancel)
    await asyncio.sleep(10)
    out(f"{now()} set twice")
    e.set()
    e.set()
    await asyncio.gather(*ts, return_exceptions=True)
    out(f"{now()} cancelled={[t.cancelled() for t in ts]}")


run(main)
