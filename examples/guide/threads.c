/* threads.c: docs/guide.md, "Threads". */
#define _POSIX_C_SOURCE 200809L
#include <cogen.h>
#include <pthread.h>
#include <stdio.h>

static pthread_t owner;

static void cleanup(void *arg) {
    (void)arg;
    printf("cleanup runs on the owner thread: %s\n",
           pthread_equal(pthread_self(), owner) ? "yes" : "no");
}

static void *body(cg_gen *g, void *arg) {
    (void)arg;
    CG_DEFER(cleanup, NULL);
    for (;;)
        cg_yield(g, NULL);
    return NULL;  /* not reached */
}

static void *other_thread(void *arg) {
    cg_gen *g = arg;
    cg_exc *e;
    cg_status st = cg_next(g, NULL, &e);
    char buf[100];
    cg_exc_repr(e, buf, sizeof buf);
    printf("other thread: cg_next: %s %s\n", cg_status_name(st), buf);
    cg_exc_unref(e);
    cg_free(g);  /* allowed: handed to the owner */
    printf("other thread: freed it\n");
    return NULL;
}

int main(void) {
    owner = pthread_self();
    cg_gen *g = cg_new(body, NULL, NULL);
    if (g == NULL)
        return 1;
    cg_next(g, NULL, NULL);
    pthread_t t;
    if (pthread_create(&t, NULL, other_thread, g) != 0)
        return 1;
    pthread_join(t, NULL);
    printf("owner: cg_trim\n");
    cg_trim();  /* finalizes what other threads freed (so do cg_new, cg_free) */
    return 0;
}
