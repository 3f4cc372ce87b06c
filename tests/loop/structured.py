#!/usr/bin/env python3
"""structured.py: the asyncio programs whose output tests/test_loop_structured.c
must print, case by case (exception groups, gather, shield, wait, wait_for,
as_completed, timeout, TaskGroup; rules A32-A39 and A55).

    PYENV_VERSION=3.13.0 python3 tests/loop/structured.py CASE > tests/loop/structured.CASE.expected
    sh tests/loop/regen.sh        # every case

Run with CPython 3.13. The loop has a virtual clock counted in
milliseconds (asyncio.sleep(10) is 10 ms; time only moves when nothing is
ready, straight to the next timer), as cogen's CG_LOOP_VIRTUAL_CLOCK; tasks
are named Task-1 (the main one), Task-2, ... per loop; a TaskGroup goes
over its tasks in creation order (asyncio's is a set), as the C helpers do.
Each line is "TIME TASK: TEXT"; exceptions print as repr with their
__context__ chain: "TimeoutError() <- CancelledError()".
"""
import asyncio
import sys

import vloop


class VirtualLoop(vloop.VirtualLoop):
    """The virtual clock in milliseconds (vloop.py), with tasks named
    Task-1, Task-2, ... per loop and the cases' exception handler."""

    def __init__(self):
        super().__init__(ms=True)
        self._unnamed = 0
        self.set_exception_handler(handler)

    def create_task(self, coro, *, name=None, context=None):
        if name is None:
            self._unnamed += 1
            name = f"Task-{self._unnamed}"
        return super().create_task(coro, name=name, context=context)


class OrderedSet:
    def __init__(self):
        self._d = {}

    def add(self, x):
        self._d[x] = None

    def discard(self, x):
        self._d.pop(x, None)

    def __len__(self):
        return len(self._d)

    def __bool__(self):
        return bool(self._d)

    def __iter__(self):
        return iter(list(self._d))


class TaskGroup(asyncio.TaskGroup):
    def __init__(self):
        super().__init__()
        self._tasks = OrderedSet()


def X(e):
    """repr of an exception and its __context__ chain."""
    if e is None:
        return "None"
    parts = []
    while e is not None and len(parts) < 16:
        parts.append(repr(e))
        e = e.__context__
    return " <- ".join(parts)


def log(text):
    loop = asyncio.get_running_loop()
    t = asyncio.current_task()
    print(f"{int(loop.time())} {t.get_name() if t else '-'}: {text}")


def handler(loop, ctx):
    print(f"{int(loop.time())} handler: {ctx['message']} {X(ctx.get('exception'))}")


def run(main):
    with asyncio.Runner(loop_factory=VirtualLoop) as r:
        try:
            v = r.run(main())
            print(f"run -> {v}")
        except BaseException as e:
            print(f"run -> raised {X(e)}")


async def steps(n, v=None):
    for _ in range(n):
        await asyncio.sleep(0)
    return v


async def fail(n, exc):
    for _ in range(n):
        await asyncio.sleep(0)
    raise exc


async def sleeper(ms, v=None):
    await asyncio.sleep(ms)
    return v


def names(fs, order):
    return "[" + ", ".join(order[f] for f in sorted(fs, key=lambda f: list(order).index(f))) + "]"


# ---------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------

def groups():
    def t(label, f):
        try:
            print(f"{label} -> {X(f())}")
        except BaseException as e:
            print(f"{label} -> raised {X(e)}")
    t("new", lambda: BaseExceptionGroup("m", [ValueError("a"), KeyError("b")]))
    t("base", lambda: BaseExceptionGroup("m", [ValueError("a"), KeyboardInterrupt()]))
    t("nest", lambda: ExceptionGroup("m", [ValueError("a"), KeyboardInterrupt()]))
    t("empty", lambda: ExceptionGroup("m", []))
    t("nomsg", lambda: ExceptionGroup(None, [ValueError()]))
    t("noexc", lambda: ExceptionGroup("m", [ValueError(), None]))
    t("quote", lambda: ExceptionGroup("it's", [ValueError("q'\"")]))
    eg = ExceptionGroup("outer", [ValueError("a"), ExceptionGroup("inner", [KeyError("b"), ValueError("c")]),
                                  TypeError("d")])
    eg.__context__ = OSError("ctx")
    for ty in (ValueError, LookupError, ExceptionGroup, OSError, BaseException):
        m, r = eg.split(ty)
        print(f"split {ty.__name__} -> {X(m)} | {X(r)} | whole={m is eg}")
    print(f"subgroup KeyError -> {X(eg.subgroup(KeyError))}")
    beg = BaseExceptionGroup("b", [ValueError(), KeyboardInterrupt()])
    m, r = beg.split(KeyboardInterrupt)
    print(f"split base -> {X(m)} | {X(r)}")
    print(f"count={len(eg.exceptions)} at1={X(eg.exceptions[1])}")
    one = ExceptionGroup("one", [ValueError("x")])
    print(f"single={X(one.exceptions[0] if len(one.exceptions) == 1 else None)} "
          f"none={X(eg.exceptions[0] if len(eg.exceptions) == 1 else None)}")
    for g in (eg, beg):
        try:
            raise g
        except Exception as e:
            print(f"except Exception: {type(e).__name__}")
        except BaseExceptionGroup as e:
            print(f"except BaseExceptionGroup: {type(e).__name__}")
    print(f"isinstance: {isinstance(eg, BaseExceptionGroup)} {isinstance(eg, Exception)} "
          f"{isinstance(beg, Exception)} {isinstance(beg, ExceptionGroup)}")


def shield():
    # A32, and a shielded task failing after its waiter was cancelled
    async def inner():
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return "inner done"

    async def outer(t):
        return await asyncio.shield(t)

    async def main():
        it = asyncio.create_task(inner())
        o = asyncio.create_task(outer(it))
        await asyncio.sleep(0)
        o.cancel()
        try:
            await o
        except asyncio.CancelledError as e:
            log(f"outer -> raised {X(e)}")
        log(f"inner -> {await it} cancelled={it.cancelled()}")
        bad = asyncio.create_task(fail(2, ValueError("late")))
        s = asyncio.shield(bad)
        await asyncio.sleep(0)
        s.cancel()
        try:
            await s
        except asyncio.CancelledError as e:
            log(f"shield -> raised {X(e)}")
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        log(f"bad done={bad.done()}")
        done = asyncio.get_running_loop().create_future()
        done.set_result("now")
        log(f"shield(done) is done: {asyncio.shield(done) is done}")
        s2 = asyncio.shield(asyncio.create_task(sleeper(5, "slept")))
        log(f"shield(sleeper) -> {await s2}")
        bad = None
        return "ok"
    run(main)


def gather():
    # A33: argument order, the first error, siblings not cancelled,
    # return_exceptions
    async def main():
        g = asyncio.gather(asyncio.create_task(steps(3, "slow")), asyncio.create_task(steps(0, "fast")))
        log(f"gather -> {await g}")
        slow = asyncio.create_task(steps(5, "sibling"))
        try:
            await asyncio.gather(slow, fail(1, ValueError("bad")))
        except ValueError as e:
            log(f"gather -> raised {X(e)}")
        log(f"sibling done={slow.done()} cancelled={slow.cancelled()}")
        log(f"sibling -> {await slow}")
        r = await asyncio.gather(steps(0, 1), fail(1, ValueError("bad")), return_exceptions=True)
        log(f"return_exceptions -> {[X(x) if isinstance(x, BaseException) else x for x in r]}")
        f = asyncio.get_running_loop().create_future()
        r = await asyncio.gather(f, f, sleeper(3, "three")) if f.set_result("twice") is None else None
        log(f"duplicate -> {r}")
        log(f"empty -> {await asyncio.gather()}")
        return "ok"
    run(main)


def gather_cancel():
    # A34, and the corner of a cancel message under return_exceptions
    async def main():
        c1 = asyncio.create_task(sleeper(10))
        c2 = asyncio.create_task(sleeper(10))
        g = asyncio.gather(c1, c2)
        await asyncio.sleep(0)
        log(f"cancel -> {g.cancel()}")
        try:
            await g
        except asyncio.CancelledError as e:
            log(f"gather.cancel(): awaiter raised {X(e)} children cancelled={c1.cancelled()},{c2.cancelled()}")
        d1 = asyncio.create_task(sleeper(10))
        d2 = asyncio.create_task(sleeper(10))
        g2 = asyncio.gather(d1, d2)
        await asyncio.sleep(0)
        d1.cancel()
        try:
            await g2
        except asyncio.CancelledError as e:
            log(f"child cancelled: awaiter raised {X(e)} other running={not d2.done()}")
        d2.cancel("why")
        r3 = await asyncio.gather(d2, return_exceptions=True)
        log(f"return_exceptions on a cancelled child -> {[X(x) for x in r3]}")
        try:
            await d2
        except asyncio.CancelledError as e:
            log(f"first await of the child -> raised {X(e)}")
        try:
            d2.result()
        except asyncio.CancelledError as e:
            log(f"then result() -> raised {X(e)}")
        g3 = asyncio.gather(steps(1, "x"))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        log(f"cancel a finished gather -> {g3.cancel()} result={await g3}")
        t = asyncio.create_task(sleeper(10))
        outer = asyncio.create_task(waiter(asyncio.gather(t)))
        await asyncio.sleep(0)
        outer.cancel("stop")
        try:
            await outer
        except asyncio.CancelledError as e:
            log(f"task awaiting gather cancelled -> raised {X(e)} child cancelled={t.cancelled()}")
        return "ok"

    async def waiter(g):
        return await g
    run(main)


def wait():
    # A35 and A55
    async def main():
        for rw in (asyncio.FIRST_COMPLETED, asyncio.FIRST_EXCEPTION, asyncio.ALL_COMPLETED):
            ts = {asyncio.create_task(steps(1, "v1")): "v1",
                  asyncio.create_task(fail(3, ValueError("bad"))): "bad3",
                  asyncio.create_task(steps(6, "v6")): "v6"}
            done, pending = await asyncio.wait(ts, return_when=rw)
            log(f"{rw}: done={names(done, ts)} pending={names(pending, ts)}")
            for t in ts:
                t.cancel()
            await asyncio.gather(*ts, return_exceptions=True)
        ts = {asyncio.create_task(sleeper(5)): "s5", asyncio.create_task(sleeper(20)): "s20"}
        done, pending = await asyncio.wait(ts, timeout=10)
        log(f"timeout 10: done={names(done, ts)} pending={names(pending, ts)}")
        done, pending = await asyncio.wait(ts, timeout=-5)
        log(f"timeout -5: done={names(done, ts)} pending={names(pending, ts)}")
        done, pending = await asyncio.wait(ts, return_when=asyncio.FIRST_EXCEPTION)
        log(f"FIRST_EXCEPTION, none fails: done={names(done, ts)} pending={names(pending, ts)}")
        try:
            await asyncio.wait([])
        except BaseException as e:
            log(f"wait([]) -> raised {X(e)}")
        try:
            await asyncio.wait(list(ts), return_when=7)
        except BaseException as e:
            log(f"wait(return_when=7) -> raised {X(e)}")
        # A55's other half, wait([coroutine]) -> TypeError('Passing
        # coroutines is forbidden, use tasks explicitly.'), has no C
        # counterpart: cg_wait takes futures only
        return "ok"
    run(main)


def taskgroup():
    # A36: one failure cancels the siblings and the body; the group raises
    # an ExceptionGroup whose __context__ is the body's CancelledError
    log_ = []

    async def long():
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            log("long cancelled")
            raise

    async def main():
        try:
            async with TaskGroup() as tg:
                tg.create_task(long())
                tg.create_task(fail(1, ValueError("bad")))
                try:
                    await asyncio.sleep(10)
                except asyncio.CancelledError:
                    log("body cancelled")
                    try:
                        tg.create_task(steps(0))
                    except RuntimeError as e:
                        log(f"create_task -> raised {X(e)}")
                    raise
        except BaseException as e:
            log(f"group -> raised {X(e)} str={str(e)!r}")
            log(f"cancelling={asyncio.current_task().cancelling()}")
        async with TaskGroup() as tg:
            a = tg.create_task(sleeper(3, "a"))
            b = tg.create_task(steps(2, "b"), name="bee")
            log(f"spawned {a.get_name()} {b.get_name()}")
        log(f"all done: {a.result()} {b.result()}")
        try:
            tg.create_task(steps(0))
        except RuntimeError as e:
            log(f"after exit -> raised {X(e)}")
        tg2 = TaskGroup()
        try:
            tg2.create_task(steps(0))
        except RuntimeError as e:
            log(f"not entered -> raised {X(e)}")
        try:
            async with TaskGroup() as tg:
                tg.create_task(fail(1, KeyError("k")))
                tg.create_task(fail(2, ValueError("v")))
                raise TypeError("body")
        except BaseException as e:
            log(f"body error -> raised {X(e)}")
        try:
            async with TaskGroup() as tg:
                tg.create_task(sleeper(10))
                tg.create_task(fail(1, ValueError("v")))
                raise KeyboardInterrupt()
        except BaseException as e:
            log(f"KeyboardInterrupt in the body -> raised {X(e)}")
        return "ok"
    run(main)


def taskgroup_more():
    # a child failing after the body is over; nested groups; several
    # children failing in one iteration; a child spawning into its group
    async def spawner(tg):
        await asyncio.sleep(1)
        t = tg.create_task(steps(1, "grandchild"), name="gc")
        log(f"spawned {t.get_name()}")
        return "spawner"

    async def inner_group():
        async with TaskGroup() as tg:
            tg.create_task(fail(1, ValueError("deep")))
            await asyncio.sleep(10)

    async def main():
        try:
            async with TaskGroup() as tg:
                tg.create_task(fail(2, KeyError("late")))
                tg.create_task(sleeper(10))
                log("body over")
        except BaseException as e:
            log(f"late child -> raised {X(e)} cancelling={asyncio.current_task().cancelling()}")
        try:
            async with TaskGroup() as tg:
                tg.create_task(inner_group())
                tg.create_task(sleeper(10))
        except BaseException as e:
            log(f"nested -> raised {X(e)}")
            log(f"leaf: {X(e.exceptions[0].exceptions[0])}")
        try:
            async with TaskGroup() as tg:
                tg.create_task(fail(1, ValueError("one")))
                tg.create_task(fail(1, TypeError("two")))
                tg.create_task(fail(1, KeyError("three")))
        except* ValueError as eg:
            log(f"except* ValueError: {X(eg)}")
        except* (TypeError, KeyError) as eg:
            log(f"except* rest: {X(eg)}")
        async with TaskGroup() as tg:
            s = tg.create_task(spawner(tg))
        log(f"spawner -> {s.result()}")
        return "ok"
    run(main)


def taskgroup_cancel():
    # The task running a group is cancelled from outside: the cancellation
    # goes through; with a child error at the same time, the group raises
    # and the task stays cancelled (3.13 re-cancels)
    async def scope(fail_too):
        try:
            async with TaskGroup() as tg:
                tg.create_task(sleeper(10))
                if fail_too:
                    tg.create_task(fail(1, ValueError("child")))
                await asyncio.sleep(10)
        except BaseException as e:
            log(f"scope -> raised {X(e)} cancelling={asyncio.current_task().cancelling()}")
            raise
        return "finished"

    async def main():
        t = asyncio.create_task(scope(False))
        await asyncio.sleep(0)
        t.cancel()
        try:
            await t
        except BaseException as e:
            log(f"outer cancel -> raised {X(e)} cancelled={t.cancelled()}")
        t = asyncio.create_task(scope(True))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        t.cancel()
        try:
            await t
        except BaseException as e:
            log(f"outer cancel + child error -> raised {X(e)} cancelled={t.cancelled()}")

        async def swallow():
            async with TaskGroup() as tg:
                tg.create_task(fail(0, ValueError("x")))
                try:
                    await asyncio.sleep(10)
                except asyncio.CancelledError:
                    log("body swallows the cancel")
            return "no"
        try:
            await swallow()
        except BaseException as e:
            log(f"swallowed body -> raised {X(e)} cancelling={asyncio.current_task().cancelling()}")
        return "ok"
    run(main)


def timeout():
    # A37, A38, reschedule, when, expired, repr
    async def worker():
        async with asyncio.timeout(10):
            await asyncio.sleep(10)

    async def main():
        try:
            async with asyncio.timeout(10) as cm:
                log(f"when={cm.when()}")
                try:
                    await asyncio.sleep(100)
                except asyncio.CancelledError as e:
                    log(f"inner {X(e)}")
                    raise
        except TimeoutError as e:
            log(f"timeout -> raised {X(e)} cause={X(e.__cause__)} expired={cm.expired()} {cm!r}")
        t = asyncio.create_task(worker())
        await asyncio.sleep(0)
        t.cancel()
        try:
            await t
        except BaseException as e:
            log(f"outside cancel -> raised {X(e)} cancelled={t.cancelled()}")
        async with asyncio.timeout(None) as cm:
            log(f"none: when={cm.when()} {cm!r}")
            cm.reschedule(asyncio.get_running_loop().time() + 50)
            log(f"rescheduled: when={cm.when()}")
            await asyncio.sleep(20)
        log(f"expired={cm.expired()} {cm!r}")
        try:
            async with asyncio.timeout_at(asyncio.get_running_loop().time() + 1000) as cm:
                cm.reschedule(asyncio.get_running_loop().time() + 5)
                await asyncio.sleep(30)
        except TimeoutError as e:
            log(f"reschedule earlier -> raised {X(e)}")
        try:
            cm.reschedule(None)
        except RuntimeError as e:
            log(f"reschedule after -> raised {X(e)}")
        c = asyncio.timeout(5)
        try:
            c.reschedule(1)
        except RuntimeError as e:
            log(f"reschedule before -> raised {X(e)}")
        async with c:
            try:
                async with c:
                    pass
            except RuntimeError as e:
                log(f"enter twice -> raised {X(e)}")
        try:
            async with asyncio.timeout(-5):
                await asyncio.sleep(0)
                log("not reached")
        except TimeoutError as e:
            log(f"negative -> raised {X(e)}")
        return "ok"
    run(main)


def timeout_corners():
    async def main():
        async with asyncio.timeout(5) as cm:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                log("swallowed")
        log(f"swallowed -> ok expired={cm.expired()} cancelling={asyncio.current_task().cancelling()}")
        try:
            async with asyncio.timeout(5) as outer:
                async with asyncio.timeout(5) as inner:
                    await asyncio.sleep(10)
        except TimeoutError as e:
            log(f"nested same ms -> raised {X(e)} outer={outer.expired()} inner={inner.expired()}")
        try:
            async with asyncio.timeout(5) as outer:
                try:
                    async with asyncio.timeout(3) as inner:
                        await asyncio.sleep(10)
                except TimeoutError as e:
                    log(f"inner first -> raised {X(e)}")
                await asyncio.sleep(10)
        except TimeoutError as e:
            log(f"then outer -> raised {X(e)}")
        async with asyncio.timeout(0) as cm:
            log("no suspension")
        log(f"timeout 0 -> ok expired={cm.expired()}")
        try:
            async with asyncio.timeout(5):
                try:
                    await asyncio.sleep(10)
                except asyncio.CancelledError:
                    raise ValueError("converted")
        except ValueError as e:
            log(f"other error -> raised {X(e)}")
        try:
            async with asyncio.timeout(5):
                try:
                    await asyncio.sleep(10)
                except asyncio.CancelledError:
                    raise ExceptionGroup("eg", [KeyError("k")])
        except ExceptionGroup as e:
            log(f"group -> raised {X(e)} member={X(e.exceptions[0])}")
        try:
            async with asyncio.timeout(5):
                async with TaskGroup() as tg:
                    tg.create_task(sleeper(10))
                    await asyncio.sleep(10)
        except BaseException as e:
            log(f"taskgroup in timeout -> raised {X(e)}")
        try:
            async with asyncio.timeout(5):
                raise KeyError("early")
        except KeyError as e:
            log(f"error before the deadline -> raised {X(e)}")
        return "ok"
    run(main)


def wait_for():
    # A39 and 3.13's wait_for on timeout()
    async def slow():
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            log("slow cancelled")
            raise
        return "slow"

    async def inline(v):
        log("inline body runs in the waiting task")
        await asyncio.sleep(2)
        return v

    async def main():
        t = asyncio.create_task(slow())
        try:
            await asyncio.wait_for(t, 5)
        except TimeoutError as e:
            log(f"wait_for -> raised {X(e)} cause={X(e.__cause__)} inner cancelled={t.cancelled()}")
        t = asyncio.create_task(sleeper(3, "fine"))
        log(f"in time -> {await asyncio.wait_for(t, 5)}")
        log(f"no timeout -> {await asyncio.wait_for(sleeper(3, 'none'), None)}")
        log(f"body -> {await asyncio.wait_for(inline('v'), 5)}")
        f = asyncio.get_running_loop().create_future()
        f.set_result("done")
        log(f"zero on done -> {await asyncio.wait_for(f, 0)}")
        t = asyncio.create_task(slow())
        await asyncio.sleep(0)
        try:
            await asyncio.wait_for(t, 0)
        except TimeoutError as e:
            log(f"zero -> raised {X(e)} cause={X(e.__cause__)} cancelled={t.cancelled()}")
        try:
            await asyncio.wait_for(slow(), -1)
        except TimeoutError as e:
            log(f"negative body -> raised {X(e)}")
        f = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(f, 2)
        except TimeoutError as e:
            log(f"future -> raised {X(e)} cancelled={f.cancelled()}")
        t = asyncio.create_task(fail(1, KeyError("k")))
        try:
            await asyncio.wait_for(t, 5)
        except KeyError as e:
            log(f"error -> raised {X(e)}")

        async def stubborn():
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                return "kept"
        t = asyncio.create_task(stubborn())
        await asyncio.sleep(0)
        log(f"zero, task swallows -> {await asyncio.wait_for(t, 0)}")
        return "ok"
    run(main)


def wait_for_context():
    # wait_for is a coroutine of its own: the TimeoutError its timeout makes
    # of the CancelledError thrown in leaves that frame while the task is
    # resumed by a throw, and is chained again to what the caller's frame
    # handles (the CancelledError stays its __cause__, not chained to it);
    # a timeout block in the caller's own frame keeps the CancelledError
    async def slow():
        await asyncio.sleep(10)
        return "slow"

    async def catches():
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            raise KeyError("k")

    async def inner_catch():
        try:
            await asyncio.wait_for(asyncio.create_task(slow()), 2)
        except TimeoutError as e:
            log(f"inner caught -> {X(e)} cause={X(e.__cause__)}")

    async def inner_pass():
        await asyncio.wait_for(asyncio.create_task(slow()), 2)

    async def main():
        for handling in (False, True):
            for label in ("task", "coro", "catches", "zero", "block", "inner_catch", "inner_pass"):
                try:
                    try:
                        if handling:
                            raise ValueError("v")
                    finally:
                        if label == "task":
                            await asyncio.wait_for(asyncio.create_task(slow()), 2)
                        elif label == "coro":
                            await asyncio.wait_for(slow(), 2)
                        elif label == "catches":
                            await asyncio.wait_for(catches(), 2)
                        elif label == "zero":
                            t = asyncio.create_task(slow())
                            await asyncio.sleep(0)
                            await asyncio.wait_for(t, 0)
                        elif label == "block":
                            t = asyncio.create_task(slow())
                            async with asyncio.timeout(2):
                                await t
                        elif label == "inner_catch":
                            await inner_catch()
                        else:
                            await inner_pass()
                except BaseException as e:
                    log(f"{label} handling={handling} -> {X(e)} cause={X(e.__cause__)}")
        return "ok"
    run(main)


def combos():
    # wait_for cancelled from outside; wait_for around shield; futures
    # already done given to as_completed and wait
    async def waiter_for(t, ms):
        return await asyncio.wait_for(t, ms)

    async def main():
        t = asyncio.create_task(sleeper(10, "inner"))
        w = asyncio.create_task(waiter_for(t, 5))
        await asyncio.sleep(1)
        w.cancel()
        try:
            await w
        except asyncio.CancelledError as e:
            log(f"wait_for cancelled from outside -> raised {X(e)} inner cancelled={t.cancelled()}")
        t = asyncio.create_task(sleeper(10, "shielded"))
        try:
            await asyncio.wait_for(asyncio.shield(t), 5)
        except TimeoutError as e:
            log(f"wait_for(shield) -> raised {X(e)} inner done={t.done()}")
        log(f"shielded -> {await t}")
        f1 = asyncio.get_running_loop().create_future()
        f1.set_result("d1")
        t2 = asyncio.create_task(sleeper(2, "t2"))
        async for f in asyncio.as_completed([t2, f1]):
            log(f"as_completed -> {f.result()}")
        done, pending = await asyncio.wait([f1])
        log(f"wait on a done future -> {len(done)} {len(pending)}")
        t3 = asyncio.create_task(steps(0, "s"))
        r = await asyncio.gather(f1, f1)
        log(f"gather of done children -> {r} without suspending: {not t3.done()}")
        await t3
        return "ok"
    run(main)


def as_completed():
    async def main():
        fs = {asyncio.create_task(sleeper(3, "c")): "c", asyncio.create_task(sleeper(1, "a")): "a",
              asyncio.create_task(sleeper(2, "b")): "b"}
        async for f in asyncio.as_completed(fs):
            log(f"next -> {fs[f]} {f.result()}")
        fs = {asyncio.create_task(sleeper(1, "x")): "x", asyncio.create_task(sleeper(10, "y")): "y",
              asyncio.create_task(sleeper(20, "z")): "z"}
        try:
            async for f in asyncio.as_completed(fs, timeout=5):
                log(f"timed next -> {fs[f]}")
        except TimeoutError as e:
            log(f"timed next -> raised {X(e)}")
        for t in fs:
            t.cancel()
        await asyncio.gather(*fs, return_exceptions=True)
        async for f in asyncio.as_completed([]):
            log("not reached")
        log("empty -> done")
        return "ok"
    run(main)


def misuse():
    async def main():
        for label, fn in (("gather(None)", lambda: asyncio.gather(None)),
                          ("shield(None)", lambda: asyncio.shield(None))):
            try:
                fn()
            except BaseException as e:
                log(f"{label} -> raised {X(e)}")
        try:
            await asyncio.wait_for(None, 1)
        except BaseException as e:
            log(f"wait_for(None) -> raised {X(e)}")
        try:
            await asyncio.wait([None])
        except BaseException as e:
            log(f"wait([None]) -> raised {X(e)}")
        done = asyncio.get_running_loop().create_future()

        def in_callback():
            c = asyncio.timeout(1).__aenter__()
            try:
                c.send(None)
            except BaseException as e:
                print(f"{int(asyncio.get_running_loop().time())} -: timeout in a callback -> raised {X(e)}")
            c = TaskGroup().__aenter__()
            try:
                c.send(None)
            except BaseException as e:
                print(f"{int(asyncio.get_running_loop().time())} -: taskgroup in a callback -> raised {X(e)}")
            done.set_result(None)
        asyncio.get_running_loop().call_soon(in_callback)
        await done
        async with TaskGroup() as tg:
            try:
                async with tg:
                    pass
            except RuntimeError as e:
                log(f"enter twice -> raised {X(e)}")
        return "ok"
    run(main)
    try:
        asyncio.timeout(1)
    except BaseException as e:
        print(f"timeout outside a loop -> raised {X(e)}")


def destroy():
    # A loop closed while tasks are pending reports them, except the tasks
    # gather made for its coroutines; a shield, a gather and a group left
    # pending are freed with the loop
    import gc
    loop = VirtualLoop()

    async def group_body():
        async with TaskGroup() as tg:
            tg.create_task(sleeper(100))

    async def main():
        g = asyncio.gather(sleeper(100), sleeper(100))
        t = asyncio.create_task(sleeper(100))
        s = asyncio.shield(asyncio.create_task(sleeper(100)))
        u = asyncio.create_task(group_body())
        await asyncio.sleep(1)
        log(f"pending: {g.done()} {t.done()} {s.done()} {u.done()}")
        return "ok"
    print(f"run -> {loop.run_until_complete(main())}")
    loop.close()
    gc.collect()
    print("closed")


def retrieved():
    # Who retrieves a child's exception once the outer future of shield or
    # gather is done and dropped: their callbacks on the child, scheduled
    # when it finishes, keep the outer alive (their closure) and call
    # child.exception() whatever the outer's state; shield's callback is
    # removed only if the outer is done while the child is still pending.
    async def main():
        # the inner task's first step raises before shield's outer callback runs
        t = asyncio.create_task(fail(0, ValueError("first step")))
        s = asyncio.shield(t)
        s.cancel()
        s = None
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        log(f"shield, failed first: done={t.done()} unretrieved={t._log_traceback}")
        t = None
        # the inner task fails after the outer's callback removed shield's
        t = asyncio.create_task(fail(2, ValueError("later")))
        s = asyncio.shield(t)
        await asyncio.sleep(0)
        s.cancel()
        s = None
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        log(f"shield, failed later: done={t.done()} unretrieved={t._log_traceback}")
        t = None
        # gather's first failure ends it; the caller drops it; the others fail later
        a = asyncio.create_task(fail(0, KeyError("a")))
        b = asyncio.create_task(fail(0, KeyError("b")))
        c = asyncio.create_task(fail(3, KeyError("c")))
        g = asyncio.gather(a, b, c)
        try:
            await g
        except KeyError as e:
            log(f"gather -> raised {X(e)}")
        g = None
        await asyncio.sleep(5)
        log(f"gather: unretrieved={a._log_traceback} {b._log_traceback} {c._log_traceback}")
        a = b = c = None
        # a gather nobody awaits, dropped while its children run
        a = asyncio.create_task(fail(1, KeyError("x")))
        b = asyncio.create_task(sleeper(2, "y"))
        g = asyncio.gather(a, b, return_exceptions=True)
        g = None
        await asyncio.sleep(5)
        log(f"dropped gather: unretrieved={a._log_traceback} {b._log_traceback}")
        a = b = None
        return "ok"
    run(main)


def timeout_queued():
    # A scope whose timer is due and queued behind the task's own wake-up
    # (another task rescheduled it to now, call_soon): the task reschedules
    # it again before the old callback runs, or leaves it and frees it.
    async def waker(fut, cm):
        fut.set_result(None)          # the owner's wake-up is queued first
        cm.reschedule(asyncio.get_running_loop().time())  # then _on_timeout

    async def main():
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        try:
            async with asyncio.timeout(50) as cm:
                w = asyncio.create_task(waker(fut, cm))
                await fut
                log(f"woken, timer queued: expired={cm.expired()}")
                cm.reschedule(loop.time() + 20)
                log(f"rescheduled: when={cm.when()}")
                await asyncio.sleep(30)
        except TimeoutError as e:
            log(f"rescheduled while queued -> raised {X(e)}")
        await w
        fut = loop.create_future()
        async with asyncio.timeout(50) as cm:
            w = asyncio.create_task(waker(fut, cm))
            await fut
        log(f"left while queued: expired={cm.expired()} {cm!r}")
        await asyncio.sleep(5)
        log(f"not cancelled: cancelling={asyncio.current_task().cancelling()}")
        await w
        fut = loop.create_future()
        try:
            async with asyncio.timeout(50) as cm:
                w = asyncio.create_task(waker(fut, cm))
                await fut
                await asyncio.sleep(0)
                log("not reached")
        except TimeoutError as e:
            log(f"fired from the queue -> raised {X(e)} expired={cm.expired()}")
        await w
        return "ok"
    run(main)


def timeout_lazy():
    # Scopes entered and left by a task in one step, or left after it
    # suspended (cogen's cg_timeout_call puts the timer in the heap only
    # then): the timers fire at the same times, in the same order, as
    # asyncio's, armed at __aenter__.
    async def agen():
        async with asyncio.timeout(50):
            yield 1
            yield 2
        log("agen's scope left")

    async def main():
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        async with asyncio.timeout(5):
            pass
        await asyncio.sleep(10)
        log(f"left at once -> cancelling={task.cancelling()}")
        early = None
        try:
            async with asyncio.timeout(5):
                raise KeyError("early")
        except KeyError as e:
            early = e
        log(f"raised at once -> {X(early)}")
        await asyncio.sleep(10)
        log(f"not fired -> cancelling={task.cancelling()}")
        when = loop.time() + 5
        try:
            async with asyncio.timeout_at(when):
                loop.call_at(when, lambda: log(f"call_at inside, same deadline: cancelling={task.cancelling()}"))
                await asyncio.sleep(10)
        except TimeoutError as e:
            log(f"same deadline, timer armed inside -> raised {X(e)}")
        when = loop.time() + 5
        loop.call_at(when, lambda: log(f"call_at before, same deadline: cancelling={task.cancelling()}"))
        try:
            async with asyncio.timeout_at(when):
                await asyncio.sleep(10)
        except TimeoutError as e:
            log(f"same deadline, timer armed before -> raised {X(e)}")
        try:
            async with asyncio.timeout(10):
                async with asyncio.timeout(5):
                    pass
                await asyncio.sleep(20)
        except TimeoutError as e:
            log(f"outer after an inner left at once -> raised {X(e)}")
        async with asyncio.timeout(20):
            try:
                async with asyncio.timeout(5):
                    async with asyncio.timeout(30):
                        await asyncio.sleep(10)
            except TimeoutError as e:
                log(f"middle of three -> raised {X(e)}")
        log(f"outer left -> cancelling={task.cancelling()}")
        try:
            async with asyncio.timeout(5):
                await asyncio.sleep(1)
                raise KeyError("late")
        except KeyError as e:
            log(f"raised after a suspension -> {X(e)}")
        await asyncio.sleep(10)
        fired = 0

        def count():
            nonlocal fired
            fired += 1

        timeouts = 0
        for n in range(100, 141):
            try:
                async with asyncio.timeout(5):
                    for i in range(n):
                        loop.call_later(3 + i % 5, count)
                    await asyncio.sleep(10)
            except TimeoutError:
                timeouts += 1
            await asyncio.sleep(5)
        log(f"100 to 140 timers armed inside -> {timeouts} timeouts, fired={fired}")
        try:
            async with asyncio.timeout(5):
                for i in range(127):
                    loop.call_later(3 + i % 5, count)
                await asyncio.sleep(10)
        except TimeoutError as e:
            log(f"127 timers armed inside -> raised {X(e)} fired={fired}")
        await asyncio.sleep(10)
        log(f"fired={fired}")
        ag = agen()
        async with asyncio.timeout(5):
            log(f"anext -> {await anext(ag)}")
        log("left before the agen's scope")
        await asyncio.sleep(1)
        log(f"anext -> {await anext(ag)}")
        try:
            await anext(ag)
        except StopAsyncIteration:
            log("agen done")
        ag = agen()
        async with asyncio.timeout(5):
            log(f"anext -> {await anext(ag)}")
        log(f"anext -> {await anext(ag)}")
        try:
            await anext(ag)
        except StopAsyncIteration:
            log("agen done without suspending")
        await asyncio.sleep(60)
        log(f"end -> cancelling={task.cancelling()}")
        return "ok"
    run(main)


CASES = [destroy, groups, shield, gather, gather_cancel, wait, taskgroup, taskgroup_more, taskgroup_cancel, timeout, timeout_corners, timeout_queued, timeout_lazy,
         wait_for, wait_for_context, combos, as_completed, misuse, retrieved]

if __name__ == "__main__":
    if sys.version_info[:2] != (3, 13):
        sys.exit("structured.py: run it with CPython 3.13")
    by_name = {c.__name__: c for c in CASES}
    if len(sys.argv) != 2 or sys.argv[1] not in by_name:
        sys.exit("usage: structured.py " + "|".join(by_name))
    by_name[sys.argv[1]]()
