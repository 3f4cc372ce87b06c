# Twin of test_loop_sync.c case sync_bound_loop: objects made outside any
# loop bind to the loop they first wait in (mixins._LoopBoundMixin); a wait
# from another loop raises RuntimeError with the object's repr. Uses that
# need no wait never check the loop.
import asyncio
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "sync_twinlib"))
from sync_vloop import run, out, acall

lock = asyncio.Lock()
event = asyncio.Event()
sem = asyncio.Semaphore(1)
cond = asyncio.Condition()
queue = asyncio.Queue()


async def first():
    # each object waits once here, which binds it to this loop
    await lock.acquire()
    t = asyncio.create_task(lock.acquire())
    await asyncio.sleep(0)
    lock.release()
    await t
    lock.release()

    t = asyncio.create_task(event.wait())
    await asyncio.sleep(0)
    event.set()
    await t
    event.clear()

    await sem.acquire()
    t = asyncio.create_task(sem.acquire())
    await asyncio.sleep(0)
    sem.release()
    await t
    sem.release()

    async def cwait():
        async with cond:
            await cond.wait()

    t = asyncio.create_task(cwait())
    await asyncio.sleep(0)
    async with cond:
        cond.notify()
    await t

    t = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait(1)
    await t
    out("first loop done")


async def second():
    # no wait: no check
    await lock.acquire()
    out(f"uncontended acquire in another loop; locked={lock.locked()}")
    out(f"lock: {await acall(lock.acquire())}")
    lock.release()
    out(f"event: {await acall(event.wait())}")
    await sem.acquire()
    out(f"semaphore: {await acall(sem.acquire())}")
    sem.release()
    async with cond:
        out(f"condition: {await acall(cond.wait())}")
    out(f"queue: {await acall(queue.get())}")
    queue.put_nowait(2)
    out(f"queue get with an item: {await queue.get()}")


run(first)
run(second)
