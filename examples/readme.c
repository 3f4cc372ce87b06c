#include <cogen.h>
#include <stdint.h>
#include <stdio.h>
typedef struct { intptr_t sum; } acc;                  /* what the body changes lives outside its frame */
static void *summer(cg_gen *g, void *arg) {            /* a running sum of the numbers sent in */
    acc *a = arg;                                      /* (a local changed in CG_TRY would need volatile) */
    for (;;) CG_TRY {
        a->sum += (intptr_t)cg_yield(g, (void *)a->sum); /* yield the sum; send() resumes here */
    } CG_EXCEPT(&cg_ValueError, e) { a->sum = 0; } CG_END; /* throw(ValueError) lands here: reset */
    return NULL;                  /* not reached: close()'s GeneratorExit is not caught, it ends the body */
}
int main(void) {
    acc a = {5};
    void *v; cg_gen *g = cg_new(summer, &a, NULL);
    cg_next(g, &v, NULL);                              /* start: runs to the first yield, 5 */
    cg_send(g, (void *)7, &v, NULL);                   /* 5 + 7: yields 12 */
    printf("sum: %ld\n", (long)(intptr_t)v);
    cg_throw(g, cg_exc_new(&cg_ValueError, "reset"), &v, NULL);      /* caught: yields 0 */
    printf("after throw: %ld, close: %s\n", (long)(intptr_t)v, cg_status_name(cg_close(g, NULL, NULL)));
    cg_free(g);
}
