"""The subprocess pipeline example stops cleanly on SIGTERM and SIGINT.

    python3 proc_pipeline_signals.py PROG [EMULATOR...]

Runs PROG (build/examples/proc-pipeline) with its word-count chain, its
stdin a pipe kept open (so the pipeline would run forever), sends it the
signal once the stages have started, and checks that it exits with status
0, says 'interrupted', and leaves none of its stages running: the pids it
prints with PROC_PIPELINE_VERBOSE are gone from /proc once it has exited
(it reaped them), and so is every process of their process groups (what
each stage's shell started).
"""
import os
import signal
import subprocess
import sys
import time


def proc_stats():
    """(pid, pgrp, state, name) of every process."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
        except OSError:
            continue
        name_end = stat.rindex(")")
        fields = stat[name_end + 2:].split()
        if fields[0] == "Z":
            continue  # a zombie is not running (and may be pid 1's to reap)
        out.append((int(d), int(fields[2]), fields[0], stat[stat.index("(") + 1:name_end]))
    return out


def run(cmd, sig):
    env = dict(os.environ, PROC_PIPELINE_VERBOSE="1")
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    p.stdin.write(b"hello world\n")
    p.stdin.flush()
    pids = []
    while len(pids) < 5:
        line = p.stderr.readline()
        if not line:
            sys.exit("the example ended before its stages started: %r" % line)
        words = line.split()
        if words[:1] == [b"stage"]:
            pids.append(int(words[3]))
    p.send_signal(sig)
    # (not communicate(): it would close stdin, and the EOF could end the
    # pipeline before the signal is seen)
    try:
        p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        sys.exit("%s: the example did not stop" % sig.name)
    err = p.stderr.read()
    p.stdout.read()
    p.stdin.close()
    if p.returncode != 0:
        sys.exit("%s: exit status %d, stderr %r" % (sig.name, p.returncode, err))
    if b"proc-pipeline: interrupted" not in err:
        sys.exit("%s: no 'interrupted' in %r" % (sig.name, err))
    if b"exited with status" in err or b"killed by signal" in err:
        sys.exit("%s: a stage reported as failed: %r" % (sig.name, err))
    for pid in pids:
        if os.path.exists("/proc/%d" % pid):
            with open("/proc/%d/stat" % pid) as f:
                stat = f.read()
            sys.exit("%s: stage pid %d is still there: %s" % (sig.name, pid, stat))
    left = []
    for _ in range(200):  # (what a SIGTERM'd group member needs to end)
        left = [st for st in proc_stats() if st[1] in pids]
        if not left:
            break
        time.sleep(0.05)
    if left:
        sys.exit("%s: processes of the stages' groups are left: %r" % (sig.name, left))
    print("%s: ok (%d stages reaped)" % (sig.name, len(pids)))


def main():
    cmd = sys.argv[2:] + [sys.argv[1], "0"]
    for sig in (signal.SIGTERM, signal.SIGINT):
        run(cmd, sig)


main()
