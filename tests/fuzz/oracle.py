#!/usr/bin/env python3
"""cogen's own oracle for the scenario language (docs/semantics.md, "Scenarios").

Runs a scenario on CPython's real generators and prints the trace that
cogen-scenario must print. It is written from the language's description,
independently of the reference runner (shared/semantics/scenario_ref.py),
so that a clone of cogen without that directory can still fuzz; where both
exist, difffuzz.py --check-oracle checks that they agree.

    oracle.py [--allow-hazard] FILE
        trace on stdout; invalid: message on stderr, status 2; a scenario
        that would crash CPython 3.10/3.11 (see below): status 3; one
        whose trace depends on CPython's cycle collector: status 4

How it works: each `def` is turned into a Python syntax tree (module `ast`)
of a generator function, one Python statement per scenario statement, so
that the generator protocol, exception context and finalization are
CPython's own. A World holds the instances and performs the operations,
both the top-level ones and those that bodies perform with `call`.

The semantics are those the reference runner prints on CPython 3.11,
whatever Python runs this file: close() returns the body's return value
(3.13) and is emulated with throw(GeneratorExit) (so, unlike a real
close(), its GeneratorExit is not chained to an exception the caller is
handling; the reference runner on 3.13 uses the real one and differs
there); on 3.12+ a StopIteration thrown into a generator that never
started is turned into 3.11's RuntimeError (SPEC.md G64).

CPython 3.10 and 3.11 crash (use after free) when a generator that is
running *because a throw or close is being forwarded through it* to its
subgenerator is itself thrown into or closed: the subgenerator's handler
does `call throw X` or `call close X` on its delegator X, and _gen_throw
pops the running delegator's stack. When that does not crash, what CPython
3.11 does is the reference (cogen mirrors it on purpose; 3.12 changed it).
So this oracle does not perform such an operation by default: the run
finishes with a placeholder result and run_text raises CPythonHazard. With
--allow-hazard (ALLOW_HAZARD) on 3.10/3.11 it performs it, to be run in a
process of its own that may crash; Python 3.12 and newer cannot stand in.

CPython can keep a suspended generator alive in a reference cycle that
goes through an exception's traceback and a frame (a subgenerator holds
the exception it handles, whose context's traceback holds the frame of the
delegator it was dropped by): it is finalized, and its cleanups run, only at
the next cycle collection, which the reference runner forces at each
`free`. cogen has no such cycles and finalizes it when it is dropped. When
body code runs inside a collection, run_text raises GCTiming: the trace
depends on when CPython collects, and is not compared.

Known limit, shared with every runner: CPython's recursion limit. A
`yield_from` chain about 990 deep raises RecursionError at a depth and
with a message that depend on the runner's own frames; this oracle does not
try to match the reference there.
"""
import ast
import contextlib
import gc
import inspect
import re
import sys
import weakref


class ScenarioError(Exception):
    """An invalid scenario; str() is the message without its prefix."""


class CPythonHazard(Exception):
    """The scenario reaches a crash of this CPython (see above)."""


class GCTiming(Exception):
    """Body code ran inside CPython's cycle collector (see above); .lines is
    the trace anyway."""

    def __init__(self, message, lines):
        super().__init__(message)
        self.lines = lines


# Whether to perform the operations that crash CPython 3.10/3.11 (above);
# only meaningful there.
ALLOW_HAZARD = False
# Versions without 3.11's G64.
G64_EMULATE = sys.version_info >= (3, 12)


class AppError(Exception):
    pass


class SubAppError(AppError):
    pass


EXC = {t.__name__: t for t in (BaseException, Exception, GeneratorExit, StopIteration, RuntimeError,
                               ValueError, TypeError, LookupError, KeyError, AppError, SubAppError)}

WORD = re.compile(r"[A-Za-z0-9_]+\Z")
INT = re.compile(r"-?[0-9]+\Z")

# ---------------------------------------------------------------------------
# Syntax: a scenario is a list of definitions and a list of operations.
# Statements are small classes; operations are Op records.


class Op:
    """A caller operation: kind, instance id and its argument (a def name for
    start, a value for send, (type, word) for throw)."""
    __slots__ = ("kind", "gid", "arg", "lineno")

    def __init__(self, kind, gid, arg=None, lineno=0):
        self.kind, self.gid, self.arg, self.lineno = kind, gid, arg, lineno

    def text(self):
        if self.kind == "send":
            return f"send {self.gid} {self.arg!r}"
        if self.kind == "start":
            return f"start {self.gid} {self.arg}"
        if self.kind == "throw":
            t, w = self.arg
            return f"throw {self.gid} {t}" + (f" {w}" if w is not None else "")
        return f"{self.kind} {self.gid}"


class Stmt:
    def __init__(self, kind, lineno, **kw):
        self.kind, self.lineno = kind, lineno
        self.__dict__.update(kw)


class Lines:
    """The significant lines of a text, as (line number, words)."""

    def __init__(self, text):
        self.items = []
        for no, raw in enumerate(text.splitlines(), 1):
            words = raw.partition("#")[0].split()
            if words:
                self.items.append((no, words))
        self.pos = 0

    def peek(self):
        return self.items[self.pos] if self.pos < len(self.items) else (None, None)

    def take(self):
        item = self.items[self.pos]
        self.pos += 1
        return item


def value_of(tok, no):
    if tok == "None":
        return None
    if INT.match(tok):
        return int(tok)
    raise ScenarioError(f"line {no}: bad value {tok!r}")


def exception_of(words, no):
    ok = len(words) in (1, 2) and words[0] in EXC and (len(words) == 1 or WORD.match(words[1]))
    if not ok:
        raise ScenarioError(f"line {no}: expected a known exception type and an optional word")
    return words[0], (words[1] if len(words) == 2 else None)


def operation(words, no, in_body):
    """An Op from its words; start and free only at the top level."""
    n = len(words)
    kind = words[0] if words else ""
    if kind == "start" and n == 3 and not in_body:
        return Op("start", words[1], words[2], no)
    if kind == "free" and n == 2 and not in_body:
        return Op("free", words[1], None, no)
    if kind in ("next", "close", "state") and n == 2:
        return Op(kind, words[1], None, no)
    if kind == "send" and n == 3:
        return Op("send", words[1], value_of(words[2], no), no)
    if kind == "throw" and n in (3, 4):
        return Op("throw", words[1], exception_of(words[2:], no), no)
    raise ScenarioError(f"line {no}: bad operation {' '.join(words)!r}")


class Parser:
    def __init__(self, text):
        self.lines = Lines(text)
        self.defs = {}  # name -> statement list, in definition order
        self.ops = []

    def parse(self):
        while self.lines.peek()[0] is not None:
            no, words = self.lines.take()
            if words[0] != "def":
                self.ops.append(operation(words, no, False))
                continue
            if len(words) != 2 or not WORD.match(words[1]) or words[1] in self.defs:
                raise ScenarioError(f"line {no}: def takes one new name")
            body, stop = self.statements(("end",), False)
            if stop is None:
                raise ScenarioError(f"line {no}: def without end")
            self.lines.take()
            self.defs[words[1]] = body
        self.check()
        return self.defs, self.ops

    def statements(self, stops, in_except):
        """Statements up to a line starting with one of stops (not consumed);
        returns them and that word, or None at the end of the text."""
        out = []
        while True:
            no, words = self.lines.peek()
            if no is None:
                return out, None
            if words[0] in stops:
                return out, words[0]
            self.lines.take()
            out.append(self.statement(no, words, in_except))

    def statement(self, no, words, in_except):
        kw, rest = words[0], words[1:]
        if kw == "yield":
            if len(rest) != 1:
                raise ScenarioError(f"line {no}: yield takes one value")
            return Stmt("yield", no, value=value_of(rest[0], no))
        if kw == "return":
            if len(rest) > 1:
                raise ScenarioError(f"line {no}: return takes at most one value")
            return Stmt("return", no, value=value_of(rest[0], no) if rest else None)
        if kw == "raise":
            t, w = exception_of(rest, no)
            return Stmt("raise", no, type=t, word=w)
        if kw in ("reraise", "logexc"):
            if not in_except:
                raise ScenarioError(f"line {no}: {kw} outside an except block")
            return Stmt(kw, no)
        if kw == "log":
            if len(rest) != 1 or not WORD.match(rest[0]):
                raise ScenarioError(f"line {no}: log takes one word")
            return Stmt("log", no, word=rest[0])
        if kw == "yield_from":
            if len(rest) != 1:
                raise ScenarioError(f"line {no}: yield_from takes one name")
            return Stmt("yield_from", no, name=rest[0])
        if kw == "call":
            return Stmt("call", no, op=operation(rest, no, True))
        if kw == "repeat":
            if len(rest) != 1 or not rest[0].isdigit():
                raise ScenarioError(f"line {no}: repeat takes a count")
            body, _ = self.statements(("end",), in_except)
            self.lines.pos += 1  # its `end`, or past the end of the text
            return Stmt("repeat", no, count=int(rest[0]), body=body)
        if kw == "try":
            return self.try_statement(no, in_except)
        raise ScenarioError(f"line {no}: unknown statement {kw!r}")

    def try_statement(self, no, in_except):
        body, stop = self.statements(("except", "finally", "end"), in_except)
        handlers, final = [], None
        while stop == "except":
            hno, hwords = self.lines.take()
            if len(hwords) != 2 or hwords[1] not in EXC:
                raise ScenarioError(f"line {hno}: except takes one known type")
            hbody, stop = self.statements(("except", "finally", "end"), True)
            handlers.append((hwords[1], hbody))
        if stop == "finally":
            self.lines.take()
            final, stop = self.statements(("end",), in_except)
        if stop != "end":
            raise ScenarioError(f"line {no}: try without end")
        if not handlers and final is None:
            raise ScenarioError(f"line {no}: try needs an except or a finally")
        self.lines.take()
        return Stmt("try", no, body=body, handlers=handlers, final=final)

    def check(self):
        def targets(stmts):
            for s in stmts:
                if s.kind == "yield_from":
                    yield s
                elif s.kind == "repeat":
                    yield from targets(s.body)
                elif s.kind == "try":
                    yield from targets(s.body)
                    for _, h in s.handlers:
                        yield from targets(h)
                    yield from targets(s.final or [])
        for body in self.defs.values():
            for s in targets(body):
                if s.name not in self.defs:
                    raise ScenarioError(f"line {s.lineno}: yield_from of unknown def {s.name!r}")
        live = set()
        for op in self.ops:
            if op.kind == "start":
                if op.arg not in self.defs:
                    raise ScenarioError(f"line {op.lineno}: start of unknown def {op.arg!r}")
                if op.gid in live:
                    raise ScenarioError(f"line {op.lineno}: instance {op.gid!r} is already live")
                live.add(op.gid)
            elif op.gid not in live:
                raise ScenarioError(f"line {op.lineno}: no live instance {op.gid!r}")
            elif op.kind == "free":
                live.discard(op.gid)


# ---------------------------------------------------------------------------
# Bodies as Python syntax trees. The generated code refers to a handful of
# helpers through module globals: E (log an event), X (format the exception
# being handled), K (exception types), N (make a fresh instance of a def),
# P (perform an operation and return its result text).


def _name(n):
    return ast.Name(id=n, ctx=ast.Load())


def _call(fn, *args):
    return ast.Call(func=fn if isinstance(fn, ast.AST) else _name(fn), args=list(args), keywords=[])


def _const(v):
    return ast.Constant(value=v)


def _event(prefix, tail=None):
    """E(prefix + tail) or E(prefix)."""
    arg = _const(prefix) if tail is None else ast.BinOp(left=_const(prefix), op=ast.Add(), right=tail)
    return ast.Expr(value=_call("E", arg))


def _assign(var, value):
    return ast.Assign(targets=[ast.Name(id=var, ctx=ast.Store())], value=value)


def _exc_type(t):
    return ast.Subscript(value=_name("K"), slice=_const(t), ctx=ast.Load())


class Builder:
    """Turns one def's statements into an ast.FunctionDef."""

    def __init__(self, name, pyname):
        self.name = name      # the scenario's name, for events
        self.pyname = pyname  # the Python function's name

    def function(self, stmts):
        body = self.block(stmts)
        # A def without a yield must still be a generator function.
        body.append(ast.While(test=_const(False), body=[ast.Expr(value=ast.Yield(value=None))], orelse=[]))
        args = ast.arguments(posonlyargs=[], args=[], vararg=None, kwonlyargs=[], kw_defaults=[],
                             kwarg=None, defaults=[])
        return ast.FunctionDef(name=self.pyname, args=args, body=body, decorator_list=[], returns=None)

    def block(self, stmts):
        out = []
        for s in stmts:
            out.extend(getattr(self, "s_" + s.kind)(s))
        return out or [ast.Pass()]

    def s_yield(self, s):
        return [_assign("got", ast.Yield(value=_const(s.value))),
                _event(f"{self.name}:recv ", _call("repr", _name("got")))]

    def s_return(self, s):
        return [ast.Return(value=_const(s.value))]

    def s_raise(self, s):
        args = [] if s.word is None else [_const(s.word)]
        return [ast.Raise(exc=_call(_exc_type(s.type), *args), cause=None)]

    def s_reraise(self, s):
        return [ast.Raise(exc=None, cause=None)]

    def s_log(self, s):
        return [_event(f"{self.name}:{s.word}")]

    def s_logexc(self, s):
        return [_event(f"{self.name}:exc ", _call("X"))]

    def s_yield_from(self, s):
        return [_assign("got", ast.YieldFrom(value=_call("N", _const(s.name)))),
                _event(f"{self.name}:yf ", _call("repr", _name("got")))]

    def s_call(self, s):
        op = (s.op.kind, s.op.gid, s.op.arg)
        return [_event(f"{self.name}:call {s.op.text()} -> ", _call("P", _const(op)))]

    def s_repeat(self, s):
        loop = ast.For(target=ast.Name(id="_", ctx=ast.Store()), iter=_call("range", _const(s.count)),
                       body=self.block(s.body), orelse=[])
        return [loop]

    def s_try(self, s):
        handlers = [ast.ExceptHandler(type=_exc_type(t), name=None, body=self.block(b)) for t, b in s.handlers]
        final = self.block(s.final) if s.final is not None else []
        return [ast.Try(body=self.block(s.body), handlers=handlers, orelse=[], finalbody=final)]


def fmt_exc(e, limit=9):
    """Type('arg') <- context ..., at most `limit` exceptions."""
    parts = []
    while e is not None and len(parts) < limit:
        parts.append(type(e).__name__ + "(" + ", ".join(repr(a) for a in e.args) + ")")
        e = e.__context__
    return " <- ".join(parts)


# ---------------------------------------------------------------------------
# Running


class World:
    """The instances of one run and the events of the current operation."""

    def __init__(self, defs, stats=None):
        self.live = {}  # id -> generator, in start order (dicts keep it)
        self.events = []
        self.stats = stats
        self.hazard = None  # the first operation that would crash CPython
        self.hazard_seen = False  # same, on any version
        self.forwarding = {}  # id(generator) -> throws/closes being forwarded through it
        self.in_gc = False  # inside a cycle collection
        self.gc_ran_code = False  # body code ran inside one
        glob = {"E": self.event, "X": lambda: fmt_exc(sys.exc_info()[1]), "K": EXC,
                "P": lambda op: self.perform(*op), "__builtins__": __builtins__}
        # Python names of the bodies are def_0, def_1, ...: a def may be named
        # like any helper, keyword or builtin.
        pyname = {n: f"def_{i}" for i, n in enumerate(defs)}
        glob["N"] = lambda name: glob[pyname[name]]()
        module = ast.Module(body=[Builder(n, pyname[n]).function(b) for n, b in defs.items()],
                            type_ignores=[])
        ast.fix_missing_locations(module)
        exec(compile(module, "<scenario>", "exec"), glob)
        self.make = {n: glob[p] for n, p in pyname.items()}

    def perform(self, kind, gid, arg=None, top=False):
        """Performs an operation; returns its result text."""
        if kind == "start":
            self.live[gid] = self.make[arg]()
            return "started"
        g = self.live.get(gid)
        if g is None:
            return "missing"
        if self.stats is not None:
            self.count(kind, g, top)
        if kind == "state":
            return inspect.getgeneratorstate(g)
        if kind in ("throw", "close") and g.gi_running and self.forwarding.get(id(g)) and \
                g.gi_frame is not sys._getframe(2):  # perform <- P <- the body
            self.hazard_seen = True
            if not (ALLOW_HAZARD and sys.version_info < (3, 12)):
                self.hazard = self.hazard or f"{kind} {gid} while a throw or close is forwarded through it"
                return "raised ValueError('generator already executing')"
        # Whether this operation forwards a throw or close through g to a
        # subgenerator. (gi_yieldfrom is read only on a suspended generator:
        # on a running one CPython 3.11 can hand back a freed object.)
        fwd = kind in ("throw", "close", "free") and inspect.getgeneratorstate(g) == inspect.GEN_SUSPENDED \
            and g.gi_yieldfrom is not None
        key = id(g)
        if fwd:
            self.forwarding[key] = self.forwarding.get(key, 0) + 1
        try:
            if kind != "free":
                return self.resume(kind, g, arg)
            # Drop the last reference (finalization closes a suspended
            # generator at once, or at the gc.collect if it is in a cycle).
            del self.live[gid]
            ref = weakref.ref(g)
            del g
            gc.collect()
            if ref() is not None and self.stats is not None:
                self.stats["free: still alive after gc"] = self.stats.get("free: still alive after gc", 0) + 1
            return "freed"
        finally:
            if fwd:
                self.forwarding[key] -= 1

    def resume(self, kind, g, arg):
        """next, send, throw, close: the operations that run the body."""
        try:
            if kind == "next":
                return f"yielded {next(g)!r}"
            if kind == "send":
                return f"yielded {g.send(arg)!r}"
            if kind == "close":
                return self.close(g)
            t, w = arg
            thrown = EXC[t]() if w is None else EXC[t](w)
            fresh = G64_EMULATE and isinstance(thrown, StopIteration) and \
                inspect.getgeneratorstate(g) == inspect.GEN_CREATED
            try:
                return f"yielded {g.throw(thrown)!r}"
            except StopIteration as e:
                if e is not thrown:
                    raise
                if fresh:  # 3.11 wraps it as for a started generator (G64)
                    error = RuntimeError("generator raised StopIteration")
                    error.__cause__ = error.__context__ = thrown
                    return "raised " + fmt_exc(error)
            # A closed generator hands the thrown exception back as it is.
            return "raised " + fmt_exc(thrown)
        except StopIteration as e:
            return f"returned {e.value!r}"
        except BaseException as e:  # noqa: B036 -- every scenario exception is a result
            return "raised " + fmt_exc(e)

    @staticmethod
    def close(g):
        """close() with Python 3.13's result: the body's return value. It is
        throw(GeneratorExit) on every version, as the reference runner does
        on 3.11: a real close() differs in one detail, its GeneratorExit is
        chained to the exception the caller is handling (PyErr_SetNone),
        a thrown one is not; cogen follows the reference."""
        if inspect.getgeneratorstate(g) == inspect.GEN_CREATED:
            g.close()
            return "closed None"
        try:
            g.throw(GeneratorExit)
        except GeneratorExit:
            return "closed None"
        except StopIteration as e:
            return f"closed {e.value!r}"
        raise RuntimeError("generator ignored GeneratorExit")

    def count(self, kind, g, top):
        """Coverage statistics: which operation met which state. RUNNING is
        split into the body calling on its own instance (self) and on an
        instance that runs because it delegates to the caller (delegator);
        +yfN: the instance is suspended (or running) inside a delegation N
        deep, seen through gi_yieldfrom (for a running one: a throw or close
        is being forwarded through it)."""
        state = inspect.getgeneratorstate(g)[4:]
        if state == "RUNNING":
            caller = sys._getframe(3)  # count <- perform <- P <- the body
            state += "(self)" if g.gi_frame is caller else "(delegator)"
            if self.forwarding.get(id(g)):
                state += "+forwarding"
        elif state == "SUSPENDED":
            depth = self.state(None, g)[1]
            if depth:
                state += f"+yf{min(depth, 3)}"
        key = f"{'top' if top else 'call'} {kind} on {state}"
        self.stats[key] = self.stats.get(key, 0) + 1

    def event(self, text):
        if self.in_gc:
            self.gc_ran_code = True
        self.events.append(text)

    def gc_phase(self, phase, info):
        self.in_gc = phase == "start"

    def step(self, op):
        """Performs one top-level operation; returns its trace line."""
        del self.events[:]
        result = self.perform(op.kind, op.gid, op.arg, top=True)
        text = f"{op.text()} -> {result} [{'; '.join(self.events)}]"
        if op.kind != "free":
            text += " " + inspect.getgeneratorstate(self.live[op.gid])
        return text

    def finish(self):
        """Frees what is still live, in start order; returns the lines."""
        return [self.step(Op("free", gid)) for gid in list(self.live)]

    @contextlib.contextmanager
    def hooked(self):
        """Failures of finalization become `unraisable` events meanwhile."""
        hook = sys.unraisablehook
        sys.unraisablehook = lambda u: self.event("unraisable " + fmt_exc(u.exc_value))
        gc.callbacks.append(self.gc_phase)
        try:
            yield self
        finally:
            sys.unraisablehook = hook
            gc.callbacks.remove(self.gc_phase)
            self.in_gc = False

    def state(self, gid, g=None):
        """(state name, delegation depth) of a live instance that is not
        running (or of generator g)."""
        g = g or self.live[gid]
        depth, sub = 0, g.gi_yieldfrom
        while sub is not None:
            depth += 1
            sub = getattr(sub, "gi_yieldfrom", None)
        return inspect.getgeneratorstate(g), depth

    def run(self, ops):
        with self.hooked():
            out = [self.step(op) for op in ops] + self.finish()
        if self.stats is not None:
            self.note_events(out)
        return out

    def note_events(self, out):
        for text in out:
            for pat in ("unraisable", "generator ignored GeneratorExit", "generator raised StopIteration",
                        "generator already executing", "just-started generator", ":yf ", ":exc ", " <- ",
                        "RecursionError", ":call "):
                if pat in text:
                    self.stats[f"trace has {pat.strip()!r}"] = self.stats.get(f"trace has {pat.strip()!r}", 0) + 1


def parse(text):
    return Parser(text).parse()


def run_text(text, stats=None):
    """The trace lines of a scenario; raises ScenarioError if it is invalid,
    CPythonHazard if this CPython cannot run it."""
    defs, ops = parse(text)
    world = World(defs, stats)
    lines = world.run(ops)
    if world.gc_ran_code:
        if stats is not None:
            stats["cleanups run by CPython's cycle collector"] = \
                stats.get("cleanups run by CPython's cycle collector", 0) + 1
        raise GCTiming("body code ran inside CPython's cycle collector", lines)
    if world.hazard:
        if stats is not None:
            stats["CPython 3.11 hazard"] = stats.get("CPython 3.11 hazard", 0) + 1
        raise CPythonHazard(world.hazard)
    return lines


def main(argv):
    global ALLOW_HAZARD
    args = argv[1:]
    if args[:1] == ["--allow-hazard"]:
        ALLOW_HAZARD = True
        args = args[1:]
    if len(args) != 1:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    with open(args[0], encoding="utf-8") as f:
        text = f.read()
    try:
        lines = run_text(text)
    except ScenarioError as e:
        print(f"scenario error: {e}", file=sys.stderr)
        return 2
    except GCTiming as e:
        print(f"oracle: not comparable: {e}: the trace depends on when CPython collects", file=sys.stderr)
        return 4
    except CPythonHazard as e:
        print(f"oracle: not run: {e} (CPython 3.10/3.11 may crash there; --allow-hazard runs it anyway, "
              "on those versions only)", file=sys.stderr)
        return 3
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
