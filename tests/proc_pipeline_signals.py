"""The subprocess pipeline example stops cleanly on SIGTERM and SIGINT.

    python3 proc_pipeline_signals.py PROG [EMULATOR...]

Runs PROG (build/examples/proc-pipeline) with its word-count chain, its
stdin a pipe kept open (so the pipeline would run forever), sends it the
signal once the stages have started, and checks that it exits with status
0, says 'interrupted', and leaves none of its stages running (the pids it
prints with PROC_PIPELINE_VERBOSE are gone from /proc once it has exited:
it reaped them).
"""
import os
import signal
import subprocess
import sys


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
    try:
        out, err = p.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        sys.exit("%s: the example did not stop" % sig.name)
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
    print("%s: ok (%d stages reaped)" % (sig.name, len(pids)))


def main():
    cmd = sys.argv[2:] + [sys.argv[1], "0"]
    for sig in (signal.SIGTERM, signal.SIGINT):
        run(cmd, sig)


main()
