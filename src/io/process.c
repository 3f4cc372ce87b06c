/* process.c: subprocesses on the loop (asyncio.create_subprocess_exec /
 * create_subprocess_shell and asyncio.subprocess.Process).
 *
 * A child is spawned with posix_spawn (glibc's is a clone(CLONE_VFORK):
 * nothing runs in the child but the spawn's own code), with an empty
 * signal mask (the loop blocks the signals it catches, and a mask is
 * inherited across exec) and every fd but its three standard ones closed
 * (ours are close-on-exec; the others closed by the spawn where glibc has
 * posix_spawn_file_actions_addclosefrom_np).
 *
 * Its end is watched from the moment it is spawned, whether anyone waits
 * or not, so that it is reaped as soon as it ends and never left a
 * zombie: with a pidfd (pidfd_open) the loop watches as a reader; where
 * the kernel has none (ENOSYS), with a thread of its own blocked in
 * waitpid that hands the status to the loop (asyncio's
 * ThreadedChildWatcher). A process object freed while its child runs kills
 * the child (as asyncio's transport close does) and the watcher reaps it;
 * at loop close, a child still running is left running and handed to a
 * detached thread that reaps it when it ends.
 */
#define _GNU_SOURCE
#include "loop/loop.h"
#include "io/io.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

typedef struct reaper reaper;

typedef struct exit_waiter {
    struct exit_waiter *next;
    cg_future *f;
} exit_waiter;

struct cg_process {
    cg_loop *loop;                 /* NULL once the loop has closed */
    struct cg_process *next, *prev; /* the loop's children not reaped yet */
    pid_t pid;
    int pidfd;                     /* -1: none (a thread watches, or reaped) */
    reaper *thread;                /* the watching thread's record, or NULL */
    int fds[3];                    /* our ends of the pipes, or -1 */
    cg_stream_writer *in;          /* stdin's stream, once asked for (it owns fds[0] then) */
    cg_stream_reader *out[3];      /* stdout's, stderr's ([1], [2]) */
    cg_stream_opts sopts;
    int returncode;
    unsigned char done;            /* reaped: returncode is set */
    unsigned char freed;           /* cg_process_free was called */
    unsigned char listed;
    exit_waiter *waiters;
};

typedef struct procs {
    cg_process *head;
} procs;

/* Tests force the thread fallback with this (tests/test_proc.c). */
CG_API int cg__proc_no_pidfd;

/* valgrind before 3.21 does not know pidfd_open (it warns and says
 * ENOSYS): under it, the watcher thread from the start. */
/* (RUNNING_ON_VALGRIND: base.h) */

/* ---------------------------------------------------------------------
 * The end of a child
 * ------------------------------------------------------------------ */

static int status_code(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return -WTERMSIG(status);
    return status;
}

static void proc_destroy(cg_process *p) {
    cg_stream_writer_free(p->in);
    cg_stream_reader_free(p->out[1]);
    cg_stream_reader_free(p->out[2]);
    for (int i = 0; i < 3; i++) {
        if (p->fds[i] < 0) continue;
        if (p->loop) cg_loop_io_forget(p->loop, p->fds[i]);
        close(p->fds[i]);
    }
    cg__dealloc(p);
}

static void unlist(cg_process *p) {
    if (!p->listed) return;
    procs *ps = p->loop->ext[CG__EXT_PROCESS];
    if (p->prev)
        p->prev->next = p->next;
    else
        ps->head = p->next;
    if (p->next) p->next->prev = p->prev;
    p->next = p->prev = NULL;
    p->listed = 0;
}

static void close_pidfd(cg_process *p) {
    if (p->pidfd < 0) return;
    cg_loop_remove_reader(p->loop, p->pidfd);
    cg_loop_io_forget(p->loop, p->pidfd);
    close(p->pidfd);
    p->pidfd = -1;
}

/* The child is reaped: the returncode, the waiters woken. */
static void exited(cg_process *p, int status) {
    p->returncode = status_code(status);
    p->done = 1;
    close_pidfd(p);
    unlist(p);
    for (exit_waiter *w = p->waiters; w; w = w->next)
        if (!cg_future_done(w->f)) cg_future_set_result(w->f, (void *)(intptr_t)p->returncode);
    if (p->freed) proc_destroy(p);
}

static void on_pidfd(void *arg) {
    cg_process *p = arg;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int r;
    do r = waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r < 0) { /* ECHILD: reaped behind our back; the status is lost */
        exited(p, 255 << 8);
        return;
    }
    if (si.si_pid == 0) return; /* not yet */
    exited(p, si.si_code == CLD_EXITED ? (si.si_status & 0xff) << 8 : si.si_status & 0x7f);
}

/* The thread that waits for a child where there is no pidfd, and the one
 * that reaps what a closed loop left running. Its record is shared with
 * the loop under the lock: the loop lets go of it (loop NULL) when it
 * closes or frees the process. */
struct reaper {
    pthread_t thread;    /* joined by the loop when it hands the status over
                            (so that no thread outlives its work); detached
                            when nobody is to be told */
    pid_t pid;
    int status;
    cg_loop *loop;       /* to hand the status to, or NULL */
    cg_process *p;
    int finished;        /* status is set: the child is reaped; the record
                            is the callback's (if handed to loop), or the
                            loop's to free (if that failed: no memory) */
};

static pthread_mutex_t reaper_lock = PTHREAD_MUTEX_INITIALIZER;

static void reaped_cb(void *arg) {
    reaper *r = arg;
    cg_process *p = r->p;
    pthread_mutex_lock(&reaper_lock);
    int mine = r->loop != NULL;
    pthread_mutex_unlock(&reaper_lock);
    pthread_join(r->thread, NULL); /* it has said all it will: it is ending */
    if (mine && p) {
        p->thread = NULL;
        cg__loop_release(p->loop);
        exited(p, r->status);
    }
    free(r);
}

static void *reaper_main(void *arg) {
    reaper *r = arg;
    int status = 0;
    pid_t got;
    do got = waitpid(r->pid, &status, 0);
    while (got < 0 && errno == EINTR);
    if (got < 0) status = 255 << 8;
    pthread_mutex_lock(&reaper_lock);
    r->status = status;
    r->finished = 1;
    int mine = !r->loop;
    if (r->loop) cg_loop_call_soon_threadsafe(r->loop, reaped_cb, r); /* (no memory: left to the loop's close) */
    pthread_mutex_unlock(&reaper_lock);
    if (mine) free(r);
    return NULL;
}

/* Starts a reaper thread for pid; r->loop NULL: nobody is told, and the
 * thread is detached. */
static int start_reaper(reaper *r) {
    pthread_attr_t a;
    pthread_attr_init(&a);
    if (!r->loop) pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&a, 128 * 1024);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* it takes no signal */
    int err = pthread_create(&r->thread, &a, reaper_main, r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&a);
    return err;
}

/* Loop close: the children still running are reaped by detached threads. */
static void procs_fini(cg_loop *loop) {
    procs *ps = loop->ext[CG__EXT_PROCESS];
    while (ps->head) {
        cg_process *p = ps->head;
        unlist(p);
        if (p->thread) {
            reaper *r = p->thread;
            pthread_mutex_lock(&reaper_lock);
            int finished = r->finished;
            r->loop = NULL;
            r->p = NULL;
            if (!finished) pthread_detach(r->thread); /* it frees r when it is done */
            pthread_mutex_unlock(&reaper_lock);
            p->thread = NULL;
            cg__loop_release(loop);
            if (finished) { /* its callback, if any, is dropped with the loop, not run */
                pthread_join(r->thread, NULL);
                p->returncode = status_code(r->status);
                p->done = 1;
                free(r);
            }
        } else {
            close_pidfd(p);
            reaper *r = malloc(sizeof *r);
            if (r) {
                memset(r, 0, sizeof *r);
                r->pid = p->pid;
            }
            if (!r || start_reaper(r) != 0) { /* no thread: wait for it here */
                free(r);
                int st;
                while (waitpid(p->pid, &st, 0) < 0 && errno == EINTR) {
                }
            }
        }
        if (p->freed) {
            proc_destroy(p);
        } else {
            for (int i = 0; i < 3; i++) /* the fds leave the loop, still open */
                if (p->fds[i] >= 0) cg_loop_io_forget(loop, p->fds[i]);
            p->loop = NULL;
        }
    }
    loop->ext[CG__EXT_PROCESS] = NULL;
    loop->ext_fini[CG__EXT_PROCESS] = NULL;
    cg__dealloc(ps);
}

/* ---------------------------------------------------------------------
 * Spawning
 * ------------------------------------------------------------------ */

typedef struct spawn_rec {
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int fa_ok, attr_ok;
    int close_fds[8]; /* fds made for the spawn, closed after it */
    int nclose;
    int ours[3];      /* the pipe ends we keep (closed on failure) */
    int keep;         /* success: ours stay */
} spawn_rec;

static void spawn_cleanup(void *arg) {
    spawn_rec *s = arg;
    if (s->fa_ok) posix_spawn_file_actions_destroy(&s->fa);
    if (s->attr_ok) posix_spawnattr_destroy(&s->attr);
    for (int i = 0; i < s->nclose; i++) close(s->close_fds[i]);
    if (!s->keep)
        for (int i = 0; i < 3; i++)
            if (s->ours[i] >= 0) close(s->ours[i]);
}

static CG_NORETURN void raise_errno(int err) {
    cg_raise(err == ENOMEM ? cg_exc_new(&cg_MemoryError, NULL) : cg_oserror_new(err));
}

/* The child's end of stdio stream i (0, 1, 2) as the options say, set up
 * in the file actions; our end in s->ours[i]. */
static void setup_stdio(spawn_rec *s, int i, int mode, int fd) {
    int child = -1;
    switch (mode) {
    case CG_PROC_INHERIT: return;
    case CG_PROC_PIPE: {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0) raise_errno(errno);
        s->ours[i] = i == 0 ? p[1] : p[0];
        child = i == 0 ? p[0] : p[1];
        s->close_fds[s->nclose++] = child;
        break;
    }
    case CG_PROC_DEVNULL:
        child = open("/dev/null", (i == 0 ? O_RDONLY : O_WRONLY) | O_CLOEXEC);
        if (child < 0) raise_errno(errno);
        s->close_fds[s->nclose++] = child;
        break;
    case CG_PROC_STDOUT:
        if (i != 2) CG_RAISE(&cg_ValueError, "STDOUT can only be used for stderr");
        child = 1;
        break;
    case CG_PROC_FD:
        if (fd < 0) CG_RAISE(&cg_ValueError, "bad file descriptor for CG_PROC_FD");
        child = fd;
        break;
    default: CG_RAISEF(&cg_ValueError, "invalid stdio mode %d", mode);
    }
    if (child < 3 && child != i && mode != CG_PROC_STDOUT) {
        /* a low number would be overwritten by the dup2 of another stream */
        int hi = fcntl(child, F_DUPFD_CLOEXEC, 3);
        if (hi < 0) raise_errno(errno);
        s->close_fds[s->nclose++] = hi;
        child = hi;
    }
    int err = child == i ? 0 : posix_spawn_file_actions_adddup2(&s->fa, child, i);
    if (err) raise_errno(err);
}

/* execvp's verdict on file before the spawn: 0, or the errno the exec
 * would fail with (ENOENT, EACCES). posix_spawnp reports it too, but not
 * where the vfork it relies on is a fork (qemu-user): the child would just
 * exit with 127. */
static int exec_check(const char *file) {
    struct stat st;
    if (strchr(file, '/')) {
        if (stat(file, &st) < 0) return errno;
        if (S_ISDIR(st.st_mode) || access(file, X_OK) < 0) return EACCES;
        return 0;
    }
    const char *path = getenv("PATH");
    if (!path) path = "/bin:/usr/bin";
    int err = ENOENT;
    char cand[4096];
    for (const char *d = path;; d++) {
        const char *end = strchrnul(d, ':');
        int n = snprintf(cand, sizeof cand, "%.*s%s%s", (int)(end - d), d, end == d ? "" : "/", file);
        if (n > 0 && (size_t)n < sizeof cand && stat(cand, &st) == 0) {
            if (!S_ISDIR(st.st_mode) && access(cand, X_OK) == 0) return 0;
            err = EACCES;
        }
        if (!*end) break;
        d = end;
    }
    return err;
}

static cg_process *spawn(const char *file, char *const argv[], const char *shown, const cg_process_opts *o) {
    cg_loop *loop = cg_get_running_loop();
    static const cg_process_opts defaults;
    if (!o) o = &defaults;
    if (!file || !argv || !argv[0]) CG_RAISE(&cg_ValueError, "an argument list with a program was expected");
    spawn_rec s;
    memset(&s, 0, sizeof s);
    s.ours[0] = s.ours[1] = s.ours[2] = -1;
    CG_DEFER(spawn_cleanup, &s);
    int err = posix_spawn_file_actions_init(&s.fa);
    if (err) raise_errno(err);
    s.fa_ok = 1;
    err = posix_spawnattr_init(&s.attr);
    if (err) raise_errno(err);
    s.attr_ok = 1;
    setup_stdio(&s, 0, o->stdin_mode, o->stdin_fd);
    setup_stdio(&s, 1, o->stdout_mode, o->stdout_fd);
    setup_stdio(&s, 2, o->stderr_mode, o->stderr_fd);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    posix_spawn_file_actions_addclosefrom_np(&s.fa, 3); /* close_fds=True */
#endif
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 29))
    if (o->cwd && (err = posix_spawn_file_actions_addchdir_np(&s.fa, o->cwd)) != 0) raise_errno(err);
#else
    if (o->cwd) CG_RAISE(&cg_NotImplementedError, "cwd needs glibc 2.29");
#endif
    sigset_t none, dfl;
    sigemptyset(&none);
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGPIPE); /* restore_signals: what a parent ignored for its pipes */
    sigaddset(&dfl, SIGXFSZ);
    posix_spawnattr_setsigmask(&s.attr, &none);
    posix_spawnattr_setsigdefault(&s.attr, &dfl);
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    if (o->new_session) flags |= POSIX_SPAWN_SETSID;
    posix_spawnattr_setflags(&s.attr, flags);

    cg_process *p = cg__alloc(sizeof *p);
    if (!p) cg_raise(cg_exc_new(&cg_MemoryError, NULL));
    memset(p, 0, sizeof *p);
    procs *ps = loop->ext[CG__EXT_PROCESS];
    if (!ps) {
        ps = cg__alloc(sizeof *ps);
        if (!ps) {
            cg__dealloc(p);
            cg_raise(cg_exc_new(&cg_MemoryError, NULL));
        }
        ps->head = NULL;
        loop->ext[CG__EXT_PROCESS] = ps;
        loop->ext_fini[CG__EXT_PROCESS] = procs_fini;
    }
    pid_t pid;
    err = exec_check(file);
    if (!err) err = posix_spawnp(&pid, file, &s.fa, &s.attr, argv, o->env ? o->env : environ);
    if (err) {
        cg__dealloc(p);
        if (err == ENOMEM) cg_raise(cg_exc_new(&cg_MemoryError, NULL));
        /* subprocess's OSError(errno, strerror, filename) */
        char buf[160], msg[600];
        const char *m = strerror_r(err, buf, sizeof buf);
        snprintf(msg, sizeof msg, "[Errno %d] %s: '%.400s'", err, m, shown);
        cg_raise(cg_oserror_new_msg(NULL, err, msg));
    }
    s.keep = 1;
    p->loop = loop;
    p->pid = pid;
    p->pidfd = -1;
    for (int i = 0; i < 3; i++) p->fds[i] = s.ours[i];
    p->sopts = o->stream;
    /* watched from now on */
    int pfd = cg__proc_no_pidfd || RUNNING_ON_VALGRIND ? (errno = ENOSYS, -1) : (int)syscall(SYS_pidfd_open, pid, 0);
    if (pfd >= 0) {
        fcntl(pfd, F_SETFD, FD_CLOEXEC);
        if (cg_loop_add_reader(loop, pfd, on_pidfd, p) == 0)
            p->pidfd = pfd;
        else
            close(pfd);
    }
    if (p->pidfd < 0) {
        reaper *r = malloc(sizeof *r);
        if (r) {
            memset(r, 0, sizeof *r);
            r->pid = pid;
            r->loop = loop;
            r->p = p;
            p->thread = r;
        }
        if (r && start_reaper(r) == 0) {
            cg__loop_hold(loop); /* a virtual clock waits for the thread's word */
        } else {
            free(r);
            p->thread = NULL;
            /* nothing can watch it: no zombie, at least */
            kill(pid, SIGKILL);
            int st;
            while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
            }
            proc_destroy(p);
            cg_raise(cg_exc_new(&cg_MemoryError, NULL));
        }
    }
    p->next = ps->head;
    if (ps->head) ps->head->prev = p;
    ps->head = p;
    p->listed = 1;
    return p;
}

cg_process *cg_create_subprocess_exec(const char *file, char *const argv[], const cg_process_opts *opts) {
    return spawn(file, argv, file ? file : "", opts);
}

cg_process *cg_create_subprocess_shell(const char *cmd, const cg_process_opts *opts) {
    if (!cmd) CG_RAISE(&cg_ValueError, "a command was expected");
    char *argv[] = {"/bin/sh", "-c", (char *)cmd, NULL};
    return spawn("/bin/sh", argv, "/bin/sh", opts);
}

/* ---------------------------------------------------------------------
 * The process object
 * ------------------------------------------------------------------ */

int cg_process_pid(const cg_process *p) { return p->pid; }

int cg_process_returncode(const cg_process *p, int *code) {
    if (!p->done) return 0;
    if (code) *code = p->returncode;
    return 1;
}

int cg_process_stdin(const cg_process *p) { return p->fds[0]; }
int cg_process_stdout(const cg_process *p) { return p->fds[1]; }
int cg_process_stderr(const cg_process *p) { return p->fds[2]; }

int cg_process_take_fd(cg_process *p, int i) {
    if (i < 0 || i > 2) return -1;
    int fd = p->fds[i];
    p->fds[i] = -1;
    return fd;
}

cg_stream_writer *cg_process_stdin_stream(cg_process *p) {
    if (!p->in && p->fds[0] >= 0) {
        int fd = p->fds[0];
        p->fds[0] = -1;
        cg_stream_open_fd(fd, &p->sopts, NULL, &p->in);
    }
    return p->in;
}

static cg_stream_reader *reader(cg_process *p, int i) {
    if (!p->out[i] && p->fds[i] >= 0) {
        int fd = p->fds[i];
        p->fds[i] = -1;
        cg_stream_open_fd(fd, &p->sopts, &p->out[i], NULL);
    }
    return p->out[i];
}

cg_stream_reader *cg_process_stdout_stream(cg_process *p) { return reader(p, 1); }
cg_stream_reader *cg_process_stderr_stream(cg_process *p) { return reader(p, 2); }

typedef struct wait_rec {
    cg_process *p;
    exit_waiter *w;
} wait_rec;

static void wait_cleanup(void *arg) {
    wait_rec *r = arg;
    for (exit_waiter **pp = &r->p->waiters; *pp; pp = &(*pp)->next) {
        if (*pp == r->w) {
            *pp = r->w->next;
            break;
        }
    }
    cg_future_unref(r->w->f);
    cg__dealloc(r->w);
}

int cg_process_wait(cg_process *p) {
    if (p->done) return p->returncode;
    cg_loop *loop = cg_get_running_loop();
    if (p->loop != loop) CG_RAISE(&cg_RuntimeError, "the process belongs to another event loop, or its loop is closed");
    exit_waiter *w = cg__alloc(sizeof *w);
    if (!w) cg_raise(cg_exc_new(&cg_MemoryError, NULL));
    w->f = cg_future_new(loop);
    if (!w->f) {
        cg__dealloc(w);
        cg_raise(cg_exc_new(&cg_MemoryError, NULL));
    }
    w->next = p->waiters;
    p->waiters = w;
    wait_rec r = {p, w};
    CG_DEFER(wait_cleanup, &r);
    return (int)(intptr_t)cg_await(w->f);
}

void cg_process_send_signal(cg_process *p, int sig) {
    /* once reaped the pid may be another process's: asyncio's _check_proc */
    if (p->done || !p->loop) cg_raise(cg_exc_new(&cg_ProcessLookupError, NULL));
    if (kill(p->pid, sig) < 0 && errno != ESRCH) cg_raise_oserror(errno);
}

void cg_process_terminate(cg_process *p) { cg_process_send_signal(p, SIGTERM); }
void cg_process_kill(cg_process *p) { cg_process_send_signal(p, SIGKILL); }

void cg_process_free(cg_process *p) {
    if (!p) return;
    if (p->done || !p->loop) {
        if (p->loop) unlist(p);
        proc_destroy(p);
        return;
    }
    /* asyncio's transport close: the pipes close, a running child is killed */
    cg_stream_writer_free(p->in);
    cg_stream_reader_free(p->out[1]);
    cg_stream_reader_free(p->out[2]);
    p->in = NULL;
    p->out[1] = p->out[2] = NULL;
    for (int i = 0; i < 3; i++) {
        if (p->fds[i] < 0) continue;
        cg_loop_io_forget(p->loop, p->fds[i]);
        close(p->fds[i]);
        p->fds[i] = -1;
    }
    kill(p->pid, SIGKILL);
    p->freed = 1; /* the watcher frees it once reaped */
}

/* ---------------------------------------------------------------------
 * Writing to a pipe without SIGPIPE
 * ------------------------------------------------------------------ */

/* write(2) with SIGPIPE kept from the process: BrokenPipeError instead,
 * as in Python (which ignores SIGPIPE). SIGPIPE goes to the thread that
 * wrote, so blocking it here and taking what the write raised is enough. */
ssize_t cg__write_nosigpipe(int fd, const void *buf, size_t n) {
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    ssize_t r = write(fd, buf, n);
    int err = errno;
    if (r < 0 && err == EPIPE && !sigismember(&old, SIGPIPE)) {
        struct timespec zero = {0, 0};
        sigtimedwait(&pipe_set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = err;
    return r;
}

void cg_process_write(cg_process *p, const void *buf, size_t n) {
    int fd = p->fds[0];
    if (fd < 0) CG_RAISE(&cg_ValueError, "the process has no stdin pipe (or it is closed)");
    const char *c = buf;
    while (n > 0) {
        cg__io_enter(fd, CG_IO_WRITE);
        ssize_t r = cg__write_nosigpipe(fd, c, n);
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN) cg_raise_oserror(errno);
            cg__io_empty(fd, CG_IO_WRITE, 0);
            continue;
        }
        c += r;
        n -= (size_t)r;
    }
}

void cg_process_close_stdin(cg_process *p) {
    int fd = cg_process_take_fd(p, 0);
    if (fd >= 0) cg_io_close(fd);
}

/* ---------------------------------------------------------------------
 * communicate
 * ------------------------------------------------------------------ */

/* One side of communicate, as a task of its own: feeds stdin, or reads
 * stdout or stderr to the end. Its record is on the heap, shared by the
 * task and the caller (two references), since a cancelled communicate
 * returns before its tasks are done. */
typedef struct comm_part {
    int refs;
    int fd;
    int is_input;    /* the stdin side */
    cg_stream_writer *w; /* the side's stream, when the process had made one */
    cg_stream_reader *r;
    const char *in;  /* its input (the caller's, valid while it waits) */
    size_t inlen;
    char *buf;       /* stdout/stderr: what was read (malloc) */
    size_t len, cap;
} comm_part;

static void part_unref(comm_part *c) {
    if (--c->refs > 0) return;
    cg_stream_writer_free(c->w);
    cg_stream_reader_free(c->r);
    if (c->fd >= 0) cg_io_close(c->fd);
    free(c->buf);
    cg__dealloc(c);
}

static void part_drop(void *arg) { part_unref(arg); }

static void feed(void *arg) {
    comm_part *c = arg;
    const char *s = c->in;
    size_t n = c->inlen;
    while (n > 0) {
        cg__io_enter(c->fd, CG_IO_WRITE);
        ssize_t r = cg__write_nosigpipe(c->fd, s, n);
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN) cg_raise_oserror(errno);
            cg__io_empty(c->fd, CG_IO_WRITE, 0);
            continue;
        }
        s += r;
        n -= (size_t)r;
    }
}

/* _feed_stdin with the stream: write, drain. */
static void feed_stream(void *arg) {
    comm_part *c = arg;
    if (c->inlen) cg_stream_write(c->w, c->in, c->inlen);
    cg_stream_drain(c->w);
}

static void *part_body(cg_gen *g, void *arg) {
    (void)g;
    comm_part *c = arg;
    CG_DEFER(part_drop, c);
    if (c->is_input) {
        /* communicate() ignores BrokenPipeError and ConnectionResetError */
        if (c->w) {
            cg_exc_unref(cg_try_catch(feed_stream, c, &cg_ConnectionError));
            cg_stream_close(c->w);
            return NULL;
        }
        if (c->inlen) cg_exc_unref(cg_try_catch(feed, c, &cg_BrokenPipeError));
        cg_io_close(c->fd);
        c->fd = -1;
        return NULL;
    }
    for (;;) {
        if (c->cap - c->len < 4096) {
            size_t cap = c->cap ? c->cap * 2 : 8192;
            char *b = realloc(c->buf, cap);
            if (!b) cg_raise(cg_exc_new(&cg_MemoryError, NULL));
            c->buf = b;
            c->cap = cap;
        }
        size_t got = c->r ? cg_stream_read(c->r, c->buf + c->len, c->cap - c->len)
                          : cg_read(c->fd, c->buf + c->len, c->cap - c->len);
        if (got == 0) break;
        c->len += got;
    }
    if (c->fd >= 0) cg_io_close(c->fd);
    c->fd = -1;
    return NULL;
}

typedef struct comm_rec {
    comm_part *part[3];
    cg_task *task[3];
    cg_future *gather;
} comm_rec;

static void comm_cleanup(void *arg) {
    comm_rec *r = arg;
    for (int i = 0; i < 3; i++) {
        if (r->task[i]) cg_future_unref(cg_task_future(r->task[i]));
        if (r->part[i]) part_unref(r->part[i]);
    }
    if (r->gather) cg_future_unref(r->gather);
}

static void take_output(comm_part *c, char **out, size_t *len) {
    if (!out) return;
    if (!c) {
        *out = NULL;
        if (len) *len = 0;
        return;
    }
    /* a NUL after the bytes, for text */
    if (c->len == c->cap) {
        char *b = realloc(c->buf, c->len + 1);
        if (!b) cg_raise(cg_exc_new(&cg_MemoryError, NULL));
        c->buf = b;
        c->cap = c->len + 1;
    }
    if (!c->buf) {
        c->buf = malloc(1);
        if (!c->buf) cg_raise(cg_exc_new(&cg_MemoryError, NULL));
    }
    c->buf[c->len] = '\0';
    *out = c->buf;
    if (len) *len = c->len;
    c->buf = NULL;
}

int cg_process_communicate(cg_process *p, const void *input, size_t inlen, char **out, size_t *outlen, char **err,
                           size_t *errlen) {
    cg_loop *loop = cg_get_running_loop();
    if (p->loop != loop) CG_RAISE(&cg_RuntimeError, "the process belongs to another event loop, or its loop is closed");
    if (out) *out = NULL;
    if (err) *err = NULL;
    comm_rec r;
    memset(&r, 0, sizeof r);
    CG_DEFER(comm_cleanup, &r);
    cg_future *futs[3];
    size_t n = 0;
    for (int i = 0; i < 3; i++) {
        if (p->fds[i] < 0 && !(i == 0 ? (void *)p->in : (void *)p->out[i])) continue;
        comm_part *c = cg__alloc(sizeof *c);
        if (!c) cg_raise(cg_exc_new(&cg_MemoryError, NULL));
        memset(c, 0, sizeof *c);
        c->refs = 1;
        c->fd = -1;
        if (i == 0) {
            c->is_input = 1;
            c->in = input;
            c->inlen = input ? inlen : 0;
        }
        r.part[i] = c;
        static const char *names[3] = {"communicate-stdin", "communicate-stdout", "communicate-stderr"};
        cg_task *t = cg_create_task(part_body, c, names[i]);
        c->refs++; /* the task's */
        c->fd = cg_process_take_fd(p, i); /* the part owns the pipe (or its stream) now */
        if (i == 0) {
            c->w = p->in;
            p->in = NULL;
        } else {
            c->r = p->out[i];
            p->out[i] = NULL;
        }
        r.task[i] = t;
        futs[n++] = cg_task_future(t);
    }
    if (n) {
        r.gather = cg_gather(futs, n, 0);
        cg_await(r.gather);
    }
    int rc = cg_process_wait(p);
    take_output(r.part[1], out, outlen);
    take_output(r.part[2], err, errlen);
    return rc;
}
