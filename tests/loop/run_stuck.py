# Twin of test_loop run_stuck: a task that never finishes. Cancelled at
# asyncio.run's shutdown, it catches the CancelledError and waits on an
# Event nobody sets. On a real clock asyncio.run then waits for ever; on
# the virtual clock nothing can ever happen, and the run raises the
# deadlock (vloop: RuntimeError('deadlock'); cogen's message goes on after
# a colon) in place of the main task's outcome, chained to the main task's
# exception as Runner.close's does when it raises in __exit__. The rest of
# Runner.close is skipped; the task is reported when it is destroyed, as
# asyncio reports a task destroyed while pending (here at the collection
# after the run; cogen reports it when the loop is freed, before cg_run
# returns: the test prints what the handler got after the outcome). One
# task is left at the shutdown: asyncio cancels a set of tasks, in an
# order that is not creation order.
import asyncio, gc, vloop

reports = []

def handler(loop, ctx):
    t = ctx.get("task") or ctx.get("future")
    reports.append(f"handler {ctx['message']} [{t.get_name()}] {ctx.get('exception')!r}")

async def stubborn(name):
    ev = asyncio.Event()
    try:
        await asyncio.sleep(1)
    except asyncio.CancelledError:
        print(f"{vloop.ms()} ms {name}: cancelled, waits on")
    await ev.wait()
    print(f"{name}: never printed")

async def main(fail):
    asyncio.create_task(stubborn("stuck" + fail), name="stuck" + fail)
    await asyncio.sleep(0.010)
    print(f"{vloop.ms()} ms main ends")
    if fail:
        raise ValueError("main failed")
    return "main result"

def head(e):
    return f"{type(e).__name__}: {str(e).split(':')[0]}"

for fail in ("", "2"):
    try:
        print("run ->", vloop.run(main(fail), handler))
    except RuntimeError as e:
        print(f"run raised {head(e)}, __context__ {e.__context__!r}")
    gc.collect()
    for r in reports:
        print(r)
    reports.clear()
