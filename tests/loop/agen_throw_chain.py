# Twin of test_loop agen_throw_chain: what the loop throws into a task while
# an async generator's body awaits (the awaited future's exception, a
# cancellation) goes down to the body first, through frames that handle
# nothing, and is chained to what the task handles only on its way out of
# anext. (The C test makes the tasks compact and has them swapped out while
# they wait; nothing of that shows here.)
import asyncio, vloop
from vloop import chain

async def body(fut):
    try:
        await fut
    except ValueError as e:
        print("body sees:", chain(e))
        yield 2
    except BaseException as e:
        print("body sees:", chain(e))
        raise
    yield 1

async def iterate(fut):
    ag = body(fut)
    try:
        raise KeyError("handled")
    except KeyError:
        try:
            print("anext ->", await ag.__anext__())
        except BaseException as e:
            print("out of anext:", chain(e))

async def other():
    for _ in range(3):
        await asyncio.sleep(0)

async def one(how):
    fut = asyncio.get_running_loop().create_future()
    t = asyncio.create_task(iterate(fut))
    await asyncio.sleep(0)
    await asyncio.gather(*[other() for _ in range(4)])
    if how == "caught":
        fut.set_exception(ValueError("boom"))
    elif how == "raised":
        fut.set_exception(TypeError("boom"))
    else:
        t.cancel("stop")
    await t
    print(how, "done")

async def main():
    await one("caught")
    await one("raised")
    await one("cancel")

vloop.run(main())
