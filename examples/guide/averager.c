/* averager.c: docs/guide.md, "send: coroutines that receive". */
#include <cogen.h>
#include <stdint.h>
#include <stdio.h>

/* The result lives in the caller's memory: the body gets a pointer to it. */
static void *averager(cg_gen *g, void *arg) {
    double *avg = arg;
    double total = 0;
    long count = 0;
    for (;;) {
        intptr_t x = (intptr_t)cg_yield(g, avg);  /* x = yield avg */
        total += (double)x;
        count++;
        *avg = total / (double)count;
    }
    return NULL;  /* not reached: cg_free closes it at its yield */
}

int main(void) {
    double avg = 0;
    cg_gen *g = cg_new(averager, &avg, NULL);
    if (g == NULL)
        return 1;
    cg_next(g, NULL, NULL);  /* prime it: run to the first yield */
    int data[] = {10, 20, 60};
    for (int i = 0; i < 3; i++) {
        cg_send(g, (void *)(intptr_t)data[i], NULL, NULL);
        printf("sent %d, average %.1f\n", data[i], avg);
    }
    cg_free(g);  /* closes it: GeneratorExit at its yield */

    /* Sending a value into a generator that has not started is an error. */
    double other = 0;
    cg_gen *h = cg_new(averager, &other, NULL);
    if (h == NULL)
        return 1;
    cg_exc *e;
    cg_status st = cg_send(h, (void *)(intptr_t)5, NULL, &e);
    char buf[100];
    cg_exc_repr(e, buf, sizeof buf);
    printf("%s %s, still %s\n", cg_status_name(st), buf, cg_state_name(cg_gen_state(h)));
    cg_exc_unref(e);
    cg_free(h);
    return 0;
}
