# Twin of test_loop cancel: A26-A29, A53, A54.
import asyncio, vloop

async def worker():
    try:
        print("start")
        await asyncio.sleep(10)
        print("not reached")
    except asyncio.CancelledError as e:
        print("caught", repr(e))
        raise
    finally:
        print("finally")

async def never():
    print("body ran")

async def stubborn():
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        print("ignored the cancel")
    return "done anyway"

async def selfcancel():
    print("cancel self ->", asyncio.current_task().cancel("me"))
    print("still running")
    try:
        await asyncio.sleep(0)
    except asyncio.CancelledError as e:
        print("at the await", repr(e))
        raise

async def selfmade():
    await asyncio.sleep(0)
    raise asyncio.CancelledError("self-made")

async def main():
    t = asyncio.create_task(worker())
    await asyncio.sleep(0)
    print("cancel ->", t.cancel("why"), "cancelled", t.cancelled(), "done", t.done())
    try:
        await t
    except asyncio.CancelledError as e:
        print("await t", repr(e))
    try:
        t.result()
    except asyncio.CancelledError as e:
        print("result()", repr(e))
    print("cancelled", t.cancelled(), "cancel again ->", t.cancel())
    n = asyncio.create_task(never())
    print("cancel before start ->", n.cancel())
    try:
        await n
    except asyncio.CancelledError as e:
        print("await n", repr(e))
    s = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    s.cancel()
    print("stubborn ->", await s, "cancelled", s.cancelled(), "cancelling", s.cancelling())
    c = asyncio.create_task(selfcancel())
    try:
        await c
    except asyncio.CancelledError as e:
        print("await c", repr(e))
    m = asyncio.create_task(selfmade())
    try:
        await m
    except asyncio.CancelledError as e:
        print("await m", repr(e), "cancelled", m.cancelled(), "cancelling", m.cancelling())
    return "ok"

print("run ->", vloop.run(main()))
