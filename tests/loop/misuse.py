# Twin of test_loop misuse: what asyncio answers to a task awaiting itself,
# a future of another loop, a bad yield (A44), and set_result on a done
# future, set_result/set_exception on a task. Messages that carry asyncio's reprs are cut at their first colon.
import asyncio, types, vloop

def head(e):
    return f"{type(e).__name__}: {str(e).split(':')[0]}"

async def self_await():
    await asyncio.current_task()

@types.coroutine
def bad_yield():
    yield 42

async def yields_bad():
    await bad_yield()

async def main():
    t = asyncio.create_task(self_await())
    try:
        await t
    except RuntimeError as e:
        print("self await:", head(e))
    other = vloop.VirtualLoop()
    f = other.create_future()
    async def other_loop():
        await f
    try:
        await asyncio.create_task(other_loop())
    except RuntimeError as e:
        print("other loop:", type(e).__name__, str(e).endswith("attached to a different loop"))
    other.close()
    try:
        await asyncio.create_task(yields_bad())
    except RuntimeError as e:
        print("bad yield:", head(e))
    me = asyncio.current_task()
    try:
        me.set_result(1)
    except RuntimeError as e:
        print("task set_result:", head(e))
    try:
        me.set_exception(ValueError())
    except RuntimeError as e:
        print("task set_exception:", head(e))
    return "ok"

print(vloop.run(main()))
