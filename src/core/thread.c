/* thread.c: a thread's state, its set-up, and everything it gives back when
 * it ends (through the hooks the layers above register). */
#include "core/thread.h"

#include <pthread.h>
#include <string.h>

#if CG_TSAN
void *__tsan_get_current_fiber(void);
#endif

__thread cg__thread cg__t __attribute__((tls_model("initial-exec")));

/* Registered from constructors, before any thread can use them: no lock. */
static cg__thread_hooks *hooks;

void cg__thread_hooks_add(cg__thread_hooks *h) {
    cg__thread_hooks **p = &hooks;
    while (*p && (*p)->order <= h->order) {
        if (*p == h) return;
        p = &(*p)->next;
    }
    h->next = *p;
    *p = h;
}

static void run_flush(void) {
    for (cg__thread_hooks *h = hooks; h; h = h->next)
        if (h->flush) h->flush();
}

/* Everything a thread holds is given back when it ends, in one destructor so
 * that the order is ours: the layers' exit hooks, top first (finalizing a
 * generator may still use the stack pool and raise), then their caches. */
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t thread_key;

static void thread_exit(void *arg) {
    (void)arg;
    for (cg__thread_hooks *h = hooks; h; h = h->next)
        if (h->exit) h->exit();
    run_flush();
    /* As if the thread had never used cogen: if another thread-specific
     * destructor calls cogen after this one (cg_free of an orphan, say),
     * the thread is set up again, the key is set again, and this
     * destructor runs again in the next round, freeing what that made. */
    cg__t.cur = NULL;
}

static void make_key(void) { pthread_key_create(&thread_key, thread_exit); }

void cg__thread_init(void) {
    cg__thread *t = &cg__t;
    if (t->cur) return;
    pthread_once(&key_once, make_key);
    pthread_setspecific(thread_key, t);
    memset(&t->main, 0, sizeof t->main);
    memset(&t->main_san, 0, sizeof t->main_san);
#if CG_TSAN
    t->main_san.tsan_fiber = __tsan_get_current_fiber();
#endif
    t->cur = &t->main;
}

/* The thread's caches hold memory of an older allocator: give it back to
 * that one, and cache for the current one from now on. */
void cg__cache_renew(void) {
    run_flush();
    cg__t.cache_gen = cg__alloc_generation();
    cg__t.cache_alloc = cg__allocator_now();
}

void cg_set_allocator(void *(*alloc)(size_t, void *), void (*dealloc)(void *, void *), void *ud) {
    cg__allocator_set(alloc, dealloc, ud);
    /* Other threads' caches are emptied by each thread, at its next use of
     * them or when it ends; this thread's now. */
    cg__cache_renew();
}

void cg_trim(void) {
    cg__cur();
    for (cg__thread_hooks *h = hooks; h; h = h->next)
        if (h->trim) h->trim();
    run_flush();
}
