/* under_tools.h: what a test must know about the tools it runs under, as
 * src/base.h knows it for the library (CG_ASAN, CG_TSAN, CG_VALGRIND):
 *   UNDER_ASAN, UNDER_TSAN   built with AddressSanitizer, ThreadSanitizer
 *                            (1 or 0, at compile time, gcc or clang);
 *   UNDER_SANITIZER          either of them;
 *   RUNNING_ON_VALGRIND      valgrind's client request where its header is
 *                            installed (true at run time under valgrind),
 *                            else 0.
 * Tests use them to skip or scale down what such a run cannot judge (wall
 * time, RSS, mappings) and to say why. */
#ifndef COGEN_TEST_UNDER_TOOLS_H
#define COGEN_TEST_UNDER_TOOLS_H

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif

#define UNDER_SANITIZER (UNDER_ASAN || UNDER_TSAN)

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#endif
