# Twin of test_loop_sync.c case sync_barrier: Barrier wait (indices,
# n_waiting), reset and abort with tasks waiting, a broken barrier.
import asyncio
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "sync_twinlib"))
from sync_vloop import run, now, out, call


async def party(b, n, delay):
    await asyncio.sleep(delay)
    out(f"{now()} p{n} arrives n_waiting={b.n_waiting}")
    try:
        i = await b.wait()
        out(f"{now()} p{n} passes index={i} n_waiting={b.n_waiting}")
    except asyncio.BrokenBarrierError as e:
        out(f"{now()} p{n} raised {e!r} broken={b.broken}")


async def main():
    out(f"parties 0: {call(asyncio.Barrier, 0)}")
    b = asyncio.Barrier(3)
    out(f"parties={b.parties} n_waiting={b.n_waiting} broken={b.broken}")
    await asyncio.gather(*(party(b, i, i) for i in range(3)))
    out(f"{now()} n_waiting={b.n_waiting}")
    # a second round: the barrier is reusable
    await asyncio.gather(*(party(b, i, 3 - i) for i in range(3, 6)))

    # reset with two waiting
    ts = [asyncio.create_task(party(b, i, 1)) for i in range(6, 8)]
    await asyncio.sleep(2)
    out(f"{now()} reset n_waiting={b.n_waiting}")
    await b.reset()
    await asyncio.gather(*ts)
    out(f"{now()} after reset n_waiting={b.n_waiting} broken={b.broken}")
    await asyncio.gather(*(party(b, i, 1) for i in range(8, 11)))

    # abort with one waiting, then a wait on the broken barrier
    t = asyncio.create_task(party(b, 11, 1))
    await asyncio.sleep(2)
    await b.abort()
    await t
    await party(b, 12, 0)
    out(f"{now()} broken={b.broken} n_waiting={b.n_waiting}")

    # a waiter cancelled: it leaves the count, the barrier fills again
    b2 = asyncio.Barrier(2)
    t = asyncio.create_task(party(b2, 13, 0))
    await asyncio.sleep(1)
    out(f"{now()} n_waiting={b2.n_waiting}")
    t.cancel()
    await asyncio.gather(t, return_exceptions=True)
    out(f"{now()} cancelled={t.cancelled()} n_waiting={b2.n_waiting}")
    await asyncio.gather(party(b2, 14, 1), party(b2, 15, 2))


run(main)
