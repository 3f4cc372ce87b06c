# The Python twin of examples/loop.c: what it prints on CPython 3.13 on a
# virtual clock is examples/expected/loop.txt (the example test compares).
#   PYENV_VERSION=3.13.0 python3 examples/twins/loop.py > examples/expected/loop.txt
import asyncio, os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "loop"))
import vloop

async def worker(name, ms):
    try:
        for i in range(3):
            print(f"{vloop.ms():3d} ms  {name} step {i}")
            await asyncio.sleep(ms / 1000)
        return name.upper()
    finally:
        print(f"{vloop.ms():3d} ms  {name} done")

async def main():
    a = asyncio.create_task(worker("a", 10))
    b = asyncio.create_task(worker("b", 25))
    print("a returned", await a)
    b.cancel()
    try:
        await b
    except asyncio.CancelledError:
        print(f"{vloop.ms():3d} ms  b cancelled")
    try:
        async with asyncio.timeout(0.005):
            await asyncio.sleep(1)
    except TimeoutError:
        print(f"{vloop.ms():3d} ms  timed out")

vloop.run(main())
