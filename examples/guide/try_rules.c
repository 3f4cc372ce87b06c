/* try_rules.c: docs/guide.md, "The rules of CG_TRY". */
#include <cogen.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Safest: the try is a function call. cg_try_catch runs fn(arg) in a try
 * in the library's frame and returns what it caught: no setjmp here, so
 * every local of this function keeps its value. */
static void count_to_three(void *arg) {
    int *done = arg;
    for (;;) {
        ++*done;
        if (*done == 3)
            CG_RAISE(&cg_ValueError, "third");
    }
}

static void count_with_try_catch(void) {
    int done = 0;
    cg_exc *e = cg_try_catch(count_to_three, &done, &cg_ValueError);
    if (e != NULL) {
        printf("try_catch: %d done before '%s'\n", done, cg_exc_msg(e));
        cg_exc_unref(e);
    }
}

/* Safe: the state lives in a struct reached through a pointer. */
struct progress { int done; };

static void count_in_struct(struct progress *pr) {
    CG_TRY {
        for (;;) {
            pr->done++;
            if (pr->done == 3)
                CG_RAISE(&cg_ValueError, "third");
        }
    } CG_EXCEPT(&cg_ValueError, e) {
        printf("struct: %d done before '%s'\n", pr->done, cg_exc_msg(e));
    } CG_END;
}

/* Safe: a local declared volatile. */
static void count_in_volatile(void) {
    volatile int done = 0;
    CG_TRY {
        for (;;) {
            done++;
            if (done == 3)
                CG_RAISE(&cg_ValueError, "third");
        }
    } CG_EXCEPT(&cg_ValueError, e) {
        printf("volatile: %d done before '%s'\n", done, cg_exc_msg(e));
    } CG_END;
}

/* Cleanup that must run even when the block is left by return: CG_DEFER. */
static int find(const int *xs, int n, int want) {
    int *copy = malloc(sizeof *copy * (size_t)n);
    if (copy == NULL)
        return -1;
    CG_DEFER(free, copy);  /* runs on return and on exceptions */
    for (int i = 0; i < n; i++) {
        copy[i] = xs[i];
        if (copy[i] == want)
            return i;
    }
    return -1;
}

/* No unwinding through foreign frames: cg_yield_catch returns what was
 * thrown instead of raising it. */
static void *careful(cg_gen *g, void *arg) {
    (void)arg;
    for (;;) {
        void *sent;
        cg_exc *e = cg_yield_catch(g, "waiting", &sent);
        if (e == NULL) {
            printf("careful got %ld\n", (long)(intptr_t)sent);
        } else if (cg_exc_is(e, &cg_GeneratorExit)) {
            cg_exc_unref(e);
            return NULL;  /* let close() succeed */
        } else {
            printf("careful handled %s\n", cg_exc_type_of(e)->name);
            cg_exc_unref(e);
        }
    }
}

int main(void) {
    count_with_try_catch();
    struct progress pr = {0};
    count_in_struct(&pr);
    count_in_volatile();
    int xs[] = {4, 8, 15};
    printf("found at %d\n", find(xs, 3, 8));

    cg_gen *g = cg_new(careful, NULL, NULL);
    if (g == NULL)
        return 1;
    cg_next(g, NULL, NULL);
    cg_send(g, (void *)7, NULL, NULL);
    cg_throw(g, cg_exc_new(&cg_TimeoutError, NULL), NULL, NULL);
    printf("close: %s\n", cg_status_name(cg_close(g, NULL, NULL)));
    cg_free(g);
    return 0;
}
