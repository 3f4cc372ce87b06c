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

#include "loop/loop.h"

#include <pthread.h>

typedef struct cg__job cg__job;
typedef struct cg__link cg__link;

struct cg__job {
    /* set by the caller before cg__job_start */
    void (*work)(cg__job *j);                 /* on a worker */
    void (*deliver)(cg__job *j, cg_future *f); /* on the loop's thread, f pending */
    void (*fini)(cg__job *j);                 /* frees the job (any thread) */
    /* the pool's and the link's */
    int refs;                                 /* atomic */
    unsigned char state;                      /* J_*, under the locks */
    cg__job *qnext, *qprev;                   /* the pool's queue */
    cg__job *lnext, *lprev;                   /* the link's jobs in flight */
    struct cg_executor *pool;
    cg__link *link;                           /* NULL once orphaned */
    cg_future *fut;                           /* the loop's future (owned) */
};

/* A pool of at most max_workers threads, started as jobs come (as
 * ThreadPoolExecutor starts them). NULL with errno ENOMEM. */
CG_HIDDEN struct cg_executor *cg__pool_new(unsigned max_workers);
/* executor.shutdown(wait): no job may be submitted any more; the queued
 * ones still run; wait: until every worker has ended. The pool is freed
 * once it is shut down and its last worker has ended; call it once. */
CG_HIDDEN void cg__pool_shutdown(struct cg_executor *p, int wait);
/* The number of workers started (alive), for the tests. */
CG_HIDDEN unsigned cg__pool_workers(struct cg_executor *p);

/* Queues j on pool p for loop (NULL: the running one) and returns a new
 * reference to its future. j's refs must be set (1: the link's only).
 * Else NULL, j released once (the link's reference) and *err the
 * exception: RuntimeError('Event loop is closed'), RuntimeError('cannot
 * schedule new futures after shutdown') for a pool shut down,
 * RuntimeError("can't start new thread") when no worker could be started,
 * MemoryError. */
CG_HIDDEN cg_future *cg__job_start(cg_loop *loop, struct cg_executor *p, cg__job *j, cg_exc **err);
CG_HIDDEN void cg__job_release(cg__job *j);

/* The running loop's default executor (made the first time): asyncio's
 * ThreadPoolExecutor(min(32, cpus + 4)). Raises RuntimeError('Executor
 * shutdown has been called') once loop.shutdown_default_executor ran. */
CG_HIDDEN struct cg_executor *cg__default_executor(cg_loop *loop);

#endif
