#include <cogen.h>
#include <stdint.h>
#include <stdio.h>
static void *summer(cg_gen *g, void *start) {          /* a running sum of the numbers sent in */
    volatile intptr_t sum = (intptr_t)start;           /* volatile: set in CG_TRY, read after a throw */
    for (;;) CG_TRY {
        sum += (intptr_t)cg_yield(g, (void *)sum);     /* yield the sum; send() resumes here */
    } CG_EXCEPT(&cg_ValueError, e) { sum = 0; } CG_END; /* throw(ValueError) lands here: reset */
    return NULL;                  /* not reached: close()'s GeneratorExit is not caught, it ends the body */
}
int main(void) {
    void *v; cg_gen *g = cg_new(summer, (void *)5, NULL);
    cg_next(g, &v, NULL);                              /* start: runs to the first yield, 5 */
    cg_send(g, (void *)7, &v, NULL);                   /* 5 + 7: yields 12 */
    printf("sum: %ld\n", (long)(intptr_t)v);
    cg_throw(g, cg_exc_new(&cg_ValueError, "reset"), &v, NULL);      /* caught: yields 0 */
    printf("after throw: %ld, close: %s\n", (long)(intptr_t)v, cg_status_name(cg_close(g, NULL, NULL)));
    cg_free(g);
}
