# Twin of test_loop agen_shutdown: loop.shutdown_asyncgens() awaited by hand
# in a task of its own, as cg_shutdown_asyncgens is (A21), after the main
# task ran on the loop (what asyncio.run does, step by step).
import asyncio, vloop

def X(e):
    return repr(e)

names = {}  # every async generator stays alive until the end, named

def k(ag, name):
    names[ag] = name
    return ag

async def closing(name):
    try:
        yield 1
        yield 2
    finally:
        print(name, "closing at", vloop.ms(), "in", asyncio.current_task().get_name())
        await asyncio.sleep(0.003)
        print(name, "closed at", vloop.ms())

async def fails():
    try:
        yield 1
    finally:
        raise KeyError("k")

async def cancels():
    try:
        yield 1
    finally:
        raise asyncio.CancelledError()

async def sai():
    try:
        yield 1
    finally:
        raise StopAsyncIteration

async def main():
    a = k(closing("a"), "a")
    k(closing("fresh"), "fresh")  # never started: not closed
    s = k(closing("sent"), "sent")
    try:
        await s.asend(5)  # refused, but asend() started the iteration
    except TypeError as e:
        print("asend(5):", X(e))
    f = k(fails(), "fails")
    await f.__anext__()
    c = k(cancels(), "cancels")
    await c.__anext__()
    done = k(closing("done"), "done")
    async for v in done:
        print("done ->", v)
    q = k(sai(), "sai")
    await q.__anext__()
    try:
        await q.aclose()  # A19 before aclose() looks at it
    except RuntimeError as e:
        print("aclose sai:", X(e), "<-", X(e.__context__))
    await a.__anext__()
    return "main"

async def shutdown():
    loop = asyncio.get_running_loop()
    await loop.shutdown_asyncgens()
    print("shutdown done at", vloop.ms())
    await loop.shutdown_asyncgens()
    print("again: nothing left to close")

def handler(loop, ctx):
    print("handler", ctx["message"].split(" <")[0], names.get(ctx.get("asyncgen")), X(ctx.get("exception")))

class Started(dict):
    """The loop's started async generators in the order they started (asyncio
    keeps them in a WeakSet, whose order is the objects' hashes; the C loop
    keeps the order of the starts, as the async scenario reference does)."""
    def add(self, x):
        self[x] = None

    def discard(self, x):
        self.pop(x, None)

    def __iter__(self):
        return iter(list(self.keys()))

loop = vloop.VirtualLoop()
loop._asyncgens = Started()
loop.set_exception_handler(handler)
m = loop.create_task(main(), name="main")
print("main ->", loop.run_until_complete(m))
t = loop.create_task(shutdown())
loop.run_until_complete(t)
print("shutdown task", t.get_name())
loop.close()
