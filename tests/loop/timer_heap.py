# Twin of test_loop timer_heap: many timers with few distinct deadlines
# (ties fire first in, first out), some cancelled while in the middle of
# the heap, some armed by the callbacks that fire: the order is asyncio's,
# (deadline, scheduling order), however the heap is laid out. The callbacks
# arm theirs with call_at on whole ms: vloop's clock carries its tie-breaking
# offsets, which call_later would add to the deadline.
import asyncio, vloop

state = 7

def rnd(n):
    global state
    state = (state * 1103515245 + 12345) & 0xffffffff
    return (state >> 16) % n

def fire(i):
    print(vloop.ms(), i)
    if i % 11 == 0:
        loop = asyncio.get_running_loop()
        loop.call_at((vloop.ms() + rnd(9)) / 1000, fire, 1000 + i)

async def main():
    loop = asyncio.get_running_loop()
    hs = [loop.call_later(rnd(25) / 1000, fire, i) for i in range(600)]
    for i in range(3, 600, 5):
        hs[i].cancel()
    await asyncio.sleep(0.040)
    print(vloop.ms(), "main")

vloop.run(main())
print("done")
