"""asyncio_bench.py: asyncio's event loop (and uvloop's), the peers of
bench_loop.c, measured the same way and printed in the same format.

    python3 bench/asyncio_bench.py [--uvloop] task_spawn_join [N]
        inside a task: create a task whose coroutine returns at once, await it
    python3 bench/asyncio_bench.py [--uvloop] sleep0_switch [N]
        1,000 tasks (the main one and 999 others) taking turns with
        asyncio.sleep(0); N task steps in all
    python3 bench/asyncio_bench.py [--uvloop] future_wakeup [N]
        two tasks in ping-pong, each awaiting a fresh future the other sets;
        N wake-ups in all
    python3 bench/asyncio_bench.py [--uvloop] queue_handoff [N]
        a producer (the main task) and a consumer task handing items over
        through an asyncio.Queue(1); N items
    python3 bench/asyncio_bench.py [--uvloop] timer_arm_cancel_timeout [N]
        `async with asyncio.timeout(d): pass`, d 1 to 10 ms (bench_loop's
        deadlines), left before the deadline; N scopes
    python3 bench/asyncio_bench.py [--uvloop] rss_tasks [N]
        memory per task suspended in asyncio.sleep(3600), N alive

Everything runs in asyncio.run (with --uvloop: asyncio.Runner with
uvloop.new_event_loop as the loop factory; impl=uvloop). Timings are the
fastest of 100 batches adding up to N, timed with time.perf_counter inside
the main task, as bench_loop.c does; the loop's own overhead (a few ns of
a Python `for`) is not subtracted, which is fair at these costs (microseconds).
"""
import asyncio
import gc
import os
import sys
import time

# The command-line sizes (10k, 2m) as the generator benchmarks read them.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cpython_bench import arg, count_name  # noqa: E402

WARMUP = 10000
BATCHES = 100
TASKS = 1000

IMPL = "asyncio"


def result(bench, value, unit, n, extra=""):
    print("RESULT bench=%s impl=%s value=%.4f unit=%s n=%d%s"
          % (bench, IMPL, value, unit, n, (" " + extra) if extra else ""), flush=True)


def batches(n):
    base = n // BATCHES
    for b in range(BATCHES):
        m = n - base * (BATCHES - 1) if b == BATCHES - 1 else base
        if m > 0:
            yield m


async def fastest_batch(n, run):
    """Seconds per operation of the fastest batch: run(m) awaits m
    operations, for each batch of batches(n) (0.0 when n is 0)."""
    clock = time.perf_counter
    best = None
    for m in batches(n):
        t0 = clock()
        await run(m)
        t = (clock() - t0) / m
        best = t if best is None or t < best else best
    return best or 0.0


async def returns_at_once():
    return 1


async def task_spawn_join(n):
    create_task = asyncio.create_task
    for _ in range(WARMUP):
        await create_task(returns_at_once())
    clock = time.perf_counter
    best = None
    for m in batches(n):
        t0 = clock()
        for _ in range(m):
            await create_task(returns_at_once())
        t = (clock() - t0) / m
        best = t if best is None or t < best else best
    result("task_spawn_join", (best or 0.0) * 1e9, "ns", n)


async def sleep0_switch(n):
    stop = False

    async def sleeper():
        while not stop:
            await asyncio.sleep(0)

    others = [asyncio.create_task(sleeper()) for _ in range(TASKS - 1)]
    sleep = asyncio.sleep
    for _ in range(WARMUP // TASKS + 10):
        await sleep(0)
    rounds = n // TASKS
    clock = time.perf_counter
    best = None
    for m in batches(rounds):
        t0 = clock()
        for _ in range(m):
            await sleep(0)
        t = (clock() - t0) / m
        best = t if best is None or t < best else best
    stop = True
    await asyncio.gather(*others)
    result("sleep0_switch", (best or 0.0) * 1e9 / TASKS, "ns", rounds * TASKS, "tasks=%d" % TASKS)


async def future_wakeup(n):
    loop = asyncio.get_running_loop()
    slot = [None, None]
    stop = False

    async def turn(side):
        mine = loop.create_future()
        slot[side] = mine
        other = slot[1 - side]
        if other is not None and not other.done():
            other.set_result(None)
        await mine

    async def partner():
        while not stop:
            await turn(1)

    p = asyncio.create_task(partner())
    for _ in range(WARMUP):
        await turn(0)
    turns = n // 2
    clock = time.perf_counter
    best = None
    for m in batches(turns):
        t0 = clock()
        for _ in range(m):
            await turn(0)
        t = (clock() - t0) / m
        best = t if best is None or t < best else best
    stop = True
    slot[1].set_result(None)
    await p
    result("future_wakeup", (best or 0.0) * 1e9 / 2, "ns", turns * 2)


async def queue_handoff(n):
    q = asyncio.Queue(1)

    async def consumer():
        get = q.get
        while await get() is not None:
            pass

    c = asyncio.create_task(consumer())
    put = q.put

    async def puts(m):
        for _ in range(m):
            await put(1)

    await puts(WARMUP)
    best = await fastest_batch(n, puts)
    await put(None)
    await c
    result("queue_handoff", best * 1e9, "ns", n, "maxsize=1")


# bench/common.h's next_deadline_ms: the same seed and formula, so that
# every implementation arms the same deadlines.
TIMER_SPAN_MS = 10
_rng_state = 42


def next_deadline_ms():
    global _rng_state
    _rng_state = (_rng_state * 1103515245 + 12345) & 0xffffffff
    return (_rng_state >> 16) % (TIMER_SPAN_MS + 1)


async def timer_arm_cancel_timeout(n):
    timeout = asyncio.timeout

    async def scopes(m):
        for _ in range(m):
            async with timeout((1 + next_deadline_ms() % TIMER_SPAN_MS) / 1000):
                pass

    await scopes(WARMUP)
    best = await fastest_batch(n, scopes)
    result("timer_arm_cancel_timeout", best * 1e9, "ns", n, "api=asyncio.timeout")
    await asyncio.sleep((TIMER_SPAN_MS + 1) / 1000)


def read_mem():
    rss = pte = None
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmPTE:"):
                pte = int(line.split()[1])
    return rss, pte


async def rss_tasks(n):
    async def long_sleeper():
        await asyncio.sleep(3600)

    bench = "rss_tasks_" + count_name(n)
    gc.disable()
    probe = asyncio.create_task(long_sleeper())
    await asyncio.sleep(0)
    probe.cancel()
    await asyncio.sleep(0)
    create_task = asyncio.create_task
    tasks = [None] * n  # asyncio keeps only weak references to its tasks
    rss0, pte0 = read_mem()
    for i in range(n):
        tasks[i] = create_task(long_sleeper())
    await asyncio.sleep(0)  # every task has run to its sleep
    rss1, pte1 = read_mem()
    result(bench, (rss1 - rss0) / n if n else 0.0, "kib", n)
    result(bench + "_pte", (pte1 - pte0) / n if n else 0.0, "kib", n)
    if n > 100000:  # as bench_loop: no million cancellations at the end
        sys.stdout.flush()
        os._exit(0)


BENCHES = {
    "task_spawn_join": (task_spawn_join, 1000000),
    "sleep0_switch": (sleep0_switch, 10000000),
    "future_wakeup": (future_wakeup, 2000000),
    "queue_handoff": (queue_handoff, 200000),
    "timer_arm_cancel_timeout": (timer_arm_cancel_timeout, 1000000),
    "rss_tasks": (rss_tasks, 100000),
}


def main():
    global IMPL
    args = sys.argv[1:]
    factory = None
    if args and args[0] == "--uvloop":
        import uvloop
        IMPL = "uvloop"
        factory = uvloop.new_event_loop
        del sys.argv[1]
        args = args[1:]
    if not args or args[0] not in BENCHES:
        sys.exit(__doc__)
    fn, default = BENCHES[args[0]]
    coro = fn(arg(2, default))
    if factory is None:
        asyncio.run(coro)
    else:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(coro)


if __name__ == "__main__":
    main()
