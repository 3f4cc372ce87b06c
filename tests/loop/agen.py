# Twin of test_loop agen: async generators (A16-A21) and their corners.
import asyncio, vloop

def X(e):
    return repr(e)

async def two():
    got = yield 1
    print("two got", repr(got))
    yield "second"

async def awaiting():
    try:
        await asyncio.sleep(0.010)
        yield 1
        await asyncio.sleep(0)
        yield 2
    finally:
        print("awaiting: finally start")
        await asyncio.sleep(0.005)
        print("awaiting: finally end")

async def stubborn():
    try:
        yield 1
    except GeneratorExit:
        yield 2

async def catcher():
    while True:
        try:
            yield "v"
        except ValueError as e:
            yield "handled " + X(e)

async def si():
    yield 1
    raise StopIteration

async def sai():
    yield 1
    raise StopAsyncIteration

async def slow():
    await asyncio.sleep(0.001)
    yield 1

async def left_open():
    try:
        yield 1
        yield 2
    finally:
        print("left_open: finally")

async def bad_close():
    try:
        yield 1
    finally:
        raise KeyError("in finally")

async def consumer(ag):
    try:
        await ag.__anext__()
    except RuntimeError as e:
        print("second consumer:", X(e))

keep = []  # every async generator stays alive until the run is over:
           # none is finalized by the garbage collector (as in the C test)

def k(ag):
    keep.append(ag)
    return ag

async def main():
    ag = k(two())
    try:
        await ag.asend(5)
    except TypeError as e:
        print("asend(5) fresh:", X(e))
    print("anext ->", await ag.__anext__())
    print("asend ->", await ag.asend("s"))
    try:
        await ag.__anext__()
    except StopAsyncIteration as e:
        print("at end:", X(e))
    a = k(awaiting())
    async for v in a:
        print("for", v, vloop.ms())
    b = k(awaiting())
    print("b ->", await b.__anext__(), vloop.ms())
    await b.aclose()
    print("closed b at", vloop.ms())
    await k(stubborn()).aclose()
    print("fresh aclose ok")
    s = k(stubborn())
    await s.__anext__()
    try:
        await s.aclose()
    except RuntimeError as e:
        print("stubborn aclose:", X(e))
    c = k(catcher())
    await c.__anext__()
    print("athrow ->", await c.athrow(ValueError("x")))
    try:
        await c.athrow(KeyError("k"))
    except KeyError as e:
        print("athrow uncaught:", X(e))
    try:
        await c.__anext__()
    except StopAsyncIteration as e:
        print("then anext:", X(e))
    print("athrow finished ->", await c.athrow(ValueError("late")))
    for f in (si, sai):
        g = k(f())
        await g.__anext__()
        try:
            await g.__anext__()
        except RuntimeError as e:
            print(f.__name__, X(e), "cause", X(e.__cause__))
    sl = k(slow())
    first = asyncio.create_task(sl.__anext__())
    t = asyncio.create_task(consumer(sl))
    await asyncio.sleep(0)
    await t
    print("first ->", await first)
    lo = k(left_open())
    bc = k(bad_close())
    k(left_open())
    await lo.__anext__()
    await bc.__anext__()
    print("main returns")
    return "done"

def handler(loop, ctx):
    print("handler", ctx["message"].split(" <")[0], X(ctx.get("exception")))

class Loop(vloop.VirtualLoop):
    def __init__(self):
        super().__init__()
        self.set_exception_handler(handler)

with asyncio.Runner(loop_factory=Loop) as r:
    result = r.run(main())
print("run ->", result)  # after the runner closed, as cg_run returns
print("after run")
