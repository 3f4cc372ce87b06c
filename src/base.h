/* base.h: what every file of the library shares and users never see:
 * attribute macros, the sanitizers' detection, and the checks that stay on
 * in every build. The bottom layer: it includes nothing of the library but
 * the public header.
 *
 * The layers, each calling only the ones below it (docs/design.md, and
 * tools/layers.py checks it in `make test`):
 *
 *   base    src/base.h                macros, checks
 *   mem     src/core/mem.[ch]          allocator, cache generations, fatal
 *   thread  src/core/thread.[ch]       per-thread state, exit hooks, cg_trim
 *   arch    src/arch/                  context switches
 *   stack   src/core/stack.[ch]        guarded, pooled stacks
 *   exc     src/core/exc.[ch]          exceptions, try/defer records
 *   gen     src/core/gen*.[ch]         the generator protocol
 *
 * Two calls go upward, and they are contracts declared in
 * src/core/upcalls.h: a fresh stack's first code enters the generator layer
 * (arch -> gen), and an exception that unwinds past a generator body's last
 * record ends that generator (exc -> gen).
 */
#ifndef COGEN_BASE_H
#define COGEN_BASE_H

#include "cogen.h"

#include <stdint.h>

#define CG_HIDDEN __attribute__((visibility("hidden")))
#define CG_LIKELY(x) __builtin_expect(!!(x), 1)
#define CG_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define CG_NOINLINE __attribute__((noinline))
/* gcc's straight-line vectorizer pairs two 8-byte stores of values held in
 * general registers through an SSE register (two moves and a shuffle for
 * one store saved): worse on a hot path that stores a few fields. */
#if defined(__GNUC__) && !defined(__clang__)
#define CG_NO_SLP __attribute__((optimize("no-tree-slp-vectorize")))
#else
#define CG_NO_SLP
#endif
#define CG_COLD __attribute__((cold, noinline))
#define CG_UNUSED __attribute__((unused))

/* Sanitizers, detected at compile time. */
#if defined(__SANITIZE_ADDRESS__)
#define CG_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CG_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define CG_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CG_TSAN 1
#endif
#endif
#ifndef CG_ASAN
#define CG_ASAN 0
#endif
#ifndef CG_TSAN
#define CG_TSAN 0
#endif

/* Checks that stay on in every build: a wrong answer here would corrupt a
 * stack, so the process stops with a message instead (src/core/mem.c). */
#define CG_CHECK(cond, msg) \
    do { \
        if (CG_UNLIKELY(!(cond))) cg__fatal(__FILE__, __LINE__, msg); \
    } while (0)
CG_NORETURN CG_HIDDEN void cg__fatal(const char *file, int line, const char *msg);

/* valgrind's client requests where its header is installed (stacks are
 * announced to it; the loop's watchdog and process watcher adapt to it);
 * RUNNING_ON_VALGRIND is 0 without it. */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define CG_VALGRIND 1
#endif
#endif
#ifndef CG_VALGRIND
#define CG_VALGRIND 0
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#endif
