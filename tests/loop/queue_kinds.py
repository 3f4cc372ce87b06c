# Twin of test_loop_sync.c case queue_kinds: LifoQueue and PriorityQueue
# (integer priorities, and items that compare by a key only, whose ties come
# out in heapq's order).
import asyncio
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "sync_twinlib"))
from sync_vloop import run, now, out


class Item:
    def __init__(self, prio, name):
        self.prio = prio
        self.name = name

    def __lt__(self, other):
        return self.prio < other.prio

    def __repr__(self):
        return f"{self.name}:{self.prio}"


async def main():
    lq = asyncio.LifoQueue()
    for i in range(1, 6):
        lq.put_nowait(i)
    out(f"lifo {[lq.get_nowait() for _ in range(5)]}")

    async def lgetter():
        item = await lq.get()
        out(f"{now()} lifo getter got {item}")

    t = asyncio.create_task(lgetter())
    await asyncio.sleep(2)
    lq.put_nowait(7)
    lq.put_nowait(8)
    await t
    out(f"lifo left {lq.get_nowait()}")

    pq = asyncio.PriorityQueue()
    for i in [5, 1, 4, 1, 3, 9, 2, 6, 5, 3, 5]:
        pq.put_nowait(i)
    out(f"priority ints {[pq.get_nowait() for _ in range(pq.qsize())]}")

    kq = asyncio.PriorityQueue()
    names = "abcdefghijklmnop"
    prios = [2, 1, 2, 0, 1, 2, 0, 1, 2, 2, 1, 0, 1, 2, 0, 1]
    for n, p in zip(names, prios):
        kq.put_nowait(Item(p, n))
        if n in "fk":
            out(f"got {kq.get_nowait()}")
    out(f"priority ties {[kq.get_nowait() for _ in range(kq.qsize())]}")

    # a bounded priority queue: a blocked put
    bq = asyncio.PriorityQueue(2)
    bq.put_nowait(30)
    bq.put_nowait(10)

    async def bput(v):
        await bq.put(v)
        out(f"{now()} put {v}")

    t = asyncio.create_task(bput(20))
    await asyncio.sleep(1)
    out(f"{now()} full={bq.full()} get {bq.get_nowait()}")
    await t
    out(f"{[bq.get_nowait() for _ in range(bq.qsize())]}")


run(main)
