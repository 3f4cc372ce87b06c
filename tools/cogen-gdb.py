# cogen-gdb.py: gdb commands for programs that use cogen.
#
#   (gdb) source tools/cogen-gdb.py          # or: gdb -x tools/cogen-gdb.py
#   (gdb) cogen-list                         # live generators of every thread
#   (gdb) cogen-bt GEN [bt options]          # backtrace of a suspended one
#   (gdb) cogen-bt -a [bt options]           # ... of every suspended one
#
# GEN is an expression giving a generator (a `cg_gen *` variable, an
# address from cogen-list) or a generator's name (cg_opts.name).
#
# How it works. Each thread keeps the generators it made and has not freed
# in a list (thread-local `cg__gt.live`, linked through `live_next` of the
# library's private `struct cg_gen`); the library is built with debug info
# (RelWithDebInfo by default), so gdb knows the struct. A suspended
# generator's registers are in the frame its context switch pushed on its
# own stack, at its saved stack pointer `sp` (layouts in
# src/arch/x86_64-sysv.S and src/arch/aarch64-aapcs64.S; for the ucontext
# switch, `sp` points at a ucontext_t). cogen-bt sets the selected thread's
# registers to those, runs `bt`, and puts the thread's own registers back:
# gdb then unwinds the generator's stack as if the generator were running,
# down to the entry trampoline cg__entry, whose CFI marks the end of the
# stack. A swapped-out compact generator's frames are copied back to its
# stack for the backtrace, and what they covered is put back after. It
# needs a live process (registers cannot be set in a core file).
#
# See docs/debugging.md.

import re

import gdb

STATE_NAMES = {0: "GEN_CREATED", 1: "GEN_SUSPENDED", 2: "GEN_RUNNING", 3: "GEN_CLOSED"}
CREATED, SUSPENDED, RUNNING, CLOSED = 0, 1, 2, 3
EV_DELEGATE = 1  # struct cg_gen.ev: the body handed its resumer a subgenerator
GUARD_NAMES = {1: "page", 2: "canary", 3: "copy"}


def _ptr(value):
    return int(value.cast(gdb.lookup_type("unsigned long")))


def _string(value, default):
    if _ptr(value) == 0:
        return default
    try:
        return value.string()
    except gdb.error:
        return "<unreadable %#x>" % _ptr(value)


def _symbol(value):
    """Name of the function a pointer points at, or its address."""
    addr = _ptr(value)
    block = gdb.block_for_pc(addr) if addr else None
    if block is not None and block.function is not None:
        return block.function.print_name
    m = re.search(r"<([^>+]+)", str(value))
    return m.group(1) if m else "%#x" % addr


class ThreadGens:
    """What one thread's cg__t and cg__gt say: its generators, newest first, the
    generator executing now (0: none) and the addresses of its own-stack
    context and of the context executing now."""

    def __init__(self, thread):
        thread.switch()
        try:
            t = gdb.parse_and_eval("cg__t")
            gt = gdb.parse_and_eval("cg__gt")
            self.main_ctx = _ptr(gdb.parse_and_eval("&cg__t.main"))
        except gdb.error as e:
            raise gdb.GdbError(
                "cogen: cannot read the thread-locals cg__t and cg__gt in thread %d (%s); is the "
                "program linked with cogen built with debug info?" % (thread.num, e)
            )
        self.thread = thread
        cur = t["cur"]
        self.cur_ctx = _ptr(cur)
        self.cur_gen = _ptr(cur["gen"]) if self.cur_ctx else 0
        self.gens = []
        g = gt["live"]
        seen = set()
        while _ptr(g) and _ptr(g) not in seen:
            seen.add(_ptr(g))
            self.gens.append(g)
            g = g["live_next"]


def _select_level(level):
    """Selects frame `level` of the selected thread, quietly (the `frame`
    command would print it)."""
    f = gdb.newest_frame()
    for _ in range(level):
        older = f.older()
        if older is None:
            break
        f = older
    f.select()


def _all_threads():
    """[ThreadGens] for every thread, in thread order."""
    inferior = gdb.selected_inferior()
    if inferior.pid == 0:
        raise gdb.GdbError("cogen: the program is not running")
    orig_thread = gdb.selected_thread()
    orig_level = gdb.selected_frame().level()
    out = []
    try:
        for thread in sorted(inferior.threads(), key=lambda t: t.num):
            out.append(ThreadGens(thread))
    finally:
        orig_thread.switch()
        _select_level(orig_level)
    return out


def _describe(g):
    state = int(g["state"])
    stack = g["stack"]
    if _ptr(stack):
        guard = GUARD_NAMES.get(int(stack["kind"]), "?")
    else:
        guard = "-"
    return {
        "addr": _ptr(g),
        "name": _string(g["name"], "generator"),
        "state": STATE_NAMES.get(state, "state %d" % state),
        "size": int(g["stack_size"]),
        "guard": guard,
        "fn": _symbol(g["fn"]),
        "yf": _ptr(g["yf"]),
    }


class CogenList(gdb.Command):
    """List the live generators of every thread.

Usage: cogen-list

One line per generator that its thread made and has not freed, newest
first: address, name, state, usable stack size, stack protection (page:
guard page; canary: canary word checked at each switch; -: closed, no
stack), body function, the generator it delegates to (yield from), and
for a compact generator whether its stack is swapped out.
The generator executing right now in a thread is marked with '*'."""

    def __init__(self):
        super().__init__("cogen-list", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        if arg.strip():
            raise gdb.GdbError("usage: cogen-list")
        total = 0
        for tg in _all_threads():
            n = len(tg.gens)
            print("Thread %d (LWP %d): %d live generator%s" % (tg.thread.num, tg.thread.ptid[1], n, "" if n == 1 else "s"))
            for g in tg.gens:
                d = _describe(g)
                mark = "*" if d["addr"] == tg.cur_gen else " "
                extra = ""
                if d["yf"]:
                    sub = gdb.parse_and_eval("(struct cg_gen *)%d" % d["yf"])
                    extra = "  yield from %#x '%s'" % (d["yf"], _string(sub["name"], "generator"))
                if int(g["compact"]):
                    extra += "  [compact, swapped out]" if _ptr(g["swap"]) else "  [compact]"
                print("%s %#x  %-16s %-14s %8d  %-6s  %s%s"
                      % (mark, d["addr"], "'%s'" % d["name"], d["state"], d["size"], d["guard"], d["fn"], extra))
            total += n
        print("%d live generator%s" % (total, "" if total == 1 else "s"))


def _find(spec, threads):
    """(ThreadGens, generator) for the live generator named or pointed at by
    spec."""
    live = {}
    for tg in threads:
        for g in tg.gens:
            live[_ptr(g)] = (tg, g)
    addr = None
    try:
        addr = _ptr(gdb.parse_and_eval(spec))
    except gdb.error:
        pass
    if addr is not None and addr in live:
        return live[addr]
    named = [v for v in live.values() if _string(v[1]["name"], "generator") == spec]
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        raise gdb.GdbError("cogen: %d live generators are named '%s': %s; give an address"
                           % (len(named), spec, ", ".join("%#x" % _ptr(v[1]) for v in named)))
    if addr is not None:
        raise gdb.GdbError("cogen: %#x is not a live generator (see cogen-list)" % addr)
    raise gdb.GdbError("cogen: no live generator named '%s' (see cogen-list)" % spec)


def _resumer(g):
    """The context a running generator switches back to: its exception
    context parent, which is its resumer, except for a subgenerator run
    for a delegation chain, whose parent is its delegator: then the top of
    the chain's parent. (The assembly fast path does not keep `resumer`.)"""
    n = g if g.type.strip_typedefs().code == gdb.TYPE_CODE_PTR else g.address
    for _ in range(100000):
        p = n["ctx"]["parent"]
        if _ptr(p) == 0:
            return 0
        pg = p.dereference()["gen"]
        if _ptr(pg) and _ptr(pg["yf"]) == _ptr(n) and int(pg["state"]) == RUNNING:
            n = pg
            continue
        return _ptr(p)
    return 0


def _parked_frame(tg, ctx):
    """Where the registers of context ctx (a generator's, or the thread's
    own) are saved while a generator it resumed runs: that generator's
    ret_sp. A delegator parked in cg_yield_from is not the resumer of its
    subgenerator (the resumer of the whole chain is), so generators parked
    that way are passed over. Returns None when ctx resumed nothing."""
    for g in tg.gens:
        if int(g["state"]) != RUNNING or _resumer(g) != ctx:
            continue
        if _ptr(g["yf"]) and int(g["ev"]) == EV_DELEGATE:
            continue
        return _ptr(g["ret_sp"])
    return None


def _read_u64(addr):
    mem = gdb.selected_inferior().read_memory(addr, 8)
    return int.from_bytes(bytes(mem), "little")


def _uses_ucontext():
    try:
        gdb.execute("info address cg__entry", to_string=True)
        return False
    except gdb.error:
        return True


def _function_at(addr):
    """Name of the symbol whose code holds addr ("cg__switch"), or None."""
    try:
        out = gdb.execute("info symbol %#x" % addr, to_string=True)
    except gdb.error:
        return None
    m = re.match(r"(\S+)( \+ \d+)? in section", out)
    # gdb may print a name with "__" as "cg.entry"
    return m.group(1).replace(".", "__") if m else None


def _saved_registers(sp):
    """{register: value} that resume the context saved at sp, as the
    context switch would."""
    arch = gdb.selected_frame().architecture().name()
    if "x86-64" in arch:
        if _uses_ucontext():
            # glibc's ucontext_t: uc_mcontext.gregs[] starts at byte 40;
            # REG_R12..REG_R15 = 4..7, REG_RBP 10, REG_RBX 11, REG_RSP 15,
            # REG_RIP 16.
            greg = lambda i: _read_u64(sp + 40 + 8 * i)
            return {"r12": greg(4), "r13": greg(5), "r14": greg(6), "r15": greg(7),
                    "rbp": greg(10), "rbx": greg(11), "rsp": greg(15), "rip": greg(16)}
        # [sp+0] r15 r14 r13 r12 rbx rbp, [sp+48] where the switch continues,
        # with rsp = sp + 56: cg__switch_ret (returns to cg__switch's
        # caller), cg__entry (a fresh stack), or, for a body parked by the
        # assembly cg_yield, the return address into cg_yield's caller:
        # that one is shown as a frame of cg_yield, as if just called.
        regs = {"r15": _read_u64(sp), "r14": _read_u64(sp + 8), "r13": _read_u64(sp + 16),
                "r12": _read_u64(sp + 24), "rbx": _read_u64(sp + 32), "rbp": _read_u64(sp + 40),
                "rip": _read_u64(sp + 48), "rsp": sp + 56}
        if _function_at(regs["rip"]) not in ("cg__switch", "cg__switch_ret", "cg__entry", "cg_send", "cg_throw"):
            regs["rip"] = int(gdb.parse_and_eval("(unsigned long)&cg_yield"))
            regs["rsp"] = sp + 48
        return regs
    if "aarch64" in arch:
        if _uses_ucontext():
            # glibc's ucontext_t on AArch64: uc_mcontext at byte 176 holds
            # fault_address, regs[31], sp, pc.
            base = sp + 176 + 8
            regs = {"x%d" % i: _read_u64(base + 8 * i) for i in range(19, 31)}
            regs["sp"] = _read_u64(base + 8 * 31)
            regs["pc"] = _read_u64(base + 8 * 32)
            return regs
        # x19..x28 at sp+0..72, x29 at +80, x30 (return address) at +88;
        # the switch returns to x30 with sp = saved + 160.
        regs = {"x%d" % (19 + i): _read_u64(sp + 8 * i) for i in range(12)}
        regs["pc"] = regs["x30"]
        regs["sp"] = sp + 160
        return regs
    raise gdb.GdbError("cogen-bt: no support for architecture %s" % arch)


def _set_register(name, value):
    gdb.newest_frame().select()  # a register set in an outer frame writes memory
    gdb.execute("set var $%s = %d" % (name, value), to_string=True)


class _swapped_in:
    """While active, a swapped-out compact generator's frames are back on
    its stack: the used part of a compact generator's stack lives in a
    buffer (swap, swap_len bytes) while it is not resident, and goes back to
    the same addresses, the top of its stack, before it runs. The bytes it
    covers there (unused: zeros from the dropped pages) are put back after,
    so the program finds its memory as it left it."""

    def __init__(self, g):
        self.len = int(g["swap_len"]) if _ptr(g["swap"]) else 0
        if self.len:
            self.buf = _ptr(g["swap"])
            self.at = _ptr(g["stack"]["hi"]) - self.len
            print("  (compact, swapped out: its %d bytes of stack are shown from their copy)" % self.len)

    def __enter__(self):
        if self.len:
            inf = gdb.selected_inferior()
            self.saved = inf.read_memory(self.at, self.len).tobytes()
            try:
                inf.write_memory(self.at, inf.read_memory(self.buf, self.len).tobytes())
            except gdb.error as e:
                raise gdb.GdbError("cogen-bt: cannot write the program's memory (%s); it needs a live process" % e)
        return self

    def __exit__(self, *exc):
        if self.len:
            gdb.selected_inferior().write_memory(self.at, self.saved)
        return False


def _backtrace_with(regs, bt_args):
    """Runs bt with the selected thread's registers set to regs, then puts
    the thread's own registers back."""
    frame0 = gdb.newest_frame()
    level = gdb.selected_frame().level()
    saved = {name: int(frame0.read_register(name)) & 0xFFFFFFFFFFFFFFFF for name in regs}
    # Stack pointer first, program counter last: gdb rebuilds its frames
    # after each write, and the pc decides which unwinder it picks.
    order = sorted(regs, key=lambda n: (n in ("rip", "pc"), n not in ("rsp", "sp"), n))
    try:
        try:
            for name in order:
                _set_register(name, regs[name])
        except gdb.error as e:
            raise gdb.GdbError("cogen-bt: cannot set registers (%s); it needs a live process" % e)
        gdb.execute("bt %s" % bt_args)
    finally:
        for name in order:
            try:
                _set_register(name, saved[name])
            except gdb.error:
                pass
        _select_level(level)


class CogenBt(gdb.Command):
    """Backtrace of a generator that is not executing.

Usage: cogen-bt GEN [bt options]
       cogen-bt -a [bt options]
       cogen-bt -thread [bt options]

GEN is a generator's address or a `cg_gen *` expression, or its name.
Shows the frames on the generator's own stack, innermost first, down to
the entry trampoline cg__entry, as `bt` would if the generator were
executing; options (full, N, -full ...) go to bt.
  - suspended: from the cg_yield (or cg_yield_from) where it is parked;
  - new (GEN_CREATED): only cg__entry, where it will start;
  - running but not executing: a delegator parked in cg_yield_from, or a
    generator whose body is resuming another one (from that cg_send);
  - the generator executing now: its frames are the thread's stack: `bt`.
-a does it for every generator of every thread that has frames to show.
-thread shows the selected thread's own stack below the generators it is
running (`bt` stops at the innermost generator's cg__entry)."""

    def __init__(self):
        super().__init__("cogen-bt", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        argv = gdb.string_to_argv(arg)
        if not argv:
            raise gdb.GdbError("usage: cogen-bt GEN [bt options] | -a | -thread")
        bt_args = " ".join(argv[1:])
        try:
            threads = _all_threads()
        except gdb.GdbError:
            if argv[0] in ("-a", "-thread"):
                raise
            threads = None
        if argv[0] == "-a":
            for tg in threads:
                for g in tg.gens:
                    if int(g["state"]) != CLOSED and _ptr(g) != tg.cur_gen:
                        self._one(tg, g, bt_args, True)
            return
        if argv[0] == "-thread":
            num = gdb.selected_thread().num
            tg = [t for t in threads if t.thread.num == num][0]
            if tg.cur_ctx in (0, tg.main_ctx):
                raise gdb.GdbError("cogen: thread %d is on its own stack now: use bt" % num)
            sp = _parked_frame(tg, tg.main_ctx)
            if sp is None:
                raise gdb.GdbError("cogen: cannot find where thread %d's own stack is parked" % num)
            print("thread %d's own stack, below its running generators:" % num)
            _backtrace_with(_saved_registers(sp), bt_args)
            return
        if threads is None:
            # No thread-local storage (e.g. a remote stub without qGetTLSAddr,
            # like qemu-user's): trust an explicit pointer.
            try:
                g = gdb.parse_and_eval(argv[0]).cast(gdb.lookup_type("struct cg_gen").pointer())
            except gdb.error as e:
                raise gdb.GdbError("cogen: cannot read cg__t here, and %s is not a cg_gen pointer (%s)" % (argv[0], e))
            print("(cg__t is unreadable here: %s is not checked against the live lists)" % argv[0])
            self._one(None, g, bt_args, False)
            return
        tg, g = _find(argv[0], threads)
        self._one(tg, g, bt_args, False)

    def _one(self, tg, g, bt_args, show_thread):
        d = _describe(g)
        state = int(g["state"])
        where = " of thread %d" % tg.thread.num if show_thread else ""
        if tg is None:
            if state == RUNNING and not (d["yf"] and int(g["ev"]) == EV_DELEGATE):
                print("generator %#x '%s', %s, %s:" % (d["addr"], d["name"], d["state"], d["fn"]))
                print("  running: without cg__t, where its registers are cannot be found")
                return
            tg_cur = None
        else:
            tg_cur = tg.cur_gen
        print("generator %#x '%s'%s, %s, %s:" % (d["addr"], d["name"], where, d["state"], d["fn"]))
        if state == CLOSED:
            print("  closed: it has no stack any more")
            return
        if tg is not None and d["addr"] == tg_cur:
            print("  executing now in thread %d: its frames are that thread's stack (bt)" % tg.thread.num)
            return
        sp = _ptr(g["sp"])
        if state == RUNNING and tg is not None:
            parked = _parked_frame(tg, d["addr"])
            if parked is not None:
                sp = parked
        with _swapped_in(g):
            _backtrace_with(_saved_registers(sp), bt_args)


CogenList()
CogenBt()
