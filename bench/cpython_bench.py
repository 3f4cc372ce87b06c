"""cpython_bench.py: CPython's own generators, the semantics cogen copies,
measured the same way as bench_cogen and printed in the same format.

    python3 bench/cpython_bench.py roundtrip [N]           g.send(o), the body echoes o
    python3 bench/cpython_bench.py next_loop [ITEMS] [PASSES]
                                                           for x in gen(ITEMS): pass
                                                           (fastest chunk of 10,000 items)
    python3 bench/cpython_bench.py throw_catch [N]         g.throw(ValueError()), caught, yields again
    python3 bench/cpython_bench.py lifecycle [N]           g = gen(); next(g); g.close(); (freed)
    python3 bench/cpython_bench.py rss [N]                 memory per suspended generator, N alive
    python3 bench/cpython_bench.py chain K [N]             send through K levels of `yield from`

Timings use timeit with the names bound as locals in its setup, in 100
batches that add up to N (a few ms each), reporting the fastest batch, as
the C programs do. The time of timeit's empty loop (`pass`, timed the same way) is
subtracted, so the figures are the cost of the statement alone; that
favours CPython slightly against the C programs, whose loop overhead is
not subtracted.
"""
import gc
import sys
import timeit
from itertools import islice

IMPL = "cpython"
WARMUP = 10000
BATCHES = 100


def arg(i, default):
    if len(sys.argv) <= i:
        return default
    s = sys.argv[i].lower()
    mult = 1
    if s.endswith("k"):
        mult, s = 1000, s[:-1]
    elif s.endswith("m"):
        mult, s = 1000000, s[:-1]
    return int(float(s) * mult)


def count_name(n):
    if n >= 1000000 and n % 1000000 == 0:
        return "%dm" % (n // 1000000)
    if n >= 1000 and n % 1000 == 0:
        return "%dk" % (n // 1000)
    return str(n)


def result(bench, value, unit, n, extra=""):
    print("RESULT bench=%s impl=%s value=%.4f unit=%s n=%d%s"
          % (bench, IMPL, value, unit, n, (" " + extra) if extra else ""), flush=True)


def note(msg):
    print("NOTE " + msg, flush=True)


def best_per_op(timer, n):
    """Fastest of BATCHES batches adding up to n, in seconds per execution."""
    base = n // BATCHES
    best = None
    for b in range(BATCHES):
        m = n - base * (BATCHES - 1) if b == BATCHES - 1 else base
        if m <= 0:
            continue
        t = timer.timeit(m) / m
        best = t if best is None or t < best else best
    return best or 0.0


def per_op_ns(stmt, setup, n):
    """ns per execution of stmt, timeit's empty loop subtracted."""
    if n == 0:
        return 0.0
    timer = timeit.Timer(stmt, setup)
    timer.timeit(min(n, WARMUP))
    t = best_per_op(timer, n)
    empty = best_per_op(timeit.Timer("pass", setup), n)
    return max(t - empty, 0.0) * 1e9


ECHO = """
def gen():
    v = None
    while True:
        v = yield v
g = gen()
next(g)
send = g.send
o = object()
"""

CATCH = """
def gen():
    while True:
        try:
            yield
        except ValueError:
            pass
g = gen()
next(g)
throw = g.throw
E = ValueError
"""

ONCE = """
def gen():
    yield
nxt = next
"""

CHAIN = """
def leaf():
    v = None
    while True:
        v = yield v
def level(k):
    if k == 0:
        return (yield from leaf())
    return (yield from level(k - 1))
g = level(%d)
next(g)
send = g.send
o = object()
"""


def roundtrip(n):
    result("roundtrip", per_op_ns("send(o)", ECHO, n), "ns", n)


def chain(k, n):
    # level(k) is k delegators above the echoing leaf, as bench_cogen's chain.
    result("roundtrip_chain_%d" % k, per_op_ns("send(o)", CHAIN % (k - 1) if k else ECHO, n), "ns", n)


def throw_catch(n):
    result("throw_catch", per_op_ns("throw(E())", CATCH, n), "ns", n)


def lifecycle(n):
    result("lifecycle", per_op_ns("g = gen(); nxt(g); g.close()", ONCE, n), "ns", n)


CHUNK = 10000


def next_loop(items, passes):
    """for x in gen(items), timed in chunks of CHUNK items through islice
    (which adds about 1 ns per item); the fastest chunk counts."""
    def gen(n):
        for i in range(n):
            yield i

    clock = timeit.default_timer

    def iterate(n, best):
        g = gen(n)
        left = n
        while left >= CHUNK:
            t0 = clock()
            for _ in islice(g, CHUNK):
                pass
            t = (clock() - t0) / CHUNK
            best = t if best is None or t < best else best
            left -= CHUNK
        for _ in g:
            pass
        return best

    best = None
    if items < CHUNK:  # fewer items than a chunk: time each whole loop
        for _ in range(passes):
            t0 = clock()
            for _ in gen(items):
                pass
            t = (clock() - t0) / max(items, 1)
            best = t if best is None or t < best else best
    else:
        iterate(WARMUP, None)
        for _ in range(passes):
            best = iterate(items, best)
    result("next_loop", (best or 0.0) * 1e9, "ns", items * passes,
           "items=%d passes=%d chunk=%d" % (items, passes, CHUNK))


def read_mem():
    rss = pte = None
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmPTE:"):
                pte = int(line.split()[1])
    return rss, pte


def rss(n):
    def gen():
        yield

    bench = "rss_" + count_name(n)
    gc.disable()  # generators are not cyclic; keep the collector out of the timing of growth
    gens = [None] * n
    g = gen()
    next(g)
    del g
    rss0, pte0 = read_mem()
    for i in range(n):
        g = gen()
        next(g)
        gens[i] = g
    del g
    rss1, pte1 = read_mem()
    result(bench, (rss1 - rss0) / n if n else 0.0, "kib", n)
    result(bench + "_pte", (pte1 - pte0) / n if n else 0.0, "kib", n)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    b = sys.argv[1]
    if b == "roundtrip":
        roundtrip(arg(2, 5000000))
    elif b == "next_loop":
        next_loop(arg(2, 1000000), arg(3, 5))
    elif b == "throw_catch":
        throw_catch(arg(2, 500000))
    elif b == "lifecycle":
        lifecycle(arg(2, 1000000))
    elif b == "rss":
        rss(arg(2, 100000))
    elif b == "chain":
        if len(sys.argv) < 3:
            sys.exit(__doc__)
        chain(arg(2, 1), arg(3, 2000000))
    else:
        sys.exit("cpython_bench.py: unknown benchmark %r\n%s" % (b, __doc__))


if __name__ == "__main__":
    main()
