"""sync_vloop.py: the virtual clock of the C loop (CG_LOOP_VIRTUAL_CLOCK)
for the Python twins of tests/test_loop_sync.c: an asyncio event loop
whose time() is virtual milliseconds (asyncio.sleep(150) takes 150 ms of
it) and whose poll jumps the clock to the next timer instead of sleeping.
Timers with equal deadlines run in the order they were scheduled, as in
the C loop: asyncio's heap orders timers by deadline only, so the k-th
call_at adds k * 2**-28 ms to its deadline (exact in a float, far below a
millisecond), the clock shows whole milliseconds, and a timer is due within
half a millisecond of its deadline. Everything else is asyncio's own code.
Run the twins on CPython 3.13. (In a directory of its own so that
scripts running every tests/loop/*.py as a twin do not take it for one.)
"""
import asyncio
import math
import re
import sys

TIE_EPS = 2.0 ** -28


class _JumpSelector:
    def __init__(self, loop):
        self._loop = loop

    def select(self, timeout=None):
        if timeout is None:
            raise RuntimeError("deadlock: no callback is ready and no timer is pending")
        if timeout > 0:
            self._loop._vnow = math.floor(self._loop._vnow + timeout)
        return []

    def close(self):
        pass


class VirtualLoop(asyncio.BaseEventLoop):
    def __init__(self):
        super().__init__()
        self._selector = _JumpSelector(self)
        self._vnow = 0
        self._timer_calls = 0
        self._clock_resolution = 0.5

    def time(self):
        return self._vnow

    def call_at(self, when, callback, *args, context=None):
        self._timer_calls += 1
        return super().call_at(when + self._timer_calls * TIE_EPS, callback, *args, context=context)

    def _process_events(self, event_list):
        pass

    def _write_to_self(self):
        pass


def run(main):
    """asyncio.run(main()) on a virtual clock."""
    with asyncio.Runner(loop_factory=VirtualLoop) as r:
        return r.run(main())


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
