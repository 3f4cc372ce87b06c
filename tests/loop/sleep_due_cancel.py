# Twin of test_loop sleep_due_cancel: a sleep cancelled in the window
# between its timer coming up and the timer's callback running (on the real
# clock: main's step, queued before the timers came due, runs first in that
# iteration). The sleep's future is cancelled, so the task's wake-up goes to
# the end of the ready queue, between the callbacks scheduled before and
# after the cancel; the timer's callback then finds the future cancelled.
# t2's timer came up in the same iteration and is not cancelled: it wakes
# after everything main scheduled.
import asyncio, time

async def sleeper(name):
    try:
        await asyncio.sleep(0.15)
        print(name, "woke")
    except asyncio.CancelledError as e:
        print(name, "cancelled", repr(e))

async def main():
    loop = asyncio.get_running_loop()
    t1 = asyncio.create_task(sleeper("t1"))
    t2 = asyncio.create_task(sleeper("t2"))
    t3 = asyncio.create_task(sleeper("t3"))
    await asyncio.sleep(0)  # the three arm their timers
    time.sleep(0.3)  # their deadlines pass while main runs
    await asyncio.sleep(0)  # the timers come up behind main's step
    loop.call_soon(print, "a")
    print("cancel t1", t1.cancel("late"))
    loop.call_soon(print, "b")
    print("cancel t3", t3.cancel())
    print("cancel t1 again", t1.cancel("again"))
    await asyncio.sleep(0)
    print("main")
    await t1
    await t2
    await t3
    print("t1", t1.cancelled(), "t2", t2.cancelled(), "t3", t3.cancelled())
    return "ok"

print("run ->", asyncio.run(main()))
