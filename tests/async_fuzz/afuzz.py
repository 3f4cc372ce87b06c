#!/usr/bin/env python3
"""Differential fuzzing of cogen's event loop against CPython's asyncio.

Each seed is one async scenario (async_gen.py). cogen-async-scenario runs
it and must print what the reference runner async_ref.py (CPython 3.13.0's
asyncio) prints, byte for byte.

    afuzz.py check --runner R --bundle B --start S --count N
        the scenarios of seeds S..S+N-1 against the traces recorded in the
        bundle (no reference needed: this is what `make test` runs); also
        fails when the generator no longer makes the scenario the bundle was
        recorded from (its hash differs): re-record then.
    afuzz.py stale --bundle B
        only that hash check, for every seed of the bundle.
    afuzz.py record --out B [--count 2000] [--features SPEC] [--jobs 2]
        records the bundle from async_ref.py (CPython 3.13.0 only).
    afuzz.py ref --runner R --start S --count N [--jobs 2] [--save DIR]
        the scenarios against async_ref.py itself, run in worker processes
        (make fuzz-long; the ctest async_fuzz.reference on a sample).
    afuzz.py selftest --runner R
        the checks above can fail (a bundle with a trace and a hash changed).
    afuzz.py valid --features all --count N
        the generator alone: every scenario, with the families the runner
        lacks turned on, must be accepted and run by async_ref.py.

record and ref need the reference runner (--ref, default
../shared/semantics/async_ref.py beside the repository) and CPython 3.13.0:
this interpreter if it is 3.13.0, else $PYTHON, else python3 with
PYENV_VERSION=3.13.0; without them they exit with status 3 (ctest: skipped).

A mismatch prints the seed, the scenario and a unified diff (expected, got);
--save DIR also writes DIR/seed-N.scn, .expected and .got. Exit status: 0 all
matched, 1 a mismatch (or a stale bundle), 2 bad usage, 3 reference missing.
"""
import argparse
import difflib
import gzip
import hashlib
import importlib.util
import multiprocessing
import os
import shlex
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import async_gen  # noqa: E402

DEFAULT_REF = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "semantics", "async_ref.py"))
DEFAULT_BUNDLE = os.path.join(HERE, "expected.gz")
REF_VERSION = (3, 13, 0)
RUNNER_TIMEOUT = 20   # seconds per scenario
REF_TIMEOUT = 60
# An emulator or checker to put before the runner (qemu, valgrind: docs/tools.md).
WRAP = shlex.split(os.environ.get("COGEN_TEST_WRAPPER", ""))


def scenario_hash(text):
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# -- the bundle ------------------------------------------------------------
#
# gzip of a text file: a header line "# features: F1 F2 ...", then per
# seed "@@ SEED HASH STATUS NSCN NOUT", the NSCN lines of the scenario and
# the NOUT lines the reference printed: the trace (status 0, stdout) or the
# message (status 2, stderr). The scenarios are there for check.sh, which
# runs them where there is no python3 to generate them.

def read_bundle(path):
    with gzip.open(path, "rt", encoding="utf-8", newline="\n") as f:
        lines = f.read().split("\n")
    if not lines or not lines[0].startswith("# features:"):
        raise SystemExit(f"afuzz: {path} is not a bundle (no '# features:' line)")
    feats = lines[0].split(":", 1)[1].split()
    recs, i = {}, 1
    while i < len(lines) and lines[i]:
        _, seed, h, status, ns, no = lines[i].split()
        ns, no = int(ns), int(no)
        text = lambda a, b: "".join(ln + "\n" for ln in lines[a:b])  # noqa: E731
        recs[int(seed)] = (h, int(status), text(i + 1 + ns, i + 1 + ns + no), text(i + 1, i + 1 + ns))
        i += 1 + ns + no
    return feats, recs


def write_bundle(path, feats, recs):
    out = ["# features: " + " ".join(feats)]
    for seed in sorted(recs):
        h, status, text, scn = recs[seed]
        body = text.split("\n")[:-1] if text else []
        lines = scn.split("\n")[:-1]
        out.append(f"@@ {seed} {h} {status} {len(lines)} {len(body)}")
        out += lines + body
    data = ("\n".join(out) + "\n").encode()
    with open(path, "wb") as raw:  # mtime 0: the same bundle gives the same bytes
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f:
            f.write(data)


# -- running things ----------------------------------------------------------

def run_runner(runner, text):
    """(stdout, stderr, status) of cogen-async-scenario on a scenario."""
    try:
        p = subprocess.run(WRAP + [runner, "/dev/stdin"], input=text.encode(), capture_output=True,
                           timeout=RUNNER_TIMEOUT)
    except subprocess.TimeoutExpired:
        return "", "timed out\n", "timeout"
    return p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"), p.returncode


def same(status, want, got):
    """want: what the reference printed (stdout for 0, stderr for 2)."""
    if got[2] != status:
        return False
    return got[0] == want if status == 0 else (got[0] == "" and got[1] == want)


def report(seed, text, status, want, got, save):
    print(f"=== MISMATCH seed {seed} (async_gen.py {seed}) ===")
    print(text, end="")
    print(f"--- expected (async_ref.py, status {status}) / +++ got (cogen-async-scenario, status {got[2]})")
    g = got[0] + (got[1] if got[2] != 0 else "")
    for ln in difflib.unified_diff(want.splitlines(), g.splitlines(), "expected", "got", lineterm="", n=2):
        print(ln if len(ln) < 600 else ln[:600] + " ...")
    if got[2] == 0 and got[1]:
        print("stderr: " + got[1][-1500:])
    if save:
        os.makedirs(save, exist_ok=True)
        base = os.path.join(save, f"seed-{seed}")
        for ext, s in (("scn", text), ("expected", want), ("got", g)):
            with open(f"{base}.{ext}", "w") as f:
                f.write(s)
        print(f"saved {base}.scn")
    sys.stdout.flush()


def scaled(count):
    """Under slow tools (valgrind, qemu) batches shrink by COGEN_TEST_SCALE."""
    try:
        scale = float(os.environ.get("COGEN_TEST_SCALE", "1"))
    except ValueError:
        scale = 1.0
    return max(1, int(count * min(scale, 1.0)))


# -- check and stale: against the bundle -----------------------------------

def stale_seeds(feats, recs, seeds):
    bad = []
    for seed in seeds:
        if seed not in recs:
            bad.append((seed, "not in the bundle"))
            continue
        h = scenario_hash(async_gen.Gen(seed, feats).scenario())
        if h != recs[seed][0]:
            bad.append((seed, f"scenario hash {h}, the bundle has {recs[seed][0]}"))
    return bad


def stale_message(bundle, bad, feats):
    print(f"afuzz: {bundle} is STALE: async_gen.py no longer makes the scenarios it was recorded from "
          f"({len(bad)} seeds, first: seed {bad[0][0]}: {bad[0][1]}).")
    print("afuzz: re-record it with the reference (CPython 3.13.0 and ../shared): "
          "python3 tests/async_fuzz/afuzz.py record" + (f" --features '{' '.join(feats)}'" if feats != async_gen.DEFAULT else ""))


def cmd_stale(a):
    feats, recs = read_bundle(a.bundle)
    bad = stale_seeds(feats, recs, sorted(recs))
    if feats != async_gen.DEFAULT:
        print(f"afuzz: note: the bundle was recorded with features {' '.join(feats)}; "
              f"async_gen.py's default is now {' '.join(async_gen.DEFAULT)}")
    if bad:
        stale_message(a.bundle, bad, feats)
        return 1
    print(f"afuzz: {a.bundle}: {len(recs)} seeds, every scenario hash matches async_gen.py")
    return 0


def cmd_check(a):
    feats, recs = read_bundle(a.bundle)
    t0 = time.time()
    seeds = range(a.start, a.start + scaled(a.count))
    bad = stale_seeds(feats, recs, seeds)
    if bad:
        stale_message(a.bundle, bad, feats)
        return 1
    mism = 0
    for seed in seeds:
        text = async_gen.Gen(seed, feats).scenario()
        _, status, want, _ = recs[seed]
        got = run_runner(a.runner, text)
        if not same(status, want, got):
            mism += 1
            if mism <= a.max_report:
                report(seed, text, status, want, got, a.save)
    print(f"afuzz check: seeds {seeds.start}..{seeds.stop - 1}, {len(seeds)} scenarios, "
          f"{time.time() - t0:.1f} s, {mism} mismatches")
    return 1 if mism else 0


def cmd_selftest(a):
    """The checks can fail: a bundle with one trace line changed (seed 0)
    and one scenario hash changed (seed 1) must fail afuzz.py check and
    check.sh on seed 0, check and stale on seed 1."""
    import contextlib
    import io
    import tempfile
    feats, recs = read_bundle(a.bundle)
    h, st, out, scn = recs[0]
    recs[0] = (h, st, out.replace(" -> ", " -> not ", 1) if " -> " in out else out + "extra\n", scn)
    recs[1] = ("0" * 16,) + recs[1][1:]
    bad = 0
    with tempfile.TemporaryDirectory() as d:
        b = os.path.join(d, "b.gz")
        write_bundle(b, feats, recs)
        for what, args in (("check on a changed trace", ["check", "--runner", a.runner, "--bundle", b,
                                                          "--start", "0", "--count", "1"]),
                           ("check on a changed hash", ["check", "--runner", a.runner, "--bundle", b,
                                                        "--start", "1", "--count", "1"]),
                           ("stale on a changed hash", ["stale", "--bundle", b])):
            with contextlib.redirect_stdout(io.StringIO()) as o:
                rc = main(["afuzz.py"] + args)
            want = "MISMATCH seed 0" if "trace" in what else "STALE"
            ok = rc == 1 and want in o.getvalue()
            print(f"afuzz selftest: {what}: {'fails as it should' if ok else 'DID NOT FAIL'}")
            bad += not ok
        p = subprocess.run(["sh", os.path.join(HERE, "check.sh"), a.runner, b, "0", "1"], capture_output=True,
                           text=True)
        ok = p.returncode == 1 and "MISMATCH seed 0" in p.stdout
        print(f"afuzz selftest: check.sh on a changed trace: {'fails as it should' if ok else 'DID NOT FAIL'}")
        bad += not ok
    return 1 if bad else 0


# -- record and ref: against async_ref.py ---------------------------------

def reexec_on_reference(a):
    """Run this command again on CPython 3.13.0 if this is not it; None if
    this interpreter will do, else the exit status to return."""
    if not os.path.isfile(a.ref):
        print(f"afuzz: SKIPPED: no reference runner at {a.ref}")
        return 3
    if sys.implementation.name == "cpython" and sys.version_info[:3] == REF_VERSION:
        return None
    if os.environ.get("AFUZZ_REEXEC"):
        print(f"afuzz: SKIPPED: the reference needs CPython 3.13.0 (this is {sys.version.split()[0]})")
        return 3
    want = ".".join(map(str, REF_VERSION))
    env = dict(os.environ, AFUZZ_REEXEC="1", PYENV_VERSION=want)
    # Under pyenv, this interpreter's own bin directory comes first in PATH,
    # so python3.13 (a shim further on) is tried before python3.
    tried = [os.environ["PYTHON"]] if os.environ.get("PYTHON") else ["python3.13", "python3"]
    for py in tried:
        try:
            ver = subprocess.run([py, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3], "
                                  "sys.implementation.name)"], env=env, capture_output=True, text=True,
                                 timeout=30).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            continue
        if ver == want + " cpython":
            return subprocess.call([py, os.path.abspath(__file__)] + sys.argv[1:], env=env)
    print(f"afuzz: SKIPPED: the reference needs CPython {want} (tried: {', '.join(tried)}; "
          f"set PYTHON to one)")
    return 3


_REF = None


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def ref_init(path):
    global _REF
    spec = importlib.util.spec_from_file_location("async_ref", path)
    _REF = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(_REF)
    signal.signal(signal.SIGALRM, _alarm)


def ref_run(text):
    """(status, printed) as `async_ref.py FILE` would give them."""
    signal.alarm(REF_TIMEOUT)
    try:
        return 0, "".join(ln + "\n" for ln in _REF.run_text(text))
    except _REF.ScenarioError as e:
        return 2, f"scenario error: {e}\n"
    except _Timeout:
        return "failed", "the reference timed out\n"
    except Exception as e:  # noqa: BLE001
        return "failed", f"the reference failed: {type(e).__name__}: {e}\n"
    finally:
        signal.alarm(0)


def job_record(args):
    seed, feats = args
    text = async_gen.Gen(seed, feats).scenario()
    status, out = ref_run(text)
    return seed, scenario_hash(text), status, out, text


def job_ref(args):
    seed, feats, runner = args
    text = async_gen.Gen(seed, feats).scenario()
    status, want = ref_run(text)
    if status == "failed":
        return seed, "failed", text, status, want, None
    got = run_runner(runner, text)
    return seed, ("ok" if same(status, want, got) else "mismatch"), text, status, want, got


def job_valid(args):
    seed, feats = args
    text = async_gen.Gen(seed, feats).scenario()
    return (seed, text) + ref_run(text)


def cmd_valid(a):
    feats = async_gen.features_from(a.features)
    t0 = time.time()
    bad = 0
    for seed, text, status, out in on_reference(a, job_valid, range(a.start, a.start + a.count)):
        if status != 0:
            bad += 1
            if bad <= 5:
                print(f"=== seed {seed} (async_gen.py {seed} --features '{a.features}'): "
                      f"not a valid scenario for async_ref.py ===\n{text}{out}", end="")
    print(f"afuzz valid: seeds {a.start}..{a.start + a.count - 1}, features {' '.join(feats)}: "
          f"{a.count} scenarios, {time.time() - t0:.1f} s, {bad} rejected or failed")
    return 1 if bad else 0


def on_reference(a, job, seeds, *extra):
    """job((seed, features, *extra)) for every seed, in a.jobs worker
    processes that have async_ref.py loaded; results in any order."""
    feats = async_gen.features_from(a.features)
    with multiprocessing.get_context("fork").Pool(max(1, a.jobs), ref_init, (a.ref,)) as p:
        yield from p.imap_unordered(job, [(s, feats) + extra for s in seeds], 10)


def cmd_record(a):
    feats = async_gen.features_from(a.features)
    recs, failed = {}, 0
    for seed, h, status, out, text in on_reference(a, job_record, range(a.start, a.start + a.count)):
        if status == "failed":
            print(f"afuzz record: seed {seed}: {out}", end="")
            failed += 1
        recs[seed] = (h, status, out, text)
    if failed:
        print(f"afuzz record: {failed} seeds the reference could not run; nothing written")
        return 1
    write_bundle(a.out, feats, recs)
    invalid = sum(1 for r in recs.values() if r[1] != 0)
    print(f"afuzz record: {a.out}: seeds {a.start}..{a.start + a.count - 1}, features {' '.join(feats)}, "
          f"{invalid} rejected by the reference (status 2)")
    return 0


def cmd_ref(a):
    feats = async_gen.features_from(a.features)
    t0 = time.time()
    step = max(1, a.step)
    seeds = range(a.start, a.start + scaled(a.count) * step, step)
    counts = {"ok": 0, "mismatch": 0, "failed": 0}
    rejected = 0
    for seed, kind, text, status, want, got in on_reference(a, job_ref, seeds, a.runner):
        counts[kind] += 1
        rejected += status == 2
        done = sum(counts.values())
        if a.progress and done % a.progress == 0:
            print(f"afuzz ref: {done} scenarios, {time.time() - t0:.0f} s, {counts['mismatch']} mismatches, "
                  f"{counts['failed']} the reference failed on", flush=True)
        if kind == "mismatch" and counts[kind] <= a.max_report:
            report(seed, text, status, want, got, a.save)
        elif kind == "failed":
            print(f"afuzz: seed {seed}: {want}", end="")
    print(f"afuzz ref: seeds {seeds.start}..{seeds[-1]} step {step}, features {' '.join(feats)}: "
          f"{sum(counts.values())} scenarios, {time.time() - t0:.1f} s, {counts['mismatch']} mismatches, "
          f"{counts['failed']} the reference failed on, {rejected} rejected by both (status 2)")
    return 1 if counts["mismatch"] or counts["failed"] else 0


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("check", "stale", "record", "ref", "valid", "selftest"):
        s = sub.add_parser(name)
        if name in ("check", "ref", "selftest"):
            s.add_argument("--runner", required=True, help="cogen-async-scenario")
            s.add_argument("--save", help="directory for mismatching scenarios")
            s.add_argument("--max-report", type=int, default=10, help="mismatches printed in full")
        if name in ("check", "stale", "selftest"):
            s.add_argument("--bundle", default=DEFAULT_BUNDLE)
        if name in ("record", "ref", "valid"):
            s.add_argument("--ref", default=DEFAULT_REF, help="async_ref.py")
            s.add_argument("--features", default="default", help="families: 'default', 'all', '+gather,-queue'")
            s.add_argument("--jobs", type=int, default=2)
        if name == "record":
            s.add_argument("--out", default=DEFAULT_BUNDLE)
        if name not in ("stale", "selftest"):
            s.add_argument("--start", type=int, default=0)
            s.add_argument("--count", type=int, default=2000)
        if name == "ref":
            s.add_argument("--step", type=int, default=1, help="every STEP-th seed (a sample)")
            s.add_argument("--progress", type=int, default=0, help="a line every PROGRESS scenarios")
    a = ap.parse_args(argv[1:])
    if a.cmd in ("record", "ref", "valid"):
        rc = reexec_on_reference(a)
        if rc is not None:
            return rc
    return {"check": cmd_check, "stale": cmd_stale, "record": cmd_record, "ref": cmd_ref,
            "valid": cmd_valid, "selftest": cmd_selftest}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
