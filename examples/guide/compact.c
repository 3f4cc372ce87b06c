/* compact.c: docs/guide.md, "Many small generators: compact mode". */
#include <cogen.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define N 1000

static void *ticker(cg_gen *g, void *arg) {
    intptr_t id = (intptr_t)arg;
    for (;;)
        cg_yield(g, (void *)id);
    return NULL;  /* not reached */
}

int main(void) {
    cg_opts opts = {.flags = CG_OPT_COMPACT, .name = "ticker"};
    cg_gen **gens = malloc(N * sizeof *gens);
    if (gens == NULL)
        return 1;
    for (intptr_t i = 0; i < N; i++) {
        gens[i] = cg_new(ticker, (void *)i, &opts);
        if (gens[i] == NULL) {
            perror("cg_new");
            return 1;
        }
    }
    long long sum = 0;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            void *v;
            cg_next(gens[i], &v, NULL);
            sum += (intptr_t)v;
        }
    }
    cg_stack_stats st;
    cg_get_stack_stats(&st);
    printf("%d compact generators, 3 rounds: sum %lld, live stacks %zu, compact %d\n",
           N, sum, st.live, cg_gen_compact(gens[0]));
    for (int i = 0; i < N; i++)
        cg_free(gens[i]);
    free(gens);
    return 0;
}
