/* first.c: docs/guide.md, "A first generator" and "Driving a generator by
 * hand". Built and run by `make test`; expected/first.txt says what it must
 * print. */
#include <cogen.h>
#include <stdint.h>
#include <stdio.h>

/* def countdown(n):
 *     while n > 0:
 *         yield n
 *         n -= 1
 */
static void *countdown(cg_gen *g, void *arg) {
    for (intptr_t n = (intptr_t)arg; n > 0; n--)
        cg_yield(g, (void *)n);
    return NULL;
}

static void *two_then_done(cg_gen *g, void *arg) {
    (void)arg;
    cg_yield(g, "first");
    cg_yield(g, "second");
    return "done";
}

static const char *str(void *v) { return v ? (const char *)v : "NULL"; }

int main(void) {
    cg_gen *g = cg_new(countdown, (void *)3, NULL);
    if (g == NULL) {
        perror("cg_new");
        return 1;
    }
    CG_FOREACH(v, g) {
        printf("%ld\n", (long)(intptr_t)v);
    }
    cg_free(g);

    cg_gen *h = cg_new(two_then_done, NULL, NULL);
    if (h == NULL)
        return 1;
    void *v;
    printf("%s\n", cg_state_name(cg_gen_state(h)));
    for (int i = 0; i < 4; i++) {
        cg_status st = cg_next(h, &v, NULL);
        printf("%s %s %s\n", cg_status_name(st), str(v), cg_state_name(cg_gen_state(h)));
    }
    cg_free(h);
    return 0;
}
