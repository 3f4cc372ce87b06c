# Twin of test_loop agen_running: while one task's anext awaits inside an
# async generator, another task's asend is refused with anext's message
# (CPython makes both with the same awaitable type), athrow and aclose with
# their own (A20).
import asyncio, vloop

async def slow():
    await asyncio.sleep(0.001)
    yield 1

async def main():
    ag = slow()
    first = asyncio.create_task(ag.__anext__())
    await asyncio.sleep(0)
    for name, aw in (("asend", lambda: ag.asend(None)), ("athrow", lambda: ag.athrow(ValueError("v"))),
                     ("aclose", lambda: ag.aclose())):
        try:
            await aw()
        except RuntimeError as e:
            print(name + ":", repr(e))
    print("first ->", await first)

vloop.run(main())
