#!/bin/sh
# test_gdb_tasks.sh: cogen-tasks (tools/cogen-gdb.py) against a live program
# (tests/test_gdb_tasks.c) whose tasks wait on different things.
#
#   sh tests/test_gdb_tasks.sh PROGRAM SCRIPT
#
# Runs PROGRAM under gdb in batch mode with the script loaded, stops where
# its main task calls test_gdb_tasks_stop() at 10 ms of virtual time, and
# checks the listing: the loop's header (clock, tasks, ready callbacks,
# timers), then each task with its state and what it awaits: a sleep's
# timer and the time left, another task, a Lock, an Event, a Semaphore, a
# Queue's get, put and join, a Barrier, an fd, a cancelled future (cancelling=1),
# a task not started yet; and the function where each one awaits. Then
# the same listing for a loop given as an expression; `bt` shows the
# thread's own frames again (registers restored); the program runs to its
# end, cancelling every task: "test_gdb_tasks: ok", exit 0; and the command
# refuses to run without a process. Exit status 77 (skipped) when gdb, or
# its Python, is missing, or gdb may not trace the program.
set -u
prog=$1
script=$2

. "$(dirname "$0")/gdb_checks.sh"
gdb_check_tools

gdb_batch "$script" "$prog" \
    -ex 'break test_gdb_tasks_stop' \
    -ex 'run' \
    -ex 'echo @@ tasks\n' -ex 'cogen-tasks' \
    -ex 'echo @@ given\n' -ex 'cogen-tasks cg__running_loop' \
    -ex 'echo @@ bt\n' -ex 'bt' \
    -ex 'echo @@ cont\n' -ex 'continue' \
    -ex 'echo @@ after\n' -ex 'cogen-tasks' \
    -ex 'echo @@ end\n'

cat "$out"
echo "=== checks ==="

A="0x[0-9a-f]+"
# ' in FUNC (.../test_gdb_tasks.c:LINE)': where the task awaits.
at() { echo "; in $1 \(.*test_gdb_tasks\.c:[0-9]+\)"; }

# The clock is at 10 ms (main slept 10 ms). Ready: futurer's wake-up (its
# future was cancelled) and fresh's first step. Timers: sleeper's only
# (main's sleep has fired).
expect tasks "^Loop $A \(thread 1\): virtual clock at 10 ms; 13 tasks, 2 ready callbacks, 1 timer\$"
expect tasks "^  $A  'main' +running\$"
expect tasks "^  $A  'sleeper' +pending  sleep: timer due at 1000 ms, in 990 ms$(at sleeper_wait)\$"
expect tasks "^  $A  'joiner' +pending  task $A 'sleeper' \(pending\)$(at joiner_wait)\$"
expect tasks "^  $A  'locker' +pending  Lock\.acquire: Lock $A \[locked, waiters:1\]$(at locker_wait)\$"
expect tasks "^  $A  'eventer' +pending  Event\.wait: Event $A \[unset, waiters:1\]$(at eventer_wait)\$"
expect tasks "^  $A  'sem' +pending  Semaphore\.acquire: Semaphore $A \[value:0, waiters:1\]$(at sem_wait)\$"
expect tasks "^  $A  'getter' +pending  Queue\.get: Queue $A \[maxsize:2, qsize:0, getters:1, putters:0\]$(at getter_wait)\$"
expect tasks "^  $A  'putter' +pending  Queue\.put: Queue $A \[maxsize:1, qsize:1, getters:0, putters:1\]$(at putter_wait)\$"
expect tasks "^  $A  'qjoin' +pending  Queue\.join: Queue $A \[maxsize:0, qsize:1, getters:0, putters:0\]$(at qjoin_on)\$"
expect tasks "^  $A  'barrier' +pending  Barrier\.wait: Barrier $A \[parties:2, waiting:1\]$(at barrier_wait)\$"
expect tasks "^  $A  'reader' +pending  fd [0-9]+ \(readable\)$(at reader_wait)\$"
expect tasks "^  $A  'futurer' +pending  future $A \(cancelled\)$(at future_wait); cancelling=1\$"
expect tasks "^  $A  'fresh' +pending  not started: its first step is scheduled\$"
# Creation order: main first, fresh last.
order=$(section tasks | sed -En "s/^  $A  '([a-z]+)'.*/\1/p" | tr '\n' ' ')
[ "$order" = "main sleeper joiner locker eventer sem getter putter qjoin barrier reader futurer fresh " ] ||
    fail "[tasks] not in creation order: $order"
# The joiner awaits the very task listed as 'sleeper'.
sleeper=$(section tasks | sed -En "s/^  ($A)  'sleeper'.*/\1/p")
expect tasks "'joiner' +pending  task $sleeper 'sleeper'"
reject tasks "Error|Traceback|Python Exception"

# A loop given as an expression: the same listing, without a thread.
expect given "^Loop $A: virtual clock at 10 ms; 13 tasks, 2 ready callbacks, 1 timer\$"
expect given "^  $A  'locker' +pending  Lock\.acquire: Lock $A \[locked, waiters:1\]$(at locker_wait)\$"

# The thread's registers are its own again.
expect bt "^#0 +test_gdb_tasks_stop \("
expect bt "^#1 .* in main_body \("
reject bt "in (sleeper|locker|future)_wait"

expect cont "^test_gdb_tasks: ok\$"
expect cont "exited normally"
expect after "cogen: the program is not running"
reject end "."

gdb_checks_done
