"""vloop.py: asyncio on a virtual clock, the one every Python twin of the
loop's tests and examples runs on (tests/loop/*.py, tests/loop/sync_*.py
and queue_*.py through sync_twinlib/sync_vloop.py, structured.py,
examples/twins/*.py). Time starts at 0 and jumps to the next timer when
nothing is ready, as CG_LOOP_VIRTUAL_CLOCK does; a loop that would wait
with nothing scheduled raises cogen's RuntimeError('deadlock: no callback
is ready and no timer is pending'). Everything else is asyncio's own code.

Timers with equal deadlines fire in the order they were scheduled, as in
the C loop (asyncio's heap orders by deadline only): the k-th call_at of a
loop adds k * TIE to its deadline, exact in a float and far below the
clock's unit. The async generators shutdown_asyncgens closes go in the
order they started (asyncio keeps them in a WeakSet, whose order follows
the objects' addresses): one of the orders asyncio can produce, the one
cogen and the async scenarios' reference runner use (ASYNC-SCENARIO.md,
"Creation order instead of set order").

Two units, as the twins count time:
  VirtualLoop()          seconds (asyncio.sleep(0.01) is 10 ms); the clock
                         jumps exactly to the next deadline.
  VirtualLoop(ms=True)   milliseconds (asyncio.sleep(150) is 150 ms); the
                         clock shows whole milliseconds (a jump goes to the
                         whole ms at or below the deadline) and a timer is
                         due within half a millisecond of its deadline.

    import vloop
    vloop.run(main())          # asyncio.run on the virtual clock (seconds)
    vloop.run(main(), handler) # ... with an exception handler
    vloop.ms()                 # the running loop's time in whole ms
    vloop.chain(e)             # e's context chain: "repr <- repr <- ..."
"""
import asyncio
import asyncio.base_events
import math
import weakref

DEADLOCK = "deadlock: no callback is ready and no timer is pending"


def chain(e):
    """e and its __context__ chain, as the C tests print it."""
    out = []
    while e is not None:
        out.append(repr(e))
        e = e.__context__
    return " <- ".join(out)


class _StartOrderWeakSet:
    """What BaseEventLoop does with its WeakSet of async generators (add,
    discard, len, iterate, clear), in the order of the adds."""

    def __init__(self):
        self._refs = {}

    def add(self, x):
        self._refs[weakref.ref(x, lambda r, refs=self._refs: refs.pop(r, None))] = None

    def discard(self, x):
        self._refs.pop(weakref.ref(x), None)

    def __iter__(self):
        return iter([x for x in (r() for r in list(self._refs)) if x is not None])

    def __len__(self):
        return sum(1 for r in self._refs if r() is not None)

    def clear(self):
        self._refs.clear()


class VirtualLoop(asyncio.base_events.BaseEventLoop):
    def __init__(self, ms=False):
        super().__init__()
        self._asyncgens = _StartOrderWeakSet()
        self._ms = ms
        self._now = 0
        self._ties = 0
        self._tie = 2.0**-28 if ms else 2.0**-40
        if ms:
            self._clock_resolution = 0.5
        self._selector = self

    def time(self):
        return self._now

    def call_at(self, when, callback, *args, context=None):
        self._ties += 1
        return super().call_at(when + self._ties * self._tie, callback, *args, context=context)

    # the selector's methods, and what BaseEventLoop needs of a selector loop
    def select(self, timeout=None):
        if timeout is None:
            raise RuntimeError(DEADLOCK)
        if timeout > 0:
            self._now = math.floor(self._now + timeout) if self._ms else self._now + timeout
        return []

    def _process_events(self, event_list):
        pass

    def _write_to_self(self):
        pass


def run(coro, handler=None, loop_factory=VirtualLoop):
    """asyncio.run(coro) on a virtual loop (loop_factory()), with handler as
    its exception handler if given."""
    def factory():
        loop = loop_factory()
        if handler is not None:
            loop.set_exception_handler(handler)
        return loop
    with asyncio.Runner(loop_factory=factory) as r:
        return r.run(coro)


def ms():
    return round(asyncio.get_running_loop().time() * 1000)
