# Twin of test_loop timers: the virtual clock, call_later/call_at order
# (equal deadlines first in, first out), cancelled handles, sleeps.
import asyncio, vloop

def say(what):
    print(vloop.ms(), what)

async def napper(name, ms):
    await asyncio.sleep(ms / 1000)
    say(name + " woke")

async def main():
    loop = asyncio.get_running_loop()
    say("start")
    loop.call_later(0.030, say, "c30")
    loop.call_later(0.010, say, "a10")
    h = loop.call_later(0.020, say, "cancelled")
    loop.call_later(0.010, say, "b10")
    loop.call_at(loop.time() + 0.020, say, "d20")
    h.cancel()
    loop.call_soon(say, "soon")
    tasks = [asyncio.create_task(napper(n, ms)) for n, ms in (("n25", 25), ("n5", 5), ("n25b", 25))]
    await asyncio.sleep(0.040)
    say("main after 40")
    for t in tasks:
        await t
    await asyncio.sleep(3600)
    say("an hour later")

vloop.run(main())
print("done")
