# Twin of test_loop run: asyncio.run's outcome and shutdown (A22, A48),
# what is reported through the exception handler, misuse answers (A22,
# A44, A51), and awaiting through a generator-based coroutine (A14).
import asyncio, types, vloop

def handler(loop, ctx):
    t = ctx.get("task") or ctx.get("future")
    name = t.get_name() if isinstance(t, asyncio.Task) else ("-" if t is None else "future")
    print("handler", ctx["message"], f"[{name}]", repr(ctx.get("exception")))

def run(coro):
    return vloop.run(coro, handler)

async def lingering():
    try:
        await asyncio.sleep(100)
    finally:
        print("lingering: finally")

async def failing_at_shutdown():
    try:
        await asyncio.sleep(100)
    except asyncio.CancelledError:
        raise ValueError("at shutdown")

async def boom():
    raise KeyError("boom")

@types.coroutine
def gen_await(fut):
    print("generator: before")
    r = yield from fut
    print("generator: got", r)
    return r * 2

async def main1():
    asyncio.create_task(lingering(), name="lingering")
    asyncio.create_task(failing_at_shutdown(), name="failing")
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    f = loop.create_future()
    loop.call_later(0.005, f.set_result, 21)
    print("through a generator ->", await gen_await(f))
    c = boom()
    try:
        asyncio.run(c)
    except RuntimeError as e:
        print("nested run:", repr(e))
    c.close()
    try:
        loop.run_until_complete(f)
    except RuntimeError as e:
        print("run_until_complete:", repr(e))
    me = asyncio.current_task()
    print("current task:", me.get_name())
    return "main1 done"

async def main2():
    await asyncio.sleep(0)
    raise ValueError("main2 failed")

print("run 1 ->", run(main1()))
try:
    run(main2())
except ValueError as e:
    print("run 2 raised", repr(e))
try:
    asyncio.get_running_loop()
except RuntimeError as e:
    print("outside:", repr(e))
