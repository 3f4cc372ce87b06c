#include <cogen_loop.h>
#include <stdio.h>
static long ms(void) { return (long)(cg_loop_time(cg_get_running_loop()) / 1000000); }
static void done(void *name) { printf("%3ld ms  %s done\n", ms(), (char *)name); }
static void *worker(cg_gen *g, void *name) {             /* async def worker(name) */
    (void)g;
    CG_DEFER(done, name);                                /* finally: runs when cancelled too */
    for (int i = 0; i < 3; i++) {
        printf("%3ld ms  %s step %d\n", ms(), (char *)name, i);
        cg_sleep(CG_MS(*(char *)name == 'a' ? 10 : 25)); /* await asyncio.sleep(...) */
    }
    return *(char *)name == 'a' ? "A" : "B";
}
static void join(void *t) { cg_await(cg_task_future(t)); }
static void nap(void *arg) { (void)arg; cg_sleep(CG_SEC(1)); }
static void nap_briefly(void *arg) { cg_timeout_call(CG_MS(5), nap, arg); } /* async with timeout(0.005) */
static void *main_task(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    cg_task *a = cg_create_task(worker, "a", "a"), *b = cg_create_task(worker, "b", "b");
    printf("a returned %s\n", (char *)cg_await(cg_task_future(a)));
    cg_task_cancel(b, NULL);                             /* CancelledError at b's await */
    cg_exc *e = cg_try_catch(join, b, &cg_CancelledError);
    if (e) printf("%3ld ms  b cancelled\n", ms());
    cg_exc_unref(e);
    e = cg_try_catch(nap_briefly, NULL, &cg_TimeoutError);
    if (e) printf("%3ld ms  timed out\n", ms());
    cg_exc_unref(e);
    cg_future_unref(cg_task_future(a));
    cg_future_unref(cg_task_future(b));
    return NULL;
}
int main(void) {                                         /* asyncio.run(main()), on a virtual clock */
    cg_run_opts o = {CG_LOOP_VIRTUAL_CLOCK, NULL, NULL, NULL};
    return cg_run(main_task, NULL, &o, NULL, NULL) == CG_RETURNED ? 0 : 1;
}
