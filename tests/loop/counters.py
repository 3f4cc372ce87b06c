# Twin of test_loop counters: A30 (cancelling/uncancel), 3.13's withdrawn
# request.
import asyncio, vloop

async def sleeper():
    try:
        await asyncio.sleep(5)
        print("sleeper woke")
    except asyncio.CancelledError as e:
        print("sleeper cancelled", repr(e))
        raise

async def quick():
    print("quick ran")
    return 1

async def main():
    t = asyncio.create_task(sleeper())
    await asyncio.sleep(0)
    print("cancel", t.cancel(), t.cancel(), "cancelling", t.cancelling())
    print("uncancel", t.uncancel(), "cancelling", t.cancelling())
    try:
        await t
    except asyncio.CancelledError as e:
        print("await", repr(e))
    print("after: cancelling", t.cancelling(), "uncancel", t.uncancel(), t.uncancel())
    q = asyncio.create_task(quick())
    print("cancel q", q.cancel(), "uncancel q", q.uncancel())
    print("q ->", await q, "cancelled", q.cancelled())
    return None

print("run ->", vloop.run(main()))
