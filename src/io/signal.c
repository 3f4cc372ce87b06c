/* signal.c: signals on the loop, over signalfd: loop.add_signal_handler /
 * remove_signal_handler with asyncio's checks and messages, and an
 * awaitable wait for a signal.
 *
 * A signal the loop catches is blocked in the loop's thread and read from
 * one signalfd per loop, which the loop watches with a reader callback.
 * Its disposition is a handler that runs only where the signal is not
 * blocked (another thread, or a context whose mask a ucontext switch put
 * back): it hands the signal to the loop through an eventfd, as asyncio's
 * handler does through its wakeup fd, so that it is not lost. What was there before (the thread's mask, the disposition) is
 * kept and put back when the loop stops catching the signal: when its
 * handler is removed, or when the loop closes.
 *
 * Per signal: a handler (add_signal_handler), tasks waiting for it
 * (cg_wait_signal), and a pending mark: a signal that arrives when it has
 * neither is kept (once, as the kernel keeps a standard signal) for the
 * next wait, so that a task waiting in a loop misses none between two
 * waits. A signal a wait has caught stays caught until the loop closes.
 */
#define _GNU_SOURCE
#include "loop/loop.h"
#include "cogen_io.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#define NSIGS 65 /* 1..64 */

typedef struct sig_waiter {
    struct sig_waiter *next;
    sigset_t set;
    cg_future *f;
} sig_waiter;

typedef struct sigstate {
    cg_loop *loop;
    int sfd;                          /* -1 until a signal is caught */
    int efd;                          /* the handler's eventfd (below), with sfd */
    uint64_t hpending;                /* bit sig-1: the handler saw sig (atomic) */
    sigset_t caught;                  /* blocked here and read from sfd */
    sigset_t was_blocked;             /* of those, the ones the thread blocked before */
    struct sigaction old[NSIGS];      /* their dispositions before */
    unsigned char by_wait[NSIGS];     /* caught by a wait: kept until close */
    unsigned char pending[NSIGS];     /* arrived with nobody for it */
    cg_callback fn[NSIGS];            /* add_signal_handler's */
    void *arg[NSIGS];
    sig_waiter *waiters;
} sigstate;

/* The loop that catches each signal, for the handler. */
static sigstate *owner[NSIGS]; /* (atomic: read by handlers in any thread) */

/* The disposition of a caught signal. It runs only where the signal was
 * not blocked: in another thread that does not block it, or in the loop's
 * thread when the mask was put back behind our back (the ucontext switch
 * restores each context's own mask). Then it hands the signal to the loop
 * as asyncio's C handler does (a bit and a write to an fd the loop
 * watches), so that it is not lost. Async-signal-safe. */
static void on_signal(int sig) {
    sigstate *st = __atomic_load_n(&owner[sig], __ATOMIC_ACQUIRE);
    if (!st) return;
    int saved = errno;
    __atomic_fetch_or(&st->hpending, (uint64_t)1 << (sig - 1), __ATOMIC_SEQ_CST);
    uint64_t one = 1;
    ssize_t r = write(st->efd, &one, sizeof one);
    (void)r;
    errno = saved;
}

/* signal.valid_signals() on Linux with glibc: 1..64 without 32 and 33,
 * which glibc keeps for itself. */
static int valid_signal(int sig) { return sig >= 1 && sig < NSIGS && sig != 32 && sig != 33; }

static void check_signal(int sig) {
    if (!valid_signal(sig)) CG_RAISEF(&cg_ValueError, "invalid signal number %d", sig);
}

static void sig_fini(cg_loop *loop);

static sigstate *state(cg_loop *loop, int make) {
    sigstate *st = loop->ext[CG__EXT_SIGNAL];
    if (st || !make) return st;
    st = cg__alloc(sizeof *st);
    if (!st) cg_raise(cg_exc_new(&cg_MemoryError, NULL));
    memset(st, 0, sizeof *st);
    st->loop = loop;
    st->sfd = -1;
    st->efd = -1;
    sigemptyset(&st->caught);
    sigemptyset(&st->was_blocked);
    loop->ext[CG__EXT_SIGNAL] = st;
    loop->ext_fini[CG__EXT_SIGNAL] = sig_fini;
    return st;
}

/* One signal read: to the tasks waiting for it, to its handler (a
 * callback of the loop, as asyncio's _handle_signal adds it), or kept. */
static void deliver(sigstate *st, int sig) {
    int taken = 0;
    for (sig_waiter **pp = &st->waiters; *pp;) {
        sig_waiter *w = *pp;
        if (sigismember(&w->set, sig) && !cg_future_done(w->f)) {
            cg_future_set_result(w->f, (void *)(intptr_t)sig);
            taken = 1;
            *pp = w->next; /* the waiter's cleanup finds it gone */
            w->next = w;
            continue;
        }
        pp = &w->next;
    }
    if (st->fn[sig]) {
        cg_handle *h = cg_loop_call_soon(st->loop, st->fn[sig], st->arg[sig]);
        if (h) cg_handle_unref(h);
        taken = 1;
    }
    if (!taken) st->pending[sig] = 1;
}

static void on_signalfd(void *p) {
    sigstate *st = p;
    uint64_t v;
    while (st->efd >= 0 && read(st->efd, &v, sizeof v) > 0) {
    }
    uint64_t bits = __atomic_exchange_n(&st->hpending, 0, __ATOMIC_SEQ_CST);
    for (int sig = 1; sig < NSIGS; sig++)
        if (bits & ((uint64_t)1 << (sig - 1))) deliver(st, sig);
    if (st->sfd < 0) return;
    struct signalfd_siginfo si[16];
    for (;;) {
        ssize_t r = read(st->sfd, si, sizeof si);
        if (r <= 0) {
            if (r < 0 && errno == EINTR) continue;
            return; /* EAGAIN: all read */
        }
        for (size_t i = 0; i < (size_t)r / sizeof si[0]; i++)
            if (si[i].ssi_signo < NSIGS) deliver(st, (int)si[i].ssi_signo);
    }
}

/* The loop catches sig from now on. Raises RuntimeError('sig N cannot be
 * caught') for SIGKILL and SIGSTOP, as asyncio's signal.signal does. */
static void catch_signal(sigstate *st, int sig) {
    if (sigismember(&st->caught, sig)) return;
    if (st->efd < 0) {
        int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (efd < 0) cg_raise_oserror(errno);
        if (cg_loop_add_reader(st->loop, efd, on_signalfd, st) < 0) {
            int err = errno;
            close(efd);
            cg_raise(err == ENOMEM ? cg_exc_new(&cg_MemoryError, NULL) : cg_oserror_new(err));
        }
        st->efd = efd;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART; /* signal.siginterrupt(sig, False) */
    sigemptyset(&sa.sa_mask);
    __atomic_store_n(&owner[sig], st, __ATOMIC_RELEASE);
    if (sigaction(sig, &sa, &st->old[sig]) < 0) {
        __atomic_store_n(&owner[sig], NULL, __ATOMIC_RELEASE);
        if (errno == EINVAL) CG_RAISEF(&cg_RuntimeError, "sig %d cannot be caught", sig);
        cg_raise_oserror(errno);
    }
    sigset_t one, old;
    sigemptyset(&one);
    sigaddset(&one, sig);
    pthread_sigmask(SIG_BLOCK, &one, &old);
    if (sigismember(&old, sig)) sigaddset(&st->was_blocked, sig);
    sigaddset(&st->caught, sig);
    int fd = signalfd(st->sfd, &st->caught, SFD_NONBLOCK | SFD_CLOEXEC);
    int err = errno;
    if (fd >= 0 && st->sfd < 0) {
        st->sfd = fd;
        if (cg_loop_add_reader(st->loop, fd, on_signalfd, st) < 0) {
            err = errno;
            close(fd);
            st->sfd = -1;
            fd = -1;
        }
    }
    if (fd < 0) {
        sigdelset(&st->caught, sig);
        if (!sigismember(&st->was_blocked, sig)) pthread_sigmask(SIG_UNBLOCK, &one, NULL);
        sigdelset(&st->was_blocked, sig);
        sigaction(sig, &st->old[sig], NULL);
        __atomic_store_n(&owner[sig], NULL, __ATOMIC_RELEASE);
        cg_raise(err == ENOMEM ? cg_exc_new(&cg_MemoryError, NULL) : cg_oserror_new(err));
    }
    /* a signal already pending in the thread or the process is read now */
}

/* The loop stops catching sig: what arrived and was not read yet is
 * dropped (the loop would have run a handler that is gone), then the mask
 * and the disposition are put back. */
static void release_signal(sigstate *st, int sig) {
    if (!sigismember(&st->caught, sig)) return;
    sigdelset(&st->caught, sig);
    st->pending[sig] = 0;
    if (st->sfd >= 0) {
        if (sigisemptyset(&st->caught)) {
            cg_loop_remove_reader(st->loop, st->sfd);
            cg_loop_io_forget(st->loop, st->sfd);
            close(st->sfd);
            st->sfd = -1;
        } else {
            signalfd(st->sfd, &st->caught, SFD_NONBLOCK | SFD_CLOEXEC);
        }
    }
    if (st->efd >= 0 && sigisemptyset(&st->caught)) {
        cg_loop_remove_reader(st->loop, st->efd);
        cg_loop_io_forget(st->loop, st->efd);
        close(st->efd);
        st->efd = -1;
    }
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    struct timespec zero = {0, 0};
    while (sigtimedwait(&one, NULL, &zero) == sig) {
    }
    sigaction(sig, &st->old[sig], NULL);
    __atomic_store_n(&owner[sig], NULL, __ATOMIC_RELEASE);
    __atomic_fetch_and(&st->hpending, ~((uint64_t)1 << (sig - 1)), __ATOMIC_SEQ_CST);
    if (!sigismember(&st->was_blocked, sig)) pthread_sigmask(SIG_UNBLOCK, &one, NULL);
    sigdelset(&st->was_blocked, sig);
}

static void sig_fini(cg_loop *loop) {
    sigstate *st = loop->ext[CG__EXT_SIGNAL];
    if (!st) return;
    for (int sig = 1; sig < NSIGS; sig++) release_signal(st, sig);
    /* the tasks are finalized: their waits have gone already */
    loop->ext[CG__EXT_SIGNAL] = NULL;
    loop->ext_fini[CG__EXT_SIGNAL] = NULL;
    cg__dealloc(st);
}

/* ---------------------------------------------------------------------
 * loop.add_signal_handler / remove_signal_handler
 * ------------------------------------------------------------------ */

void cg_loop_add_signal_handler(cg_loop *loop, int sig, cg_callback fn, void *arg) {
    if (!fn) CG_RAISE(&cg_TypeError, "a callable object was expected by add_signal_handler(), got NULL");
    check_signal(sig);
    if (!loop) loop = cg_get_running_loop();
    if (loop->closed) CG_RAISE(&cg_RuntimeError, "Event loop is closed");
    sigstate *st = state(loop, 1);
    catch_signal(st, sig);
    st->fn[sig] = fn;
    st->arg[sig] = arg;
}

int cg_loop_remove_signal_handler(cg_loop *loop, int sig) {
    check_signal(sig);
    if (!loop) loop = cg_get_running_loop();
    sigstate *st = state(loop, 0);
    if (!st || !st->fn[sig]) return 0;
    st->fn[sig] = NULL;
    st->arg[sig] = NULL;
    if (!st->by_wait[sig]) release_signal(st, sig);
    return 1;
}

/* ---------------------------------------------------------------------
 * Waiting for a signal
 * ------------------------------------------------------------------ */

typedef struct wait_rec {
    sigstate *st;
    sig_waiter *w;
} wait_rec;

static void wait_cleanup(void *p) {
    wait_rec *r = p;
    sig_waiter *w = r->w;
    if (w->next != w) { /* not delivered: still listed */
        for (sig_waiter **pp = &r->st->waiters; *pp; pp = &(*pp)->next) {
            if (*pp == w) {
                *pp = w->next;
                break;
            }
        }
    }
    cg_future_unref(w->f);
    cg__dealloc(w);
}

int cg_wait_signal(const sigset_t *set) {
    cg_loop *loop = cg_get_running_loop();
    int any = 0;
    for (int sig = 1; sig < NSIGS; sig++) {
        if (sigismember(set, sig) != 1) continue;
        check_signal(sig);
        if (sig == SIGKILL || sig == SIGSTOP) CG_RAISEF(&cg_RuntimeError, "sig %d cannot be caught", sig);
        any = 1;
    }
    if (!any) CG_RAISE(&cg_ValueError, "no signal to wait for");
    sigstate *st = state(loop, 1);
    for (int sig = 1; sig < NSIGS; sig++) {
        if (sigismember(set, sig) != 1) continue;
        catch_signal(st, sig);
        st->by_wait[sig] = 1;
    }
    on_signalfd(st); /* what is there already counts as arrived */
    for (int sig = 1; sig < NSIGS; sig++) {
        if (sigismember(set, sig) == 1 && st->pending[sig]) {
            st->pending[sig] = 0;
            return sig;
        }
    }
    sig_waiter *w = cg__alloc(sizeof *w);
    if (!w) cg_raise(cg_exc_new(&cg_MemoryError, NULL));
    w->f = cg_future_new(loop);
    if (!w->f) {
        cg__dealloc(w);
        cg_raise(cg_exc_new(&cg_MemoryError, NULL));
    }
    w->set = *set;
    w->next = NULL;
    sig_waiter **pp = &st->waiters;
    while (*pp) pp = &(*pp)->next;
    *pp = w; /* woken in the order they came */
    wait_rec r = {st, w};
    CG_DEFER(wait_cleanup, &r);
    return (int)(intptr_t)cg_await(w->f);
}
