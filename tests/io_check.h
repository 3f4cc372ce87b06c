/* io_check.h: helpers of the I/O tests (test_io.c, test_threads_io.c),
 * beside check.h: counting the process's open fds, and running a body as
 * asyncio.run would, which must return. */
#ifndef COGEN_TESTS_IO_CHECK_H
#define COGEN_TESTS_IO_CHECK_H

#include "check.h"
#include "cogen_loop.h"

#include "fd_count.h"

static inline void run_main(cg_fn body, void *arg) {
    cg_exc *e = NULL;
    cg_status st = cg_run(body, arg, NULL, NULL, &e);
    if (st != CG_RETURNED) {
        cg_exc_print(e, stderr);
        CHECK(!"the run raised");
    }
}

/* run_main, and no fd left open by the run. */
static inline void run_main_no_fd_leak(cg_fn body, void *arg) {
    int before = count_fds();
    run_main(body, arg);
    CHECK_EQ(count_fds(), before);
}

#endif
