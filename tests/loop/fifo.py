# Twin of test_loop fifo: A23, A24, A25 (one FIFO queue for callbacks and
# task steps; create_task schedules; sleep(0) is one turn).
import asyncio, vloop

async def w(n):
    print(f"start{n}")
    await asyncio.sleep(0)
    print(f"end{n}")

async def t(name):
    print(name)

async def rr(name):
    for i in range(3):
        print(f"{name}{i}")
        await asyncio.sleep(0)

async def main():
    t1 = asyncio.create_task(w(1))
    t2 = asyncio.create_task(w(2))
    print("created")
    await asyncio.sleep(0)
    print("main resumed")
    await t1
    await t2
    loop = asyncio.get_running_loop()
    loop.call_soon(print, "cb1")
    asyncio.create_task(t("task"))
    loop.call_soon(print, "cb2")
    print("main before sleep0")
    await asyncio.sleep(0)
    print("main after sleep0")
    a = asyncio.create_task(rr("a"))
    b = asyncio.create_task(rr("b"))
    await a
    await b
    return 7

print("run ->", vloop.run(main()))
