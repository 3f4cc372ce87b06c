# cogen-gdb.py: gdb commands for programs that use cogen.
#
#   (gdb) source tools/cogen-gdb.py          # or: gdb -x tools/cogen-gdb.py
#   (gdb) cogen-list                         # live generators of every thread
#   (gdb) cogen-bt GEN [bt options]          # backtrace of a suspended one
#   (gdb) cogen-bt -a [bt options]           # ... of every suspended one
#   (gdb) cogen-tasks [LOOP]                 # an event loop's tasks and what each awaits
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
import time

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


def _each_thread(read):
    """[read(thread)] for every thread of the live program, in thread
    order, each read with its thread selected; the selected thread and
    frame are put back after."""
    inferior = gdb.selected_inferior()
    if inferior.pid == 0:
        raise gdb.GdbError("cogen: the program is not running")
    orig_thread = gdb.selected_thread()
    orig_level = gdb.selected_frame().level()
    try:
        return [read(thread) for thread in sorted(inferior.threads(), key=lambda t: t.num)]
    finally:
        orig_thread.switch()
        _select_level(orig_level)


def _all_threads():
    """[ThreadGens] for every thread, in thread order."""
    return _each_thread(ThreadGens)


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
        "size": int(g["stack_4k"]) << 12,  # kept in 4 KiB units
        "guard": guard,
        # fn shares its word with the inbox link once another thread freed it
        "fn": "(freed, in its owner's inbox)" if int(g["in_inbox"]) else _symbol(g["fn"]),
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
                    extra += "  [compact, swapped out]" if _swapped_out(g) else "  [compact]"
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
        # caller), cg__entry (a fresh stack), the fast paths' resumers
        # (cg_send, cg_throw, cg__send_start), or, for a body parked by the
        # assembly cg_yield, the return address into cg_yield's caller:
        # that one is shown as a frame of cg_yield, as if just called.
        regs = {"r15": _read_u64(sp), "r14": _read_u64(sp + 8), "r13": _read_u64(sp + 16),
                "r12": _read_u64(sp + 24), "rbx": _read_u64(sp + 32), "rbp": _read_u64(sp + 40),
                "rip": _read_u64(sp + 48), "rsp": sp + 56}
        if _function_at(regs["rip"]) not in ("cg__switch", "cg__switch_ret", "cg__entry", "cg_send", "cg_throw",
                                             "cg__send_start"):
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


def _parked_registers(g, sp):
    """_saved_registers(sp) for generator g parked at sp, or, for a fresh
    generator whose first frame is not written yet (sp NULL: the first
    resume writes it, src/core/gen_life.c's first_frame), the registers
    that frame would hold: cg__entry with the generator in rbx, at the top
    of its stack."""
    if sp:
        return _saved_registers(sp)
    top = _ptr(g["stack"]["hi"]) & ~15  # cg__entry runs at the very top (switch.h)
    regs = {"r15": 0, "r14": 0, "r13": 0, "r12": 0, "rbx": _ptr(g), "rbp": 0,
            "rip": int(gdb.parse_and_eval("(unsigned long)&cg__entry")), "rsp": top}
    return regs


def _set_register(name, value):
    gdb.newest_frame().select()  # a register set in an outer frame writes memory
    gdb.execute("set var $%s = %d" % (name, value), to_string=True)


def _swapped_out(g):
    """Whether a compact generator is not resident: bit 0 of its owner word
    (OWNER_SWAPPED). Its frames are then in its swap buffer, or, before it
    first runs, not made yet."""
    return int(g["compact"]) and (int(g["owner"]) & 1) != 0


def _first_frame(g, top):
    """The bytes of the first frame cg__frame_ready (src/arch/switch.h)
    would write for g below top, as (address, bytes)."""
    entry = int(gdb.parse_and_eval("(unsigned long)&cg__entry"))
    top &= ~15
    u64 = lambda vs: b"".join(int(v).to_bytes(8, "little") for v in vs)
    arch = gdb.selected_frame().architecture().name()
    if "aarch64" in arch:  # x19..x28, x29, x30, d8..d15
        words = [_ptr(g)] + [0] * 10 + [entry] + [0] * 8
        return top - 8 * len(words), u64(words)
    words = [0, 0, 0, 0, _ptr(g), 0, entry]  # r15 r14 r13 r12 rbx rbp, where to continue
    return top - 8 * len(words), u64(words)


class _swapped_in:
    """While active, a swapped-out compact generator's frames are back on
    its stack: the used part of a compact generator's stack lives in a
    buffer (swap: from sp to the top of the stack) while it is not
    resident, and goes back to the same addresses before it runs; one that
    never ran has its first frame made there then. The bytes it covers
    (unused: zeros from the dropped pages) are put back after, so the
    program finds its memory as it left it."""

    def __init__(self, g):
        self.len = 0
        if not _swapped_out(g):
            return
        hi = _ptr(g["stack"]["hi"])
        if _ptr(g["swap"]):
            self.at = _ptr(g["sp"])
            self.len = hi - self.at
            self.data = lambda: gdb.selected_inferior().read_memory(_ptr(g["swap"]), self.len).tobytes()
            print("  (compact, swapped out: its %d bytes of stack are shown from their copy)" % self.len)
        else:
            top = hi - (16 if int(g["fpenv"]) & 1 else 0)  # GEN_FP_RESERVE (gen.h)
            self.at, first = _first_frame(g, top)
            self.len = len(first)
            self.data = lambda: first

    def __enter__(self):
        if self.len:
            inf = gdb.selected_inferior()
            self.saved = inf.read_memory(self.at, self.len).tobytes()
            try:
                inf.write_memory(self.at, self.data())
            except gdb.error as e:
                raise gdb.GdbError("cogen-bt: cannot write the program's memory (%s); it needs a live process" % e)
        return self

    def __exit__(self, *exc):
        if self.len:
            gdb.selected_inferior().write_memory(self.at, self.saved)
        return False


class _registers_set:
    """While active, the selected thread's registers are regs (a parked
    context's, from _saved_registers): gdb's frames are that context's.
    The thread's own registers and selected frame are put back after."""

    def __init__(self, regs):
        self.regs = regs

    def __enter__(self):
        frame0 = gdb.newest_frame()
        self.level = gdb.selected_frame().level()
        self.saved = {name: int(frame0.read_register(name)) & 0xFFFFFFFFFFFFFFFF for name in self.regs}
        # Stack pointer first, program counter last: gdb rebuilds its frames
        # after each write, and the pc decides which unwinder it picks.
        self.order = sorted(self.regs, key=lambda n: (n in ("rip", "pc"), n not in ("rsp", "sp"), n))
        try:
            for name in self.order:
                _set_register(name, self.regs[name])
        except gdb.error as e:
            self.__exit__()
            raise gdb.GdbError("cogen: cannot set registers (%s); it needs a live process" % e)
        return self

    def __exit__(self, *exc):
        for name in self.order:
            try:
                _set_register(name, self.saved[name])
            except gdb.error:
                pass
        _select_level(self.level)
        return False


def _backtrace_with(regs, bt_args):
    """Runs bt with the selected thread's registers set to regs, then puts
    the thread's own registers back."""
    with _registers_set(regs):
        gdb.execute("bt %s" % bt_args)


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
            _backtrace_with(_parked_registers(g, sp), bt_args)


# ---------------------------------------------------------------------------
# cogen-tasks: the tasks of an event loop and what each one awaits
# ---------------------------------------------------------------------------

F_PENDING, F_CANCELLED, F_FINISHED = 0, 1, 2  # struct cg_future.state
R_PLAIN = 0  # struct cg_handle.ready.kind: a plain callback (a timer's, here)
CG_LOOP_VIRTUAL_CLOCK = 1


def _task_ptr(value):
    return value.cast(gdb.lookup_type("struct cg_task").pointer())


def _task_name(task):
    """struct cg_task's name: in the task (name.buf, a default 'Task-N')
    or allocated (name.ptr) when name_heap is set (loop.h)."""
    name = task["name"]
    if int(task["name_heap"]):
        return _string(name["ptr"], "?")
    try:
        return name["buf"].string()
    except (gdb.error, gdb.MemoryError, UnicodeDecodeError):
        return "?"


WAIT_TIMER, WAIT_FD, WAIT_TAGS = 2, 4, 7  # the tags of a task's fut.task_wait (task.c, loop.h)
WAIT_SYNC = 1  # in a primitive's or queue's deque itself (sync.h); alone: that wait cancelled
WQ_TAGS = 1  # a deque entry that is a task, not a future (sync.h: CG__WQ_TASK)


def _future_ops(fut):
    """The ops of a future of a kind of its own (has_ops: a cg__future_ext,
    ops right after the struct cg_future), as a symbol name, or None."""
    if not int(fut["has_ops"]):
        return None
    size = gdb.lookup_type("struct cg_future").sizeof
    vpp = gdb.lookup_type("void").pointer().pointer()
    ops = gdb.Value(_ptr(fut) + size).cast(vpp).dereference()
    return _symbol(ops) if _ptr(ops) else None


def _ms(ns):
    """A duration in nanoseconds as milliseconds, without useless digits."""
    return ("%.3f" % (ns / 1e6)).rstrip("0").rstrip(".") + " ms"


def _loop_now(loop):
    """loop.time(): the virtual clock, or the monotonic clock (the same on
    both sides of ptrace: CLOCK_MONOTONIC is the system's) minus the loop's
    base."""
    if int(loop["flags"]) & CG_LOOP_VIRTUAL_CLOCK:
        return int(loop["now"])
    return time.monotonic_ns() - int(loop["base"])


def _waiters(w):
    """The futures of a cg__waiters deque (or the tasks waiting in it
    without one), as addresses."""
    v = w["v"]
    return [_ptr(v[i]) & ~WQ_TAGS for i in range(int(w["n"]))]


# The loop's objects a task can wait in: for each struct, the deques of
# waiter futures it keeps (label, field) and how it reads. Barrier and
# Queue.join wait in an object they own (a Condition, an Event): _OWNERS.
def _lock_text(l):
    return "[%s, waiters:%d]" % ("locked" if int(l["locked"]) else "unlocked", int(l["waiters"]["n"]))


def _event_text(e):
    return "[%s, waiters:%d]" % ("set" if int(e["value"]) else "unset", int(e["waiters"]["n"]))


def _sem_text(s):
    return "[value:%d, waiters:%d]" % (int(s["value"]), int(s["waiters"]["n"]))


def _cond_text(c):
    return "[%s, waiters:%d]" % ("locked" if int(c["lock"]["locked"]) else "unlocked", int(c["waiters"]["n"]))


def _queue_text(q):
    return "[maxsize:%d, qsize:%d, getters:%d, putters:%d%s]" % (
        int(q["maxsize"]), int(q["n"]), int(q["getters"]["n"]), int(q["putters"]["n"]),
        ", shut down" if int(q["is_shutdown"]) else "")


def _barrier_text(b):
    return "[parties:%d, waiting:%d]" % (int(b["parties"]), int(b["count"]))


_SYNC = {
    "cg_lock": ("Lock", [("Lock.acquire", "waiters")], _lock_text),
    "cg_event": ("Event", [("Event.wait", "waiters")], _event_text),
    "cg_semaphore": ("Semaphore", [("Semaphore.acquire", "waiters")], _sem_text),
    "cg_condition": ("Condition", [("Condition.wait", "waiters")], _cond_text),
    "cg_queue": ("Queue", [("Queue.get", "getters"), ("Queue.put", "putters")], _queue_text),
    "cg_barrier": ("Barrier", [], _barrier_text),
}
_OWNERS = {  # (owner struct, field): what waiting in the owned object is
    ("cg_barrier", "cond"): "Barrier.wait",
    ("cg_queue", "finished"): "Queue.join",
}


def _sync_pointers(frame):
    """(struct name, value) for each argument or local of frame that points
    at one of the loop's synchronization objects and can be read there."""
    out = []
    try:
        block = frame.block()
    except RuntimeError:
        return out
    while block is not None:
        for sym in block:
            if not (sym.is_argument or sym.is_variable):
                continue
            t = sym.type.strip_typedefs()
            if t.code != gdb.TYPE_CODE_PTR:
                continue
            target = t.target().strip_typedefs()
            if target.code != gdb.TYPE_CODE_STRUCT or target.tag not in _SYNC:
                continue
            try:
                v = sym.value(frame)
                if v.is_optimized_out or _ptr(v) == 0:
                    continue
                # by address: the frame is gone once the registers are back
                out.append((target.tag, gdb.Value(_ptr(v)).cast(t)))
            except (gdb.error, gdb.MemoryError):
                continue
        if block.function is not None:
            break
        block = block.superblock
    return out


def _in_library(frame):
    """Whether frame is code of cogen itself (src/), or has no source."""
    sal = frame.find_sal()
    if sal is None or sal.symtab is None:
        return True
    name = sal.symtab.filename
    return re.search(r"(^|/)src/(core|loop|arch)/", name) is not None


def _visit_frames(g, visit):
    """Calls visit(frame) for the frames of the parked generator g,
    innermost first, down to its entry. g's registers are set in the
    selected thread meanwhile (as cogen-bt does), and put back after: the
    frames are valid during the visit only."""
    with _swapped_in(g):  # first: the saved registers are on its stack
        with _registers_set(_parked_registers(g, _ptr(g["sp"]))):
            _visit_from(gdb.newest_frame(), visit)


def _visit_from(f, visit):
    """visit(frame) for f and the frames it was called from, down to a
    generator's entry."""
    for _ in range(64):
        visit(f)
        if (f.name() or "") in ("cg__entry", "cg.entry", "entry"):
            break
        f = f.older()
        if f is None:
            break


def _task_site(task, fut):
    """What a suspended task's stacks say about its wait: (where, sync),
    where being 'FUNC (FILE:LINE)' of the innermost frame outside the
    library, sync the text for the loop object it waits in (found among
    the frames' pointers, and confirmed: fut is among that object's
    waiters, or an object that owns it), each None when unknown."""
    chain = []  # the task's generator and those it delegates to
    g = task["gen"]
    while _ptr(g) and len(chain) < 100:
        chain.append(g)
        g = g["yf"]
    st = {"where": None, "found": None}  # found: (struct, value, label)

    def visit(f):
        if st["where"] is None and not _in_library(f):
            sal = f.find_sal()
            st["where"] = "%s (%s:%d)" % (f.name(), sal.symtab.filename, sal.line)
        for tag, v in _sync_pointers(f):
            found = st["found"]
            if found is None:
                for label, field in _SYNC[tag][1]:
                    if fut in _waiters(v[field]):
                        st["found"] = (tag, v, label)
            else:  # an outer object that owns the match: a Barrier's Condition
                for (owner, field), label in _OWNERS.items():
                    if owner == tag and _ptr(v[field]) == _ptr(found[1]):
                        st["found"] = (tag, v, label)

    for g in reversed(chain):  # the innermost generator first
        if int(g["state"]) != SUSPENDED:
            continue
        try:
            _visit_frames(g, visit)
        except (gdb.error, gdb.MemoryError, RuntimeError):
            continue
    sync = None
    if st["found"] is not None:
        tag, v, label = st["found"]
        kind, _, text = _SYNC[tag]
        sync = "%s: %s %#x %s" % (label, kind, _ptr(v), text(v))
    return st["where"], sync


def _timer_for(loop, fut):
    """The pending timer of loop whose callback's argument is fut (the
    timer of a sleep), or None."""
    heap = loop["heap"]  # cg__timer_slot: the key beside a handle, or a task | 1 (loop.h)
    handle_t = gdb.lookup_type("cg_handle").pointer()
    for i in range(int(loop["nheap"])):
        who = int(heap[i]["who"])
        if who & 1:  # a sleeping task: its own timer
            continue
        h = gdb.Value(who).cast(handle_t)
        if int(h["ready"]["kind"]) == R_PLAIN and not int(h["cancelled"]) and _ptr(h["arg"]) == fut:
            return h
    return None


def _future_state(f):
    return {F_PENDING: "pending", F_CANCELLED: "cancelled", F_FINISHED: "finished"}.get(int(f["state"]), "?")


def _awaits(loop, task, now):
    """What a pending task that is not running waits for, as text."""
    wait = int(task["fut"]["task_wait"])  # the future it awaits, or a tagged timer or fd (loop.h)
    if wait & WAIT_TIMER:  # a sleep in the task's own body: the task is its timer (loop.h)
        if wait & 1:  # due: its wake-up is queued
            when = now
        else:  # in the heap, its slot's index above the tags
            when = int(loop["heap"][wait >> 3]["when"])
        text = "sleep: timer due at %s, in %s" % (_ms(when), _ms(when - now))
        where = _task_site(task, 0)[0]
        return text + ("; in %s" % where if where is not None else "")
    if wait & WAIT_FD:  # an fd's waiter (io.c): a cg__io *, the direction in bit 0
        try:
            io = gdb.Value(wait & ~WAIT_TAGS).cast(gdb.lookup_type("struct cg__io").pointer())
            text = "fd %d (%s)" % (int(io["fd"]), "writable" if wait & 1 else "readable")
        except gdb.error:
            text = "an fd (%s)" % ("writable" if wait & 1 else "readable")
        where = _task_site(task, 0)[0]
        return text + ("; in %s" % where if where is not None else "")
    if (wait & WAIT_TAGS) == WAIT_SYNC:  # a waiter without a future: the task is the entry (sync.h)
        where, sync = _task_site(task, _ptr(task))
        text = sync if sync is not None else "a waiter of a lock, event, semaphore or queue"
        if wait == WAIT_SYNC:
            text += " (cancelled)"
        return text + ("; in %s" % where if where is not None else "")
    fw = gdb.Value(wait).cast(gdb.lookup_type("struct cg_future").pointer())
    if not wait:
        if not int(task["started"]):
            return "not started: its first step is scheduled"
        return "ready: its next step is scheduled"
    fut = _ptr(fw)
    where, sync = _task_site(task, fut)
    if sync is not None:
        text = sync
    elif int(fw["is_task"]):
        other = _task_ptr(fw)
        text = "task %#x '%s' (%s)" % (fut, _task_name(other), _future_state(fw))
    else:
        h = _timer_for(loop, fut)
        ops = _future_ops(fw)
        if h is not None and _symbol(h["fn"]) == "set_result_unless_cancelled":
            when = int(h["when"])
            text = "sleep: timer due at %s, in %s" % (_ms(when), _ms(when - now))
        elif h is not None:
            text = "future %#x, set by timer %s due in %s" % (fut, _symbol(h["fn"]), _ms(int(h["when"]) - now))
        elif ops is not None:
            kind = {"gathering_ops": "gather", "shielding_ops": "shield"}.get(ops, ops)
            text = "%s future %#x (%s)" % (kind, fut, _future_state(fw))
        else:
            text = "future %#x (%s)" % (fut, _future_state(fw))
    if where is not None:
        text += "; in %s" % where
    return text


def _running_loops():
    """(thread, loop) for each thread that runs a loop now."""

    def read(thread):
        thread.switch()
        try:
            loop = gdb.parse_and_eval("cg__running_loop")
        except gdb.error:
            return None  # no loop layer, or its thread-locals cannot be read
        return (thread, loop) if _ptr(loop) else None

    return [r for r in _each_thread(read) if r is not None]


class CogenTasks(gdb.Command):
    """List the tasks of the event loops and what each one awaits.

Usage: cogen-tasks [LOOP]

Without LOOP, the loop each thread is running; LOOP is an expression
giving a `cg_loop *` (a loop that is not running). A header line per loop
(its clock, how many tasks, ready callbacks and timers), then one line per
task not yet finalized, in creation order: address, name, state, and for
a pending task what it waits for:
  - running: the task whose step runs now;
  - not started / ready: its step is in the ready queue;
  - sleep: the timer of cg_sleep, its deadline and the time left;
  - fd N (readable / writable): the fd its I/O call waits on;
  - task 0x... 'name': another task it awaits;
  - Lock.acquire, Event.wait, Semaphore.acquire, Condition.wait,
    Barrier.wait, Queue.get, Queue.put, Queue.join: the object and its
    state (found among the pointers of the task's frames, and checked:
    the task's future, or the task itself, is among that object's waiters);
  - gather / shield / future 0x...: any other future, with its state;
then the innermost frame of the task outside cogen's sources (where the
program awaits), and cancelling=N or a pending cancel when there is one."""

    def __init__(self):
        super().__init__("cogen-tasks", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        if arg.strip():
            try:
                loop = gdb.parse_and_eval(arg).cast(gdb.lookup_type("struct cg_loop").pointer())
            except gdb.error as e:
                raise gdb.GdbError("cogen-tasks: %s is not a cg_loop pointer (%s)" % (arg, e))
            loops = [(gdb.selected_thread(), loop)]
        else:
            loops = _running_loops()
            if not loops:
                raise gdb.GdbError("cogen-tasks: no thread is running an event loop; "
                                   "give one: cogen-tasks LOOP")
        for thread, loop in loops:
            self._one(thread, loop, bool(arg.strip()))

    def _one(self, thread, loop, given):
        orig = gdb.selected_thread()
        thread.switch()
        try:
            now = _loop_now(loop)
            tasks = []
            t = loop["tasks_head"]
            while _ptr(t) and len(tasks) < 1000000:
                tasks.append(t)
                t = t["all_next"]
            virtual = int(loop["flags"]) & CG_LOOP_VIRTUAL_CLOCK
            print("Loop %#x%s: %s clock at %s; %d task%s, %d ready callback%s, %d timer%s"
                  % (_ptr(loop), "" if given else " (thread %d)" % thread.num,
                     "virtual" if virtual else "monotonic", _ms(now), len(tasks), "" if len(tasks) == 1 else "s",
                     int(loop["nready"]), "" if int(loop["nready"]) == 1 else "s",
                     int(loop["nheap"]), "" if int(loop["nheap"]) == 1 else "s"))
            current = _ptr(loop["current"])
            for t in tasks:
                state = int(t["fut"]["state"])
                if _ptr(t) == current:
                    what = "running"
                elif state == F_PENDING:
                    what = "pending  " + _awaits(loop, t, now)
                else:
                    what = _future_state(t["fut"])
                extra = ""
                if int(t["num_cancels"]):
                    extra += "; cancelling=%d" % int(t["num_cancels"])
                if int(t["must_cancel"]):
                    extra += "; cancel pending"
                print("  %#x  %-14s %s%s" % (_ptr(t), "'%s'" % _task_name(t), what, extra))
        finally:
            orig.switch()


CogenList()
CogenBt()
CogenTasks()
