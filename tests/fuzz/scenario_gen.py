#!/usr/bin/env python3
"""Random generator scenarios over the whole language of SCENARIO.md.

    scenario_gen.py SEED            # one scenario on stdout
    scenario_gen.py SEED COUNT DIR  # COUNT scenarios, DIR/s<SEED+i>.scn

The same seed always gives the same scenario. What the generator aims at:
nested try/except/finally (up to depth 4), yield inside finally blocks and
handlers, handlers that swallow GeneratorExit, StopIteration raised in
bodies, yield_from chains of three and more, `call` on any instance
(re-entrant ones included), and throw / close / free / state in every state.
Bodies always terminate: yield_from only reaches later definitions, repeat
counts are small, and re-entering a running generator fails at once.
"""
import os
import random
import sys

TYPES = ["BaseException", "Exception", "GeneratorExit", "StopIteration", "RuntimeError",
         "ValueError", "TypeError", "LookupError", "KeyError", "AppError", "SubAppError"]
# What bodies raise and callers throw: mostly ordinary errors, sometimes the
# protocol's own exceptions.
RAISED = ["ValueError"] * 4 + ["KeyError"] * 3 + ["AppError", "SubAppError", "TypeError",
          "RuntimeError", "LookupError", "StopIteration", "StopIteration", "GeneratorExit",
          "Exception", "BaseException"]
CAUGHT = ["ValueError", "KeyError", "LookupError", "Exception", "BaseException",
          "GeneratorExit", "GeneratorExit", "StopIteration", "AppError", "SubAppError",
          "RuntimeError", "TypeError"]
WORDS = ["a", "b", "c", "x", "boom", "late", "k1", "k2", "fin", "v"]


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)
        self.ndefs = self.r.randint(2, 5)
        self.names = [f"D{i}" for i in range(self.ndefs)]
        self.ids = [f"i{k}" for k in range(self.r.randint(2, 5))]
        self.budget = 0

    def value(self):
        r = self.r.random()
        if r < 0.15:
            return "None"
        return str(self.r.randint(-3, 40))

    def word(self):
        return self.r.choice(WORDS)

    def exc(self, pool):
        t = self.r.choice(pool)
        return f"{t} {self.word()}" if self.r.random() < 0.7 else t

    def op(self, inside):
        k = self.r.random()
        gid = self.r.choice(self.ids)
        if k < 0.30:
            return f"next {gid}"
        if k < 0.45:
            return f"send {gid} {self.value()}"
        if k < 0.65:
            return f"throw {gid} {self.exc(RAISED)}"
        if k < 0.80:
            return f"close {gid}"
        if k < 0.90 or inside:
            return f"state {gid}"
        return f"free {gid}"

    def body(self, di, depth, in_except, in_finally, out, ind):
        n = self.r.randint(1, 4 if depth < 2 else 2)
        for _ in range(n):
            if self.budget <= 0:
                break
            self.budget -= 1
            self.stmt(di, depth, in_except, in_finally, out, ind)

    def stmt(self, di, depth, in_except, in_finally, out, ind):
        p = " " * ind
        r = self.r.random()
        later = self.names[di + 1:]
        if r < 0.26:
            out.append(f"{p}yield {self.value()}")
        elif r < 0.33:
            out.append(f"{p}log {self.word()}")
        elif r < 0.40 and in_except:
            out.append(f"{p}logexc")
        elif r < 0.45 and in_except:
            out.append(f"{p}reraise")
        elif r < 0.52:
            out.append(f"{p}raise {self.exc(RAISED)}")
        elif r < 0.57:
            out.append(f"{p}return {self.value()}" if self.r.random() < 0.7 else f"{p}return")
        elif r < 0.66 and later:
            out.append(f"{p}yield_from {self.r.choice(later)}")
        elif r < 0.73:
            out.append(f"{p}call {self.op(True)}")
        elif r < 0.78 and depth < 4:
            out.append(f"{p}repeat {self.r.randint(0, 3)}")
            self.body(di, depth + 1, in_except, in_finally, out, ind + 2)
            out.append(f"{p}end")
        elif depth < 4:
            out.append(f"{p}try")
            self.body(di, depth + 1, in_except, in_finally, out, ind + 2)
            nh = self.r.choice([0, 1, 1, 1, 2, 3])
            final = nh == 0 or self.r.random() < 0.45
            for _ in range(nh):
                out.append(f"{p}except {self.r.choice(CAUGHT)}")
                self.body(di, depth + 1, True, in_finally, out, ind + 2)
            if final:
                out.append(f"{p}finally")
                self.body(di, depth + 1, in_except, True, out, ind + 2)
            out.append(f"{p}end")
        else:
            out.append(f"{p}yield {self.value()}")

    def scenario(self):
        out = []
        for i, name in enumerate(self.names):
            out.append(f"def {name}")
            self.budget = self.r.randint(3, 18)
            self.body(i, 0, False, False, out, 2)
            out.append("end")
        live = []
        for _ in range(self.r.randint(6, 30)):
            dead = [g for g in self.ids if g not in live]
            if dead and (not live or self.r.random() < 0.25):
                gid = self.r.choice(dead)
                out.append(f"start {gid} {self.r.choice(self.names)}")
                live.append(gid)
                continue
            o = self.op(False)
            gid = o.split()[1]
            if gid not in live:
                continue
            if o.startswith("free"):
                live.remove(gid)
            out.append(o)
        return "\n".join(out) + "\n"


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
