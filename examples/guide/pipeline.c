/* pipeline.c: docs/guide.md, "Pipelines". */
#include <cogen.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Pull: each stage iterates the one before it, as
 *     sum(evens(squares(numbers(10)))) */
static void *numbers(cg_gen *g, void *arg) {
    for (intptr_t i = 1; i <= (intptr_t)arg; i++)
        cg_yield(g, (void *)i);
    return NULL;
}

static void *squares(cg_gen *g, void *src) {
    CG_FOREACH(v, (cg_gen *)src) {
        intptr_t x = (intptr_t)v;
        cg_yield(g, (void *)(x * x));
    }
    return NULL;
}

static void *evens(cg_gen *g, void *src) {
    CG_FOREACH(v, (cg_gen *)src) {
        if ((intptr_t)v % 2 == 0)
            cg_yield(g, v);
    }
    return NULL;
}

/* Push: each stage receives values with cg_yield and sends them on. */
static void *printer(cg_gen *g, void *arg) {
    (void)arg;
    for (;;) {
        const char *line = cg_yield(g, NULL);
        printf("match: %s\n", line);
    }
    return NULL;  /* not reached */
}

struct grep { const char *pattern; cg_gen *target; };

static void *grep(cg_gen *g, void *arg) {
    struct grep *gr = arg;
    for (;;) {
        const char *line = cg_yield(g, NULL);
        if (strstr(line, gr->pattern)) {
            cg_exc *e;
            if (cg_send(gr->target, (void *)line, NULL, &e) == CG_RAISED)
                cg_raise(e);  /* the target failed: so does this stage */
        }
    }
    return NULL;  /* not reached */
}

int main(void) {
    cg_gen *nums = cg_new(numbers, (void *)10, NULL);
    cg_gen *sq = cg_new(squares, nums, NULL);
    cg_gen *ev = cg_new(evens, sq, NULL);
    if (!nums || !sq || !ev)
        return 1;
    intptr_t sum = 0;
    CG_FOREACH(v, ev) {
        sum += (intptr_t)v;
    }
    printf("sum of the even squares up to 10: %ld\n", (long)sum);
    cg_free(ev);
    cg_free(sq);
    cg_free(nums);

    cg_gen *out = cg_new(printer, NULL, NULL);
    struct grep gr = {"yield", out};
    cg_gen *filter = cg_new(grep, &gr, NULL);
    if (!out || !filter)
        return 1;
    cg_next(out, NULL, NULL);  /* prime both */
    cg_next(filter, NULL, NULL);
    const char *lines[] = {"def gen():", "    x = yield 1", "    return x", "    yield from sub()"};
    for (int i = 0; i < 4; i++)
        cg_send(filter, (void *)lines[i], NULL, NULL);
    cg_free(filter);
    cg_free(out);
    return 0;
}
