#!/usr/bin/env python3
"""Random async scenarios (the language of ASYNC-SCENARIO.md), one per seed.

    async_gen.py SEED                      # one scenario on stdout
    async_gen.py SEED --features +gather   # with a family turned on (or -queue: off)
    async_gen.py --families                # the families and which are on by default

The same seed and feature set give the same scenario on every Python 3.8+:
the generator draws from its own PRNG (splitmix64, integers only), never
from `random`, whose algorithms may change between versions.

What the scenarios are made of: a Main and a few more bodies, task IDs
each bound to one body, sleeps from a small set of durations (so deadlines
collide), spawn/join/await, results, raise, try/except/finally, repeat,
the queue/event/lock/semaphore statements and async_with, and cancellation
storms: bursts of `cancel` (with and without a message), `cancelling` and
`uncancel` aimed at any task, the running one and main included.

What keeps every scenario valid and its reference trace deterministic
(ASYNC-SCENARIO.md, "Invalid scenarios"):

- Bodies are numbered, Main first. A body only awaits, joins, spawns,
  gathers, shields, wait_for's or iterates what belongs to a body with a
  higher number (task and agen IDs are bound to one body each). So no body
  can run inside itself, a task never awaits itself, and tasks never wait
  for each other in a cycle (whose cancellation makes asyncio recurse).
  `cancel`, `state`, `cancelling` and `uncancel` may aim anywhere.
- `wait ... first_exception` is given a single task (with two done tasks
  or more, which one asyncio marks as retrieved depends on a set's order).
- Blocks nest at most MAX_DEPTH deep (the reference's Python compiler
  refuses about 20), repeat counts and bodies are small, so the limits
  (20,000 trace lines, ...) are far away.
"""
import sys

M64 = (1 << 64) - 1

# Statement families. DEFAULT: those the checked-in seeds use (all of them
# since the mismatches the structured families found were fixed;
# tests/async_fuzz/README.md).
FAMILIES = ["cancel", "queue", "event", "lock",
            "gather", "wait", "wait_for", "shield", "timeout", "taskgroup", "agen"]
DEFAULT = list(FAMILIES)

MAX_DEPTH = 4
SLEEPS = [0, 0, 0, 1, 1, 2, 3, 5, 10]
WORDS = ["a", "b", "x", "why", "stop", "k"]
VALUES = ["None", "0", "1", "2", "7", "-3"]
RAISED = ["ValueError"] * 4 + ["KeyError"] * 2 + ["AppError", "SubAppError", "RuntimeError", "TypeError",
                                                  "LookupError", "TimeoutError", "OSError", "StopIteration",
                                                  "CancelledError", "CancelledError", "Exception",
                                                  "BaseException"]
CAUGHT = ["ValueError", "ValueError", "KeyError", "LookupError", "AppError", "SubAppError", "RuntimeError",
          "Exception", "Exception", "BaseException", "CancelledError", "CancelledError", "CancelledError",
          "TimeoutError", "OSError", "InvalidStateError", "QueueEmpty", "QueueFull", "QueueShutDown"]
GROUP_CAUGHT = ["ExceptionGroup", "BaseExceptionGroup"]
# Operations on one object: OP -> (the objects, what follows the object).
OBJ_OPS = {
    "put": ("queues", "value"), "put_nowait": ("queues", "value"), "get": ("queues", ""),
    "get_nowait": ("queues", ""), "task_done": ("queues", ""), "qjoin": ("queues", ""), "qsize": ("queues", ""),
    "set": ("events", ""), "clear": ("events", ""), "is_set": ("events", ""), "wait_event": ("events", ""),
    "acquire": ("locks", ""), "release": ("locks", ""), "locked": ("locks", ""),
    "anext": ("agens", ""), "asend": ("agens", "value"), "athrow": ("agens", "exc"), "aclose": ("agens", ""),
}


class Rng:
    """splitmix64: the same numbers on every Python version."""

    def __init__(self, seed):
        self.s = (seed * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & M64

    def next(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & M64
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)

    def below(self, n):
        return self.next() % n

    def between(self, lo, hi):
        return lo + self.below(hi - lo + 1)

    def chance(self, percent):
        return self.below(100) < percent

    def choice(self, seq):
        return seq[self.below(len(seq))]

    def pick(self, weights):
        """A key of weights (name: integer weight, in insertion order)."""
        total = sum(weights.values())
        x = self.below(total) if total else 0
        for k, w in weights.items():
            if x < w:
                return k
            x -= w
        raise ValueError("no weights")


class Ctx:
    """Where a statement is generated."""

    def __init__(self, body, depth=0, in_except=False, in_tg=False, in_scope=False):
        self.body = body            # index of the body being written
        self.depth = depth          # blocks around the statement
        self.in_except = in_except  # logexc and reraise allowed
        self.in_tg = in_tg          # tg_spawn allowed
        self.in_scope = in_scope    # inside timeout/taskgroup: no yield

    def inner(self, **kw):
        c = Ctx(self.body, self.depth + 1, self.in_except, self.in_tg, self.in_scope)
        for k, v in kw.items():
            setattr(c, k, v)
        return c


class Gen:
    def __init__(self, seed, features=None):
        self.r = r = Rng(seed)
        self.on = set(DEFAULT if features is None else features)
        # Bodies: 0 is Main; the rest async defs, and async gens when on.
        n = r.between(2, 6)
        self.kinds = ["def"]
        for _ in range(n):
            self.kinds.append("gen" if "agen" in self.on and r.chance(30) else "def")
        self.names = ["Main"] + [("G" if k == "gen" else "D") + str(i) for i, k in enumerate(self.kinds) if i]
        defs = [i for i, k in enumerate(self.kinds) if k == "def" and i]
        gens = [i for i, k in enumerate(self.kinds) if k == "gen"]
        # Task IDs and agen IDs, each bound to one body.
        self.tasks = {}
        for k in range(r.between(1, 5) if defs else 0):
            self.tasks[f"t{k}"] = r.choice(defs)
        self.agens = {}
        for k in range(r.between(1, 3) if gens else 0):
            self.agens[f"a{k}"] = r.choice(gens)
        # Shared objects.
        self.queues = [f"Q{k}" for k in range(r.between(1, 2))] if "queue" in self.on else []
        self.qsize = {q: r.choice([0, 0, 1, 1, 2, 3]) for q in self.queues}
        self.events = [f"E{k}" for k in range(r.between(1, 2))] if "event" in self.on else []
        self.locks = {}
        if "lock" in self.on:
            for k in range(r.between(1, 3)):
                self.locks[f"L{k}"] = r.choice(["lock", "lock", "semaphore", "bounded"])
        # This scenario's taste: weights drawn once.
        w = lambda lo, hi: r.between(lo, hi)  # noqa: E731
        self.w = {
            "log": w(1, 4), "sleep": w(4, 12), "spawn": w(3, 9), "join": w(2, 7), "await": w(1, 5),
            "result": w(0, 2), "state": w(1, 3), "return": w(0, 2), "raise": w(1, 4), "try": w(2, 7),
            "repeat": w(0, 3),
        }
        if "cancel" in self.on:
            self.w.update({"cancel": w(2, 8), "storm": w(1, 4), "cancelling": w(0, 3), "uncancel": w(0, 3)})
        if self.queues:
            self.w.update({"put": w(1, 4), "get": w(1, 4), "put_nowait": w(0, 2), "get_nowait": w(0, 2),
                           "task_done": w(0, 2), "qjoin": w(0, 1), "qsize": w(0, 1), "qshutdown": w(0, 1)})
        if self.events:
            self.w.update({"set": w(1, 3), "clear": w(0, 1), "is_set": w(0, 1), "wait_event": w(1, 3)})
        if self.locks:
            self.w.update({"acquire": w(0, 3), "release": w(0, 3), "locked": w(0, 1), "async_with": w(1, 4)})
        for fam, lo, hi in (("gather", 1, 4), ("wait", 1, 4), ("wait_for", 1, 4), ("shield", 1, 3),
                            ("timeout", 1, 4), ("taskgroup", 1, 4)):
            if fam in self.on:
                self.w[fam] = w(lo, hi)
        if self.agens:
            self.w.update({"agen": w(1, 3), "anext": w(2, 5), "asend": w(0, 2), "athrow": w(0, 2),
                           "aclose": w(0, 2), "async_for": w(1, 3)})
        self.gen_yield = w(3, 8)
        self.budget = 0
        self.bound = set()  # task and agen IDs some statement binds

    # -- what a body may name ---------------------------------------------

    def later_tasks(self, ctx):
        return [t for t, b in self.tasks.items() if b > ctx.body]

    def bound_later_tasks(self, ctx):
        return [t for t in self.later_tasks(ctx) if t in self.bound]

    def later_defs(self, ctx):
        return [self.names[i] for i, k in enumerate(self.kinds) if k == "def" and i > ctx.body]

    def later_agens(self, ctx):
        return [a for a, b in self.agens.items() if b > ctx.body and a in self.bound]

    def any_task(self):
        ids = [t for t in self.tasks if t in self.bound]
        return "main" if not ids or self.r.chance(15) else self.r.choice(ids)

    def later_arg(self, ctx, def_pct):
        """A task ID or an async def of a later body (None if neither)."""
        ts, ds = self.bound_later_tasks(ctx), self.later_defs(ctx)
        if ds and (not ts or self.r.chance(def_pct)):
            return self.r.choice(ds)
        return self.r.choice(ts) if ts else None

    def ms(self):
        return self.r.choice(SLEEPS)

    def exc(self, types):
        t = self.r.choice(types)
        return f"{t} {self.r.choice(WORDS)}" if self.r.chance(60) else t

    # -- statements -------------------------------------------------------

    def block(self, ctx, lo, hi):
        out = []
        for _ in range(self.r.between(lo, hi)):
            if self.budget <= 0:
                break
            out += self.stmt(ctx)
        return out if out or not lo else [self.r.choice(["sleep 0", "log empty"])]

    def nested(self, ctx, head, lo=1, hi=3, **kw):
        return [head] + ["  " + ln for ln in self.block(ctx.inner(**kw), lo, hi)] + ["end"]

    def stmt(self, ctx):
        r = self.r
        self.budget -= 1
        w = dict(self.w)
        if ctx.depth >= MAX_DEPTH:
            for k in ("try", "repeat", "async_with", "timeout", "taskgroup", "async_for"):
                w.pop(k, None)
        if ctx.in_except:
            w["logexc"] = 3
            w["reraise"] = 2
        if ctx.in_tg:
            w["tg_spawn"] = 6
        if self.kinds[ctx.body] == "gen" and not ctx.in_scope:
            w["yield"] = self.gen_yield
        if ctx.body == 0:
            # Main blocking for good ends the run in a deadlock: rarer.
            for k in ("get", "wait_event", "qjoin", "acquire"):
                if k in w:
                    w[k] = (w[k] + 2) // 3
        k = r.pick(w)
        out = self.obj_op(ctx, k) if k in OBJ_OPS else getattr(self, "s_" + k)(ctx)
        if out is None:  # nothing to name: a plain statement instead
            return [f"sleep {self.ms()}"]
        return out

    def s_log(self, ctx):
        return [f"log {self.r.choice(WORDS)}"]

    def s_sleep(self, ctx):
        return [f"sleep {self.ms()}"]

    def s_spawn(self, ctx):
        ts = self.later_tasks(ctx)
        if not ts:
            return None
        t = self.r.choice(ts)
        self.bound.add(t)
        return [f"spawn {t} {self.names[self.tasks[t]]}"]

    def s_join(self, ctx):
        ts = self.bound_later_tasks(ctx)
        return [f"join {self.r.choice(ts)}"] if ts else None

    def s_await(self, ctx):
        ds = self.later_defs(ctx)
        return [f"await {self.r.choice(ds)}"] if ds else None

    def s_result(self, ctx):
        return [f"result {self.any_task()}"]

    def s_state(self, ctx):
        return [f"state {self.any_task()}"]

    def s_return(self, ctx):
        if self.kinds[ctx.body] == "gen":
            return ["return"]
        return ["return " + self.r.choice(VALUES)] if self.r.chance(80) else ["return"]

    def s_raise(self, ctx):
        return ["raise " + self.exc(RAISED)]

    def s_logexc(self, ctx):
        return ["logexc"]

    def s_reraise(self, ctx):
        return ["reraise"]

    def s_repeat(self, ctx):
        return self.nested(ctx, f"repeat {self.r.between(0, 3)}", 1, 3)

    def s_try(self, ctx):
        r = self.r
        out = self.nested(ctx, "try", 1, 4)[:-1]
        n_exc = r.between(0, 2)
        fin = n_exc == 0 or r.chance(30)
        types = CAUGHT + (GROUP_CAUGHT if "taskgroup" in self.on else [])
        for _ in range(n_exc):
            out.append("except " + r.choice(types))
            out += ["  " + ln for ln in self.block(ctx.inner(in_except=True), 1, 3)]
        if fin:
            out.append("finally")
            out += ["  " + ln for ln in self.block(ctx.inner(in_except=False), 1, 2)]
        return out + ["end"]

    # cancellation

    def self_task(self, ctx):
        """An ID that names the task running this body, most likely."""
        if ctx.body == 0:
            return "main"
        own = [t for t, b in self.tasks.items() if b == ctx.body and t in self.bound]
        return self.r.choice(own) if own else self.any_task()

    def cancel_line(self, ctx):
        t = self.self_task(ctx) if self.r.chance(25) else self.any_task()
        return f"cancel {t} {self.r.choice(WORDS)}" if self.r.chance(40) else f"cancel {t}"

    def s_cancel(self, ctx):
        return [self.cancel_line(ctx)]

    def s_cancelling(self, ctx):
        return [f"cancelling {self.any_task()}"]

    def s_uncancel(self, ctx):
        return [f"uncancel {self.any_task()}"]

    def s_storm(self, ctx):
        """A burst of cancels, now and then a yield or a count in between."""
        r = self.r
        out = []
        for _ in range(r.between(2, 6)):
            k = r.below(10)
            if k < 6:
                out.append(self.cancel_line(ctx))
            elif k < 7:
                out.append("sleep 0")
            elif k < 8:
                out.append(f"uncancel {self.self_task(ctx) if self.r.chance(50) else self.any_task()}")
            elif k < 9:
                out.append(f"cancelling {self.any_task()}")
            else:
                out.append(f"sleep {self.ms()}")
        return out

    # queues, events, locks, async generators: OP OBJECT [VALUE or EXC]

    def obj_op(self, ctx, op):
        kind, extra = OBJ_OPS[op]
        objs = self.later_agens(ctx) if kind == "agens" else list(getattr(self, kind))
        if not objs:
            return None
        line = f"{op} {self.r.choice(objs)}"
        if extra == "value":
            line += " " + self.r.choice(VALUES)
        elif extra == "exc":
            line += " " + self.exc(RAISED)
        return [line]

    def s_qshutdown(self, ctx):
        q = self.r.choice(self.queues)
        return [f"qshutdown {q} immediate" if self.r.chance(40) else f"qshutdown {q}"]

    def s_async_with(self, ctx):
        return self.nested(ctx, f"async_with {self.r.choice(list(self.locks))}", 1, 3)

    # structured concurrency

    def s_gather(self, ctx):
        args = [a for a in (self.later_arg(ctx, 40) for _ in range(self.r.between(1, 3))) if a]
        if not args:
            return None
        return ["gather " + " ".join(args) + (" return_exceptions" if self.r.chance(40) else "")]

    def s_wait(self, ctx):
        r = self.r
        ts = self.bound_later_tasks(ctx)
        if not ts:
            return None
        mode = r.choice(["", "", "first_completed", "all_completed", "first_exception"])
        n = 1 if mode == "first_exception" else r.between(1, 3)
        args = [r.choice(ts) for _ in range(n)]
        ds = self.later_defs(ctx)
        if ds and mode != "first_exception" and r.chance(8):  # TypeError, nothing started
            args.insert(r.below(len(args) + 1), r.choice(ds))
        line = "wait " + " ".join(args) + (" " + mode if mode else "")
        if r.chance(50):
            line += f" timeout {self.ms()}"
        return [line]

    def s_wait_for(self, ctx):
        a = self.later_arg(ctx, 50)
        return [f"wait_for {a} {self.r.choice([0, 1, 2, 5, 10, 20])}"] if a else None

    def s_shield(self, ctx):
        a = self.later_arg(ctx, 40)
        return [f"shield {a}"] if a else None

    def s_timeout(self, ctx):
        return self.nested(ctx, f"timeout {self.r.choice([0, 1, 2, 3, 5, 10])}", 1, 3, in_scope=True)

    def s_taskgroup(self, ctx):
        if not self.later_tasks(ctx):
            return None
        return self.nested(ctx, "taskgroup", 1, 4, in_tg=True, in_scope=True)

    def s_tg_spawn(self, ctx):
        t = self.r.choice(self.later_tasks(ctx))
        self.bound.add(t)
        return [f"tg_spawn {t} {self.names[self.tasks[t]]}"]

    # async generators

    def agen_id(self, ctx):
        ids = self.later_agens(ctx)
        return self.r.choice(ids) if ids else None

    def s_agen(self, ctx):
        ids = [a for a, b in self.agens.items() if b > ctx.body]
        a = self.r.choice(ids) if ids else None
        self.bound.add(a)
        return [f"agen {a} {self.names[self.agens[a]]}"] if a else None

    def s_async_for(self, ctx):
        a = self.agen_id(ctx)
        return self.nested(ctx, f"async_for {a}", 1, 2) if a else None

    def s_yield(self, ctx):
        return [f"yield {self.r.choice(VALUES)}"]

    # -- the scenario ------------------------------------------------------

    def main_body(self):
        """Main in pieces, most of them in a try that logs and swallows
        any exception (CancelledError too), so that Main seldom ends at its
        first failure and the other tasks get to run."""
        r = self.r
        out = []
        for _ in range(r.between(1, 3)):
            out += self.s_spawn(Ctx(0)) or []
        for _ in range(r.between(1, 4)):
            if self.budget <= 0:
                break
            piece = self.block(Ctx(0, 1), 1, 5)
            if r.chance(70):
                handler = r.choice(["BaseException", "BaseException", "Exception", "CancelledError"])
                out += ["try"] + ["  " + ln for ln in piece] + [f"except {handler}", "  logexc", "end"]
            else:
                out += piece
        if r.chance(50):
            out.append(f"sleep {r.choice([1, 5, 10, 20, 50])}")
        return out

    def scenario(self):
        r = self.r
        out = []
        for q in self.queues:
            out.append(f"queue {q} {self.qsize[q]}" if self.qsize[q] or r.chance(50) else f"queue {q}")
        out += [f"event {e}" for e in self.events]
        for name, kind in self.locks.items():
            out.append(f"lock {name}" if kind == "lock" else f"{kind} {name} {r.between(1, 2)}")
        # Main first, so that a body names only the IDs bound (spawn,
        # tg_spawn, agen) in the bodies written before it or above it in its
        # own; printed the other way round, Main last.
        bodies = []
        for i in range(len(self.kinds)):
            self.budget = r.between(4, 14) if i else r.between(8, 24)
            body = self.block(Ctx(i), 1, 8) if i else self.main_body()
            bodies.append([("async gen " if self.kinds[i] == "gen" else "async def ") + self.names[i]]
                          + ["  " + ln for ln in body] + ["end"])
        for b in reversed(bodies):
            out += b
        out.append("main Main")
        return "\n".join(out) + "\n"


def features_from(spec, base=None):
    """'+gather,-queue' or 'all' or 'default' (comma- or blank-separated)."""
    on = list(DEFAULT if base is None else base)
    for word in spec.replace(",", " ").split():
        if word == "all":
            on = list(FAMILIES)
        elif word == "default":
            on = list(DEFAULT)
        elif word == "none":
            on = []
        elif word[0] in "+-" and word[1:] in FAMILIES:
            if word[0] == "+" and word[1:] not in on:
                on.append(word[1:])
            elif word[0] == "-" and word[1:] in on:
                on.remove(word[1:])
        else:
            raise ValueError(f"unknown feature {word!r} (families: {' '.join(FAMILIES)})")
    return [f for f in FAMILIES if f in on]


def main(argv):
    if argv[1:] == ["--families"]:
        for f in FAMILIES:
            print(f, "on" if f in DEFAULT else "off")
        return 0
    if len(argv) not in (2, 4) or (len(argv) == 4 and argv[2] != "--features"):
        print("usage: async_gen.py SEED [--features SPEC]", file=sys.stderr)
        return 2
    feats = features_from(argv[3]) if len(argv) == 4 else None
    sys.stdout.write(Gen(int(argv[1]), feats).scenario())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
