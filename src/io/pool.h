/* pool.h: worker threads for work sent off the loop (src/io/): pools with
 * a limit of their own (the DNS workers, dns.c; the executors, thread.c),
 * their jobs in one FIFO each, and the link that hands a job's outcome
 * back to the loop that sent it (call_soon_threadsafe).
 *
 * A job's life: cg__job_start (on the loop's thread) queues it and
 * returns a future of the loop; a worker runs job->work, then posts the
 * job to the loop, where job->deliver sets the future (unless it is done
 * already: cancelled). The job is reference counted (the link holds one
 * until the job is delivered or dropped; a caller that wants to read the
 * job after awaiting holds another) and job->fini frees what it still
 * holds when the last reference goes, on whichever thread that is.
 * Cancelling the future takes a job that is still queued out of the queue
 * (it never runs); a running one finishes and its outcome is dropped.
 * When the loop closes, the jobs it sent are orphaned: they run (or
 * finish) on their workers, and are dropped there. */
#ifndef COGEN_IO_POOL_H
#define COGEN_IO_POOL_H

#include "core/mem.h"
#include "loop/loop.h"

#include <pthread.h>
#include <string.h>

typedef struct cg__job cg__job;
typedef struct cg__link cg__link;
typedef struct cg__pool cg__pool;

struct cg__job {
    /* set by the caller before cg__job_start */
    void (*work)(cg__job *j);                 /* on a worker */
    void (*deliver)(cg__job *j, cg_future *f); /* on the loop's thread, f pending */
    void (*fini)(cg__job *j);                 /* frees the job (any thread) */
    void (*cancel)(cg__job *j);               /* a job without a pool: its
                                                 future was cancelled (loop's
                                                 thread); may be NULL */
    /* the pool's and the link's */
    int refs;                                 /* atomic */
    unsigned char state;                      /* in its pool (pool.c), under its lock */
    unsigned char posted;                     /* handed to its loop (under the links' lock) */
    cg__job *qnext, *qprev;                   /* the pool's queue */
    cg__job *lnext, *lprev;                   /* the link's jobs in flight */
    cg__pool *pool;
    cg__link *link;                           /* NULL once orphaned */
    cg_future *fut;                           /* the loop's future (owned) */
    cg__allocator mem;                        /* what made it (cg__job_dealloc) */
};

/* Zeroed memory from the library's allocator (cg_set_allocator), as the
 * loop's own allocations are: what the pools, their jobs, the DNS lookups
 * and the executors allocate goes through it, so that the out-of-memory
 * tests reach it. NULL when there is none. */
static inline void *cg__zalloc(size_t n) {
    void *p = cg__alloc(n);
    if (p) memset(p, 0, n);
    return p;
}

/* A pool of at most max_workers threads (0: asyncio's default, min(32,
 * cpus + 4)), started as jobs come (as ThreadPoolExecutor starts them).
 * NULL with errno ENOMEM. */
/* NULL with ENOMEM. The pool is freed with the allocator that made it
 * (the DNS workers' pool lives as long as the process). */
CG_HIDDEN cg__pool *cg__pool_new(unsigned max_workers);
/* executor.shutdown(wait): no job may be submitted any more; the queued
 * ones still run; wait: until every worker has ended (one thread at a
 * time may wait). Again later: nothing more, or the wait. */
CG_HIDDEN void cg__pool_shutdown(cg__pool *p, int wait);
/* The owner lets the pool go (shut down first without waiting, if it was
 * not): it is freed once its last worker has ended. */
CG_HIDDEN void cg__pool_release(cg__pool *p);
/* The same, but when no job runs or waits, the workers are waited for
 * first (they are idle: they end at once), so that no thread is left. */
CG_HIDDEN void cg__pool_release_idle(cg__pool *p);
/* The number of workers started (alive), for the tests. */
CG_HIDDEN unsigned cg__pool_workers(cg__pool *p);

/* Queues j on pool p for loop (NULL: the running one) and returns a new
 * reference to its future. j's refs must be set (1: the link's only).
 * Else NULL, j released once (the link's reference) and *err the
 * exception: RuntimeError('Event loop is closed'), RuntimeError('cannot
 * schedule new futures after shutdown') for a pool shut down,
 * RuntimeError("can't start new thread") when no worker could be started,
 * MemoryError. */
CG_HIDDEN cg_future *cg__job_start(cg_loop *loop, cg__pool *p, cg__job *j, cg_exc **err);
CG_HIDDEN void cg__job_release(cg__job *j);
/* For a job's fini: gives j's memory back to the allocator that made it
 * (a job may outlive its loop, and be dropped on a worker). */
CG_HIDDEN void cg__job_dealloc(cg__job *j);
/* A job of size bytes (a struct that begins with its cg__job), zeroed,
 * with its functions (cancel NULL) and refs set. MemoryError raised. */
CG_HIDDEN void *cg__job_new(size_t size, void (*work)(cg__job *), void (*deliver)(cg__job *, cg_future *),
                            void (*fini)(cg__job *), int refs); /* zeroed; MemoryError */
/* A job of no pool (completed by someone else, as wrap_future's by a
 * concurrent future): attached to loop (NULL: the running one) as
 * cg__job_start attaches one, and handed to it with cg__job_finished, from
 * any thread, once its outcome is there. */
CG_HIDDEN cg_future *cg__job_attach(cg_loop *loop, cg__job *j, cg_exc **err);
CG_HIDDEN void cg__job_finished(cg__job *j);

/* The running loop's default executor (made the first time): asyncio's
 * ThreadPoolExecutor(min(32, cpus + 4)). Raises RuntimeError('Executor
 * shutdown has been called') once loop.shutdown_default_executor ran. */
CG_HIDDEN cg__pool *cg__default_executor(cg_loop *loop);

/* Misuse of a call that awaits: without a loop, asyncio's RuntimeError('no
 * running event loop'); in a loop's callback (not a task), RuntimeError(
 * 'fn() called outside a task'). */
CG_HIDDEN void cg__check_in_task(const char *fn);

#endif
