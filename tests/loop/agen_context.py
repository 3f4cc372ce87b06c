# Twin of test_loop agen_context: what comes out of an async generator is
# not chained again to the exception its caller handles (it propagates, as
# out of any call); a new exception made by the awaitable itself is.
import asyncio, vloop
from vloop import chain

async def in_handler():
    try:
        raise ValueError("own")
    except ValueError:
        yield 1
        raise KeyError("in_handler")

async def plain():
    yield 1

async def main():
    h = in_handler()
    await h.__anext__()
    p = plain()
    try:
        raise TypeError("outer")
    except TypeError:
        try:
            await h.__anext__()
        except KeyError as e:
            print("raised in the body:", chain(e))
        try:
            await p.athrow(KeyError("fresh"))
        except KeyError as e:
            print("athrow into a fresh one:", chain(e))
        q = plain()
        print("athrow(StopIteration) into a fresh one:", await q.athrow(StopIteration()))
        try:
            await p.__anext__()
        except StopAsyncIteration as e:
            print("anext at the end:", chain(e))

vloop.run(main())
