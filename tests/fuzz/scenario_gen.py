#!/usr/bin/env python3
"""Random generator scenarios over the whole scenario language (docs/semantics.md).

    scenario_gen.py SEED            # one scenario on stdout
    scenario_gen.py SEED COUNT DIR  # COUNT scenarios, DIR/s<SEED+i>.scn

The same seed always gives the same scenario (random.Random(seed) only,
whatever the Python version). What the generator aims at:

- nested try/except/finally up to depth 4, yield inside finally blocks and
  inside handlers, handlers that swallow GeneratorExit (return, or yield
  again: stubborn generators), reraise in a finally inside a handler,
  return inside finally, StopIteration raised in bodies;
- yield_from chains of three and more (each def mostly delegates to the
  next one);
- re-entrant `call`: every instance has a "home" def that it is usually
  started with, so a body can aim its calls at the instance that is running
  it, or at the instance delegating to it (a running delegator), with
  next / send / throw / close / state;
- throw / close / free / state / send at every point of an instance's life:
  just started, suspended at a plain yield or inside a delegation or inside
  a handler, stubbornly refusing to close, closed.

Each scenario draws its own weights for statements and operations, so that
some are yield-heavy, some exception-heavy, some call-heavy. Bodies always
terminate: yield_from only reaches later definitions (no recursion, whose
depth limit is CPython's own and not comparable), repeat counts are small,
and re-entering a running generator fails at once.
"""
import os
import random
import sys

# What bodies raise and callers throw: mostly ordinary errors, often the
# protocol's own exceptions.
RAISED = ["ValueError"] * 4 + ["KeyError"] * 3 + ["AppError", "SubAppError", "TypeError", "RuntimeError",
                                                  "LookupError", "StopIteration", "StopIteration",
                                                  "GeneratorExit", "Exception", "BaseException"]
CAUGHT = ["ValueError", "ValueError", "KeyError", "LookupError", "Exception", "BaseException",
          "GeneratorExit", "GeneratorExit", "StopIteration", "AppError", "SubAppError", "RuntimeError",
          "TypeError"]
WORDS = ["a", "b", "c", "x", "boom", "late", "k1", "k2", "fin", "v"]
MAX_DEPTH = 4  # nesting of try/repeat blocks


def pick(r, weights):
    """A key of weights (a dict of name: weight), at random."""
    total = sum(weights.values())
    x = r.random() * total
    for k, w in weights.items():
        x -= w
        if x < 0:
            return k
    return k


class Gen:
    def __init__(self, seed):
        r = self.r = random.Random(seed)
        self.ndefs = r.choice([2, 3, 3, 4, 4, 5, 6])
        self.names = [f"D{i}" for i in range(self.ndefs)]
        self.ids = [f"i{k}" for k in range(r.randint(2, 5))]
        # The def each instance is usually started with.
        self.home = {gid: min(r.randrange(self.ndefs), r.randrange(self.ndefs)) for gid in self.ids}
        # delegators[j]: defs that delegate to def j, directly or not.
        self.delegators = {j: set() for j in range(self.ndefs)}
        self.stmt_w = {
            "yield": r.uniform(3, 8), "log": r.uniform(0.3, 1.5), "raise": r.uniform(0.2, 1.5),
            "return": r.uniform(0.1, 0.6), "yield_from": r.uniform(0.5, 3), "call": r.uniform(0.3, 3),
            "repeat": r.uniform(0.3, 1.2), "try": r.uniform(1, 4), "idiom": r.uniform(0.5, 3),
        }
        self.op_w = {
            "next": r.uniform(3, 7), "send": r.uniform(0.5, 2.5), "throw": r.uniform(0.8, 3),
            "close": r.uniform(0.4, 2), "state": r.uniform(0.2, 1), "free": r.uniform(0.2, 1.2),
            "start": r.uniform(0.5, 2),
        }
        self.budget = 0
        self.yields_from = set()  # targets of the def being generated

    # -- small pieces -----------------------------------------------------

    def value(self):
        return "None" if self.r.random() < 0.15 else str(self.r.randint(-3, 40))

    def word(self):
        return self.r.choice(WORDS)

    def exc(self, pool=RAISED):
        t = self.r.choice(pool)
        return f"{t} {self.word()}" if self.r.random() < 0.7 else t

    # -- operations ---------------------------------------------------------

    def call_target(self, di, forwarded=False):
        """An instance for a `call` made by def di: often the one running
        this body, or one delegating to it."""
        r = self.r
        x = r.random()
        own = [g for g in self.ids if self.home[g] == di]
        dele = [g for g in self.ids if self.home[g] in self.delegators[di]]
        if forwarded and dele and x < 0.6:
            return r.choice(dele)
        if x < 0.35 and own:
            return r.choice(own)
        if x < 0.7 and dele:
            return r.choice(dele)
        if x < 0.73:
            return "nobody"  # never started: `missing`
        return r.choice(self.ids)

    def call_op(self, di, forwarded=False):
        gid = self.call_target(di, forwarded)
        k = pick(self.r, {"next": 3, "send": 1.5, "throw": 3, "close": 2.5, "state": 2})
        return self.op_text(k, gid)

    def op_text(self, k, gid):
        if k == "send":
            return f"send {gid} {self.value()}"
        if k == "throw":
            return f"throw {gid} {self.exc()}"
        return f"{k} {gid}"

    # -- bodies -------------------------------------------------------------

    def body(self, di, depth, in_except, out, ind, lo=1, hi=4):
        n = self.r.randint(lo, hi if depth < 2 else min(hi, 2))
        for _ in range(n):
            if self.budget <= 0:
                break
            self.budget -= 1
            self.stmt(di, depth, in_except, out, ind)

    def stmt(self, di, depth, in_except, out, ind):
        r = self.r
        p = " " * ind
        later = list(range(di + 1, self.ndefs))
        w = dict(self.stmt_w)
        if not later:
            w["yield_from"] = 0
        if depth >= MAX_DEPTH:
            w["repeat"] = w["try"] = w["idiom"] = 0
        if in_except:
            w["logexc"] = 1.2
            w["reraise"] = 0.6
        k = pick(r, w)
        if k == "yield":
            out.append(f"{p}yield {self.value()}")
        elif k == "log":
            out.append(f"{p}log {self.word()}")
        elif k == "logexc":
            out.append(f"{p}logexc")
        elif k == "reraise":
            out.append(f"{p}reraise")
        elif k == "raise":
            out.append(f"{p}raise {self.exc()}")
        elif k == "return":
            out.append(f"{p}return {self.value()}" if r.random() < 0.7 else f"{p}return")
        elif k == "yield_from":
            # Mostly the next def, so that chains get long.
            t = di + 1 if r.random() < 0.6 else r.choice(later)
            self.yields_from.add(t)
            out.append(f"{p}yield_from {self.names[t]}")
        elif k == "call":
            out.append(f"{p}call {self.call_op(di)}")
        elif k == "repeat":
            out.append(f"{p}repeat {r.choice([0, 1, 2, 2, 3])}")
            self.body(di, depth + 1, in_except, out, ind + 2)
            out.append(f"{p}end")
        elif k == "try":
            self.try_stmt(di, depth, in_except, out, ind)
        else:
            self.idiom(di, depth, in_except, out, ind)

    def try_stmt(self, di, depth, in_except, out, ind):
        r = self.r
        p = " " * ind
        out.append(f"{p}try")
        self.body(di, depth + 1, in_except, out, ind + 2)
        nh = r.choice([0, 1, 1, 1, 2, 3])
        final = nh == 0 or r.random() < 0.4
        for _ in range(nh):
            out.append(f"{p}except {r.choice(CAUGHT)}")
            self.body(di, depth + 1, True, out, ind + 2, lo=0)
        if final:
            out.append(f"{p}finally")
            self.body(di, depth + 1, in_except, out, ind + 2, lo=0)
        out.append(f"{p}end")

    def idiom(self, di, depth, in_except, out, ind):
        """A small pattern that random statements rarely produce."""
        r = self.r
        p = " " * ind
        q = " " * (ind + 2)
        k = r.randrange(12)
        if k >= 9:  # a handler or finally that calls on its instance or delegator
            # (when a throw or close is forwarded to this body, the delegator
            # is running because of it: SPEC G61)
            out += [f"{p}try", f"{q}yield {self.value()}"]
            if r.random() < 0.6:
                out.append(f"{p}except {r.choice(['BaseException', 'GeneratorExit', 'ValueError', 'Exception'])}")
                out.append(f"{q}call {self.call_op(di, forwarded=True)}")
                if r.random() < 0.5:
                    out.append(f"{q}logexc")
                if r.random() < 0.3:
                    out.append(f"{q}yield {self.value()}")
            else:
                out += [f"{p}finally", f"{q}call {self.call_op(di, forwarded=True)}"]
            out.append(f"{p}end")
        elif k == 0:  # stubborn: ignores GeneratorExit
            out += [f"{p}try", f"{q}yield {self.value()}", f"{p}except GeneratorExit"]
            if r.random() < 0.6:
                out.append(f"{q}logexc")
            out.append(f"{q}yield {self.value()}")
            out.append(f"{p}end")
        elif k == 1:  # swallows GeneratorExit and returns
            out += [f"{p}try", f"{q}yield {self.value()}", f"{p}except {r.choice(['GeneratorExit', 'BaseException'])}",
                    f"{q}return {self.value()}" if r.random() < 0.7 else f"{q}return", f"{p}end"]
        elif k == 2:  # yield inside finally (on the close path: ignored GeneratorExit)
            out.append(f"{p}try")
            self.body(di, depth + 1, in_except, out, ind + 2)
            out += [f"{p}finally", f"{q}log fin", f"{q}yield {self.value()}", f"{p}end"]
        elif k == 3:  # reraise inside a finally inside a handler
            out += [f"{p}try", f"{q}raise {self.exc()}", f"{p}except {r.choice(CAUGHT)}", f"{q}try"]
            self.body(di, depth + 2, True, out, ind + 4)
            out += [f"{q}finally", f"{q}  reraise", f"{q}end", f"{p}end"]
        elif k == 4:  # return inside finally drops the exception in flight
            out.append(f"{p}try")
            self.body(di, depth + 1, in_except, out, ind + 2)
            out += [f"{p}finally", f"{q}return {self.value()}", f"{p}end"]
        elif k == 5:  # StopIteration raised, caught or not
            if r.random() < 0.5:
                out += [f"{p}try", f"{q}raise StopIteration {self.word()}", f"{p}except StopIteration",
                        f"{q}logexc", f"{q}yield {self.value()}", f"{p}end"]
            else:
                out.append(f"{p}raise StopIteration")
        elif k == 6:  # yield in a handler, then logexc / reraise (G39)
            out += [f"{p}try", f"{q}raise {self.exc()}", f"{p}except BaseException", f"{q}yield {self.value()}",
                    f"{q}logexc"]
            if r.random() < 0.5:
                out.append(f"{q}reraise")
            out.append(f"{p}end")
        elif k == 7:  # a call made while handling an exception (G38, G66)
            out += [f"{p}try", f"{q}raise {self.exc()}", f"{p}except BaseException",
                    f"{q}call {self.call_op(di)}", f"{q}logexc", f"{p}end"]
        else:  # deep nesting
            out.append(f"{p}try")
            self.body(di, depth + 1, in_except, out, ind + 2)
            out.append(f"{p}except {r.choice(CAUGHT)}")
            self.body(di, depth + 1, True, out, ind + 2, lo=0)
            out += [f"{p}finally", f"{q}log f{depth}"]
            self.body(di, depth + 1, in_except, out, ind + 2, lo=0)
            out.append(f"{p}end")

    # -- the whole scenario ---------------------------------------------------

    def scenario(self):
        r = self.r
        out = []
        for i, name in enumerate(self.names):
            out.append(f"def {name}")
            self.budget = r.randint(3, 18)
            self.yields_from = set()
            self.body(i, 0, False, out, 2, lo=2, hi=6)
            out.append("end")
            for t in self.yields_from:
                self.delegators[t] |= {i} | self.delegators[i]
        return "\n".join(out + self.operations("\n".join(out))) + "\n"

    # How likely each operation is on an instance in each state: drive
    # fresh ones, poke suspended ones, free closed ones.
    BY_STATE = {
        "GEN_CREATED": {"next": 4, "send": 1, "throw": 1, "close": 0.8, "free": 0.6, "state": 0.3},
        "GEN_SUSPENDED": {"next": 4, "send": 2, "throw": 3, "close": 2, "free": 1, "state": 0.4},
        "GEN_CLOSED": {"next": 0.4, "send": 0.3, "throw": 0.5, "close": 0.4, "free": 3, "state": 0.3},
    }

    def operations(self, defs_text):
        """The operations, chosen while running them on oracle.py so that
        they reach every state. Only CPython's own generator states steer the
        choices, so a seed gives the same scenario on every Python version
        (after an operation that crashes CPython 3.11, see oracle.py, the
        states are no longer consulted)."""
        import oracle  # beside this file; imported late: only needed here
        r = self.r
        defs, _ = oracle.parse(defs_text)
        world = oracle.World(defs)
        out = []
        live = []
        with world.hooked():
            for _ in range(r.randint(6, 40)):
                dead = [g for g in self.ids if g not in live]
                informed = not world.hazard_seen
                states = {g: world.state(g) if informed else ("GEN_SUSPENDED", 0) for g in live}
                busy = [g for g in live if states[g][0] != "GEN_CLOSED"]
                if dead and (not busy or r.random() < 0.12 * self.op_w["start"]):
                    gid = r.choice(dead)
                    d = self.home[gid] if r.random() < 0.7 else r.randrange(self.ndefs)
                    line = f"start {gid} {self.names[d]}"
                    live.append(gid)
                else:
                    weight = {g: {"GEN_CREATED": 1, "GEN_SUSPENDED": 3 + 2 * min(states[g][1], 2),
                                  "GEN_CLOSED": 0.5}[states[g][0]] for g in live}
                    gid = pick(r, weight)
                    w = {k: v * self.op_w[k] for k, v in self.BY_STATE[states[gid][0]].items()}
                    k = pick(r, w)
                    line = self.op_text(k, gid)
                    if k == "free":
                        live.remove(gid)
                out.append(line)
                world.step(oracle.operation(line.split(), 0, False))
            world.finish()
        return out


def main(argv):
    if len(argv) == 2:
        sys.stdout.write(Gen(int(argv[1])).scenario())
        return 0
    if len(argv) == 4:
        seed, count, d = int(argv[1]), int(argv[2]), argv[3]
        os.makedirs(d, exist_ok=True)
        for s in range(seed, seed + count):
            with open(os.path.join(d, f"s{s}.scn"), "w") as f:
                f.write(Gen(s).scenario())
        return 0
    print(__doc__.strip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
