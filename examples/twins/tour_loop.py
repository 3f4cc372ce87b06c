# The Python twin of examples/tour_loop.c, the event-loop half of `make
# demo`: what it prints on CPython 3.13 on a virtual clock is
# examples/expected/tour_loop.txt (the example test compares byte for byte).
#   PYENV_VERSION=3.13.0 python3 examples/twins/tour_loop.py > examples/expected/tour_loop.txt
import asyncio, os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "loop"))
import vloop

# The interleaving, drawn as the seed notes draw it: "-->" where the loop
# handed control to another turn, a space between steps of the same turn.
trace = []
in_turn = False


def step(name, i, n, timed):
    global in_turn
    trace.append(name if not trace else (" " if in_turn else " --> ") + name)
    in_turn = True
    when = f"{vloop.ms():3d} ms  " if timed else ""
    print(f"    {when}{name}: step {i} of {n}")


async def pause(delay):
    """await asyncio.sleep(delay): the end of this task's turn."""
    global in_turn
    in_turn = False
    await asyncio.sleep(delay)


def section(title):
    print(f"\n== {title} ==")


def state(t):
    return "cancelled" if t.cancelled() else "done" if t.done() else "pending"


async def worker(name, steps, per_turn, delay, timed):
    global in_turn
    for i in range(1, steps + 1):
        step(name, i, steps, timed)
        if i % per_turn == 0:
            await pause(delay)
    in_turn = False  # returning ends the turn too
    return name + " result"


async def turns(spec, timed):
    global trace, in_turn
    trace, in_turn = [], False
    tasks = [asyncio.create_task(worker(*s, timed), name=s[0]) for s in spec]
    for t in tasks:
        r = await t
        print(f"  main: await {t.get_name()} -> {r!r} at {vloop.ms()} ms, {t.get_name()} is {state(t)}")
    print("  interleaving: " + "".join(trace))


async def concurrency():
    section("Concurrency: two tasks on one loop")
    print("  Two tasks, one thread, one loop. After each step a task awaits\n"
          "  sleep(0): its turn ends and the loop runs the other.")
    await turns([("task1", 3, 1, 0), ("task2", 3, 1, 0)], False)


async def cooperative():
    section("Cooperative: a task keeps the loop until it awaits")
    print("  task2 now does three steps between awaits; nothing can interrupt it.")
    await turns([("task1", 3, 1, 0), ("task2", 3, 3, 0)], False)


async def sleeping():
    section("Sleep: the clock decides the order")
    print("  task1 sleeps 10 ms after each step, task2 25 ms. The clock is\n"
          "  virtual: it jumps to the next timer, so this takes no real time.")
    await turns([("task1", 3, 1, 0.010), ("task2", 3, 1, 0.025)], True)


async def sleeper():
    try:
        print(f"    {vloop.ms():3d} ms  task2: sleeps for a second")
        await asyncio.sleep(1)
        print("    task2: never printed")
    finally:
        print(f"    {vloop.ms():3d} ms  task2: finally runs while {sys.exception()!r} passes")


async def cancellation():
    section("Cancellation: the finally block runs")
    print("  task.cancel() is close() for a task: CancelledError is raised at the\n"
          "  await where it is suspended, and its cleanup runs.")
    t0 = vloop.ms()
    t = asyncio.create_task(sleeper(), name="task2")
    await asyncio.sleep(0.010)
    print(f"  main: at {vloop.ms() - t0} ms task2.cancel('stop') -> {t.cancel('stop')}, task2 is {state(t)}")
    try:
        await t
    except asyncio.CancelledError as e:
        print(f"  main: await task2 raised {e!r}, task2 is {state(t)}")


async def timeout():
    section("Timeout")
    print("  async with asyncio.timeout(0.015): await asyncio.sleep(1)")
    t0 = vloop.ms()
    try:
        async with asyncio.timeout(0.015):
            await asyncio.sleep(1)
    except TimeoutError as e:
        print(f"  main: {e!r} after {vloop.ms() - t0} ms; its __cause__ is {e.__cause__!r}")


async def failing():
    await pause(0.005)
    print(f"    {vloop.ms():3d} ms  task1: raises ValueError('task1 failed')")
    raise ValueError("task1 failed")


async def group():
    section("TaskGroup whose child fails")
    print("  task1 fails after 5 ms: the group cancels task2 and raises an\n"
          "  ExceptionGroup of the failure when every child is done.")
    t0 = vloop.ms()
    try:
        async with asyncio.TaskGroup() as tg:
            t1 = tg.create_task(failing(), name="task1")
            t2 = tg.create_task(sleeper(), name="task2")
            print("  main: the group's body is over; the group waits for its tasks")
    except ExceptionGroup as e:
        print(f"  main: after {vloop.ms() - t0} ms the group raised {e!r}")
        print(f"  main: task1 is {state(t1)}, task2 is {state(t2)}")


async def main():
    await concurrency()
    await cooperative()
    await sleeping()
    await cancellation()
    await timeout()
    await group()
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    print(f"\ntasks still pending besides main: {len(others)}")


print("cogen loop tour: the seed notes' two tasks again, as tasks on an event loop.")
vloop.run(main())
print("\nEvery outcome above is the one asyncio gives.")
