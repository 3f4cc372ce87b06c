# Twin of test_loop future: A45, A49, A50 (futures, states, done callbacks).
import asyncio, vloop

def X(f):
    try:
        return "-> " + repr(f())
    except BaseException as e:
        return "raise " + repr(e)

def cb(name):
    def f(fut):
        print("callback", name, "done", fut.done())
    return f

async def setter(fut, v):
    await asyncio.sleep(0)
    print("setting")
    fut.set_result(v)

async def main():
    loop = asyncio.get_running_loop()
    f = loop.create_future()
    print("result", X(f.result))
    print("exception", X(f.exception))
    f.add_done_callback(cb("a"))
    f.add_done_callback(cb("b"))
    f.add_done_callback(cb("c"))
    print("removed", f.remove_done_callback(cb("x")))
    f.set_result(5)
    print("set again", X(lambda: f.set_result(6)))
    print("set exc", X(lambda: f.set_exception(ValueError("v"))))
    print("before the callbacks run")
    await asyncio.sleep(0)
    print("result", X(f.result), "exception", X(f.exception))
    f.add_done_callback(cb("late"))
    await asyncio.sleep(0)
    g = loop.create_future()
    g.set_exception(KeyError("k"))
    print("g.exception", X(g.exception), "g.result", X(g.result))
    sf = loop.create_future()
    print("stop iteration", X(lambda: sf.set_exception(StopIteration("s"))))
    print("became", repr(sf.exception()), "cause", repr(sf.exception().__cause__))
    h = loop.create_future()
    print("cancel", h.cancel("m"), h.cancel(), "cancelled", h.cancelled())
    print("h.result", X(h.result), "h.exception", X(h.exception))
    w = loop.create_future()
    asyncio.create_task(setter(w, 9))
    print("awaited", await w)
    return None

print("run ->", vloop.run(main()))
