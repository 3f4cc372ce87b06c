/* check.h: the test harness. A test file defines cases with TEST(name) and
 * lists them in a CASES table; the binary runs the case named on its
 * command line (ctest runs each case as its own process, with a timeout,
 * so a crash fails one case only), or every case when run without one.
 * `--list` prints the table's names, one a line: that is how CMake learns
 * the cases (tests/cases.cmake), so the table is the only list of them.
 * Assertions print both operands and the location, then abort. */
#ifndef COGEN_CHECK_H
#define COGEN_CHECK_H

#include <cogen.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST(name) static void name(void)

typedef struct check_case {
    const char *name;
    void (*fn)(void);
} check_case;

#define CASE(name) {#name, name}

static inline void check_fail(const char *file, int line, const char *what) {
    fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
    fflush(stderr);
    abort();
}

#define CHECK(cond) \
    do { \
        if (!(cond)) check_fail(__FILE__, __LINE__, #cond); \
    } while (0)

#define CHECK_INT(a, op, b) \
    do { \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b); \
        if (!(check_a_ op check_b_)) { \
            fprintf(stderr, "%s:%d: check failed: %s %s %s (%lld vs %lld)\n", __FILE__, __LINE__, #a, #op, #b, \
                    check_a_, check_b_); \
            abort(); \
        } \
    } while (0)
#define CHECK_EQ(a, b) CHECK_INT(a, ==, b)

#define CHECK_PTR(a, b) \
    do { \
        const void *check_a_ = (const void *)(a), *check_b_ = (const void *)(b); \
        if (check_a_ != check_b_) { \
            fprintf(stderr, "%s:%d: check failed: %s == %s (%p vs %p)\n", __FILE__, __LINE__, #a, #b, check_a_, \
                    check_b_); \
            abort(); \
        } \
    } while (0)

#define CHECK_STR(a, b) \
    do { \
        const char *check_a_ = (a), *check_b_ = (b); \
        if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) { \
            fprintf(stderr, "%s:%d: check failed: %s == %s (\"%s\" vs \"%s\")\n", __FILE__, __LINE__, #a, #b, \
                    check_a_ ? check_a_ : "(null)", check_b_ ? check_b_ : "(null)"); \
            abort(); \
        } \
    } while (0)

/* repr() of an exception with its context chain, as the scenario traces
 * print it: "ValueError('b') <- KeyError('a')". Returns a static buffer. */
static inline const char *check_exc(const cg_exc *e) {
    static char buf[1024];
    size_t n = 0;
    buf[0] = '\0';
    if (!e) return "None";
    for (int depth = 0; e && n < sizeof buf - 64; depth++, e = cg_exc_context(e)) {
        if (depth) n += (size_t)snprintf(buf + n, sizeof buf - n, " <- ");
        n += cg_exc_repr(e, buf + n, sizeof buf - n);
        if (n >= sizeof buf) n = sizeof buf - 1;
    }
    return buf;
}

#define CHECK_EXC(e, text) CHECK_STR(check_exc(e), text)

/* Runs the case named argv[1], or all of them. */
static inline int check_main(int argc, char **argv, const check_case *cases, size_t n) {
    if (argc > 1 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < n; i++) printf("%s\n", cases[i].name);
        return 0;
    }
    int ran = 0;
    for (size_t i = 0; i < n; i++) {
        if (argc > 1 && strcmp(argv[1], cases[i].name) != 0) continue;
        cases[i].fn();
        ran++;
    }
    if (argc > 1 && !ran) {
        fprintf(stderr, "no test case named %s\n", argv[1]);
        return 1;
    }
    return 0;
}

#define CHECK_MAIN(cases) \
    int main(int argc, char **argv) { return check_main(argc, argv, cases, sizeof cases / sizeof cases[0]); }

#endif
