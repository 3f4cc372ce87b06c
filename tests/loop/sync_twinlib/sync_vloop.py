"""sync_vloop.py: what the Python twins of tests/test_loop_sync.c share:
asyncio.run on the virtual clock of the C loop (CG_LOOP_VIRTUAL_CLOCK),
counted in milliseconds (asyncio.sleep(150) takes 150 ms of it; the loop
is tests/loop/vloop.py's, VirtualLoop(ms=True)), and their output helpers.
Run the twins on CPython 3.13. (In a directory of its own so that
scripts running every tests/loop/*.py as a twin do not take it for one.)
"""
import asyncio
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import vloop  # noqa: E402  (tests/loop/vloop.py: the virtual clock itself)


def run(main):
    """asyncio.run(main()) on a virtual clock counted in milliseconds."""
    return vloop.run(main(), loop_factory=lambda: vloop.VirtualLoop(ms=True))


def now():
    return int(asyncio.get_running_loop().time())


def out(line):
    """One trace line; addresses (reprs) are masked as the C test masks them."""
    print(re.sub(r"0x[0-9a-f]+", "0x?", str(line)))
    sys.stdout.flush()


def call(fn, *args):
    """fn(*args), or 'raise <repr>' of what it raised."""
    try:
        return fn(*args)
    except Exception as e:
        return f"raise {e!r}"


async def acall(aw):
    try:
        return await aw
    except Exception as e:
        return f"raise {e!r}"
