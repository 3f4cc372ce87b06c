#!/usr/bin/env python3
"""layers.py: checks that the library's files only include and call what is
at their own layer or below (docs/design.md, "Layers").

    python3 tools/layers.py [SRC_DIR]     # default: src/ next to this tool
    python3 tools/layers.py --self-test   # proves the check can fail

Each file of SRC_DIR belongs to one layer, by the table LAYERS below (first
match wins). A file fails the check when it
  - includes a file of a higher layer, or
  - uses a name (function, variable, type or macro) that a higher layer
    defines or declares,
unless that name is one of the contracts declared in core/upcalls.h, the
only calls allowed to go up. Names are taken from the code with comments
and string literals removed; a name belongs to the layer of the file that
defines it (a function body, a variable, a macro, a typedef or struct) or,
for a header, declares it. Exit status 0 when clean, 1 with one line per
violation, 2 on a usage error.
"""
import os
import re
import sys
import tempfile

# (layer name, rank, path patterns relative to SRC_DIR). Rank orders them:
# a file may use ranks <= its own.
LAYERS = [
    ("base", 0, [r"base\.h"]),
    ("mem", 1, [r"core/mem\.[ch]"]),
    ("thread", 2, [r"core/thread\.[ch]"]),
    ("arch", 3, [r"arch/(switch|fpenv|x86_64-sysv|x86_64-switch|x86_64-setjmp|aarch64-aapcs64|aarch64-setjmp|ucontext)\.[chS]"]),
    ("stack", 4, [r"core/stack\.[ch]"]),
    ("exc", 5, [r"core/exc\.[ch]"]),
    ("upcalls", 5, [r"core/upcalls\.h"]),
    # The assembly fast paths implement the generator protocol's hot
    # functions, and layout.h is the generator struct as they see it.
    ("gen", 6, [r"core/gen[a-z_]*\.[ch]", r"arch/layout\.h", r"arch/[a-z0-9_]+-fast\.S"]),
    ("loop", 7, [r"loop/.*\.[chS]"]),
    # I/O on the loop: sockets, streams, DNS, signals, processes, threads.
    # (The epoll backend itself is the loop's: src/loop/io.c.)
    ("io", 8, [r"io/.*\.[chS]"]),
]

CONTRACTS_FILE = "core/upcalls.h"

IDENT = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\b")
INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]+"([^"]+)"', re.M)


def layer_of(rel):
    for name, rank, pats in LAYERS:
        for p in pats:
            if re.fullmatch(p, rel):
                return name, rank
    return None, None


def strip_code(text, asm=False, keep_strings=False):
    """The text without comments, string and character literals (kept as
    blanks so that line numbers stay); keep_strings keeps the literals."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i) and not asm:
            j = text.find("\n", i)
            j = n if j < 0 else j
            i = j
        elif c in "\"'" and not asm and not keep_strings:
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(" ")
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


# What a file defines or declares at file scope.
DEFINE_PATTERNS = [
    re.compile(r"^\s*#\s*define\s+([A-Za-z_]\w*)", re.M),
    re.compile(r"\btypedef\b[^;{]*?(?:\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\})?\s*\(?\s*\*?\s*([A-Za-z_]\w*)\s*\)?\s*(?:\(|;)", re.S),
    re.compile(r"\b(?:struct|enum|union)\s+([A-Za-z_]\w*)\s*\{"),
    # functions (definitions or prototypes) at the start of a line
    re.compile(r"^(?!\s)(?:[A-Za-z_][\w\s\*\(\),]*?[\s\*])?([A-Za-z_]\w*)\s*\([^;{]*\)\s*(?:\{|;)", re.M),
    # file-scope variables
    re.compile(r"^(?!\s)(?:extern\s+|static\s+)?(?:__thread\s+|_Thread_local\s+)?(?:const\s+)?[A-Za-z_][\w\s\*]*?[\s\*]([A-Za-z_]\w*)\s*(?:\[[^\]]*\])?\s*(?:__attribute__\s*\(\(.*?\)\)\s*)?(?:CG_HIDDEN\s*)?(?:=|;)", re.M),
    # enumerators inside enum bodies
]
ENUM_BODY = re.compile(r"\benum\b[^{;]*\{([^}]*)\}", re.S)
ASM_GLOBAL = re.compile(r"^\s*\.globl\s+([A-Za-z_]\w*)", re.M)
KEYWORDS = set(
    "if else for while do switch case default return break continue goto sizeof static extern const volatile "
    "struct enum union typedef void char short int long float double signed unsigned inline _Noreturn "
    "_Static_assert _Alignas __attribute__ __thread __asm__ asm defined".split()
)


def definitions(rel, text):
    names = set()
    if rel.endswith(".S"):
        names.update(ASM_GLOBAL.findall(text))
        names.update(re.findall(r"^\s*#\s*define\s+([A-Za-z_]\w*)", text, re.M))
        names.update(re.findall(r"^\s*\.macro\s+([A-Za-z_]\w*)", text, re.M))
        return names
    for pat in DEFINE_PATTERNS:
        for m in pat.finditer(text):
            names.add(m.group(1))
    for body in ENUM_BODY.findall(text):
        for item in body.split(","):
            m = re.match(r"\s*([A-Za-z_]\w*)", item)
            if m:
                names.add(m.group(1))
    # A file's static functions and variables are its own business.
    for m in re.finditer(r"^static\b[^;{=]*?\b([A-Za-z_]\w*)\s*(?:\(|=|;|\[)", text, re.M):
        names.discard(m.group(1))
    return names - KEYWORDS


def scan(src):
    files = {}
    for root, _, names in os.walk(src):
        for f in names:
            if not re.search(r"\.[chS]$", f):
                continue
            path = os.path.join(root, f)
            rel = os.path.relpath(path, src).replace(os.sep, "/")
            with open(path, encoding="utf-8") as fh:
                raw = fh.read()
            asm = f.endswith(".S")
            files[rel] = (strip_code(raw, asm=asm, keep_strings=True), strip_code(raw, asm=asm))
    return files


def public_types(src):
    """Types the public header declares (opaque ones included): every layer
    may name them. Its functions still belong to the layer that defines
    them."""
    header = os.path.join(src, "..", "include", "cogen.h")
    if not os.path.exists(header):
        return set()
    with open(header, encoding="utf-8") as fh:
        text = strip_code(fh.read())
    names = set(re.findall(r"\btypedef\s+(?:struct|enum|union)\s+(\w+)", text))
    names |= set(re.findall(r"\btypedef\b[^;]*?\b(\w+)\s*;", text))
    return names


def check(src):
    files = scan(src)
    problems = []
    public = public_types(src)
    owner = {}  # name -> (rank, layer, file): the lowest layer that defines it
    for rel, (raw, code) in sorted(files.items()):
        name, rank = layer_of(rel)
        if name is None:
            problems.append("%s: belongs to no layer (add it to LAYERS in tools/layers.py)" % rel)
            continue
        for d in definitions(rel, code) - public:
            if d not in owner or owner[d][0] > rank:
                owner[d] = (rank, name, rel)
    contracts = set()
    if CONTRACTS_FILE in files:
        contracts = definitions(CONTRACTS_FILE, files[CONTRACTS_FILE][1]) - {"COGEN_UPCALLS_H"}
    for rel, (raw, code) in sorted(files.items()):
        name, rank = layer_of(rel)
        if name is None:
            continue
        for m in INCLUDE.finditer(raw):
            inc = m.group(1)
            cands = [inc, os.path.normpath(os.path.join(os.path.dirname(rel), inc)).replace(os.sep, "/")]
            target = next((c for c in cands if c in files), None)
            if target is None:
                continue
            tname, trank = layer_of(target)
            line = raw.count("\n", 0, m.start()) + 1
            if target == CONTRACTS_FILE:
                continue
            if trank is not None and trank > rank:
                problems.append("%s:%d: %s layer includes %s (%s layer, above it)" % (rel, line, name, target, tname))
        own = definitions(rel, code)
        seen = set()
        for m in IDENT.finditer(code):
            ident = m.group(0)
            if ident in seen or ident in own or ident in contracts or ident not in owner:
                continue
            orank, oname, ofile = owner[ident]
            if orank > rank:
                seen.add(ident)
                line = code.count("\n", 0, m.start()) + 1
                problems.append(
                    "%s:%d: %s layer uses %s, which %s (%s layer, above it) defines" % (rel, line, name, ident, ofile, oname)
                )
    return problems


def self_test():
    """A tiny tree with one upward include and one upward call must fail,
    and the same tree without them must pass."""
    bad = {
        "base.h": "#define CG_X 1\n",
        "core/mem.h": '#include "base.h"\nvoid *cg__alloc(unsigned long n);\n',
        "core/mem.c": '#include "core/mem.h"\n#include "core/exc.h"\nvoid *cg__alloc(unsigned long n) { cg__error(0); return 0; }\n',
        "core/exc.h": '#include "core/mem.h"\nvoid cg__error(int x);\n',
        "core/exc.c": '#include "core/exc.h"\n#include "core/upcalls.h"\nvoid cg__error(int x) { cg__gen_finish(x); }\n',
        "core/upcalls.h": "void cg__gen_finish(int x);\n",
        "core/gen.c": '#include "core/upcalls.h"\n#include "core/exc.h"\nvoid cg__gen_finish(int x) { cg__error(x); }\n',
    }
    with tempfile.TemporaryDirectory() as d:
        for rel, text in bad.items():
            os.makedirs(os.path.dirname(os.path.join(d, rel)) or d, exist_ok=True)
            with open(os.path.join(d, rel), "w") as f:
                f.write(text)
        got = check(d)
        want_include = any("core/mem.c" in p and "includes core/exc.h" in p for p in got)
        want_call = any("core/mem.c" in p and "uses cg__error" in p for p in got)
        if not (want_include and want_call and len(got) == 2):
            print("layers self-test: expected exactly an include and a call violation in core/mem.c, got:")
            for p in got:
                print("  " + p)
            return 1
        with open(os.path.join(d, "core/mem.c"), "w") as f:
            f.write('#include "core/mem.h"\nvoid *cg__alloc(unsigned long n) { return 0; }\n')
        got = check(d)
        if got:
            print("layers self-test: the clean tree was reported:")
            for p in got:
                print("  " + p)
            return 1
    print("layers self-test: passed (an upward include and an upward call are caught; upcalls.h contracts are allowed)")
    return 0


def main(argv):
    if argv[1:2] == ["--self-test"]:
        return self_test()
    if len(argv) > 2:
        print(__doc__, file=sys.stderr)
        return 2
    src = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
    if not os.path.isdir(src):
        print("layers: no such directory: %s" % src, file=sys.stderr)
        return 2
    problems = check(src)
    for p in problems:
        print(p)
    if problems:
        print("layers: %d violation%s (docs/design.md, Layers)" % (len(problems), "" if len(problems) == 1 else "s"))
        return 1
    print("layers: every file of %s uses only its own layer and those below" % os.path.normpath(src))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
