/* debug.c: docs/guide.md, "Debugging". */
#include <cogen.h>
#include <stdio.h>

static void *stubborn(cg_gen *g, void *arg) {
    (void)arg;
    for (;;) {
        CG_TRY {
            cg_yield(g, NULL);
        } CG_EXCEPT(&cg_BaseException, e) {
            (void)e;  /* swallows GeneratorExit: a bug */
        } CG_END;
    }
    return NULL;  /* not reached */
}

static void on_unraisable(cg_exc *e, cg_gen *g, void *ud) {
    char buf[100];
    cg_exc_repr(e, buf, sizeof buf);
    printf("unraisable in '%s': %s\n", cg_gen_name(g), buf);
    ++*(int *)ud;
}

int main(void) {
    int reports = 0;
    cg_set_unraisable_hook(on_unraisable, &reports);

    cg_opts opts = {.name = "parser", .stack_size = 64 * 1024};
    cg_gen *g = cg_new(stubborn, NULL, &opts);
    if (g == NULL)
        return 1;
    printf("'%s': %zu bytes of stack, guarded: %s\n", cg_gen_name(g), cg_gen_stack_size(g),
           cg_gen_guard(g) != CG_GUARD_NONE ? "yes" : "no");
    cg_next(g, NULL, NULL);
    cg_free(g);  /* its close fails: reported to the hook, not raised here */
    printf("%d report(s)\n", reports);
    return 0;
}
