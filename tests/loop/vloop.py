"""vloop.py: asyncio on a virtual clock, for the Python twins of the loop
tests (tests/loop/*.py). Time starts at 0 and jumps to the next timer when
nothing is ready, as CG_LOOP_VIRTUAL_CLOCK does; timers with equal deadlines
fire in the order they were scheduled (the k-th call_at of a run gets k *
2**-40 seconds added: far below a nanosecond, exact in a float). A loop that
would wait with nothing scheduled raises RuntimeError('deadlock').

    import vloop
    vloop.run(main())          # asyncio.run on the virtual clock
    vloop.run(main(), handler) # ... with an exception handler
    vloop.ms()                 # the running loop's time in whole ms
    vloop.chain(e)             # e's context chain: "repr <- repr <- ..."
"""
import asyncio
import asyncio.base_events


def chain(e):
    """e and its __context__ chain, as the C tests print it."""
    out = []
    while e is not None:
        out.append(repr(e))
        e = e.__context__
    return " <- ".join(out)


class VirtualLoop(asyncio.base_events.BaseEventLoop):
    def __init__(self):
        super().__init__()
        self._now = 0.0
        self._ties = 0
        self._selector = self

    def time(self):
        return self._now

    def call_at(self, when, callback, *args, context=None):
        self._ties += 1
        return super().call_at(when + self._ties * 2.0**-40, callback, *args, context=context)

    # the selector's one method, and what BaseEventLoop needs of a selector loop
    def select(self, timeout):
        if timeout is None:
            raise RuntimeError("deadlock")
        self._now += timeout
        return []

    def _process_events(self, event_list):
        pass

    def _write_to_self(self):
        pass


def run(coro, handler=None):
    """asyncio.run(coro) on a VirtualLoop, with handler as its exception
    handler if given."""
    def factory():
        loop = VirtualLoop()
        if handler is not None:
            loop.set_exception_handler(handler)
        return loop
    with asyncio.Runner(loop_factory=factory) as r:
        return r.run(coro)


def ms():
    return round(asyncio.get_running_loop().time() * 1000)
