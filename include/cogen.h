/* cogen.h: Python's generator-as-coroutine protocol in C.
 *
 * A generator is a C function running on its own stack. Its caller drives
 * it with cg_next / cg_send / cg_throw / cg_close and gets back a status,
 * exactly as CPython's C level does (PySendResult): the value it yielded,
 * the value it returned (StopIteration), or the exception it raised. Inside
 * the body, cg_yield hands a value out and returns the value sent in; an
 * exception thrown by the caller is raised at that cg_yield and unwinds the
 * body through CG_TRY / CG_EXCEPT / CG_FINALLY blocks and CG_DEFER records.
 *
 * Semantics are CPython 3.11's, rule by rule, with two deliberate choices:
 * cg_close() hands back the body's return value (Python 3.13), and throwing
 * StopIteration into a generator that never started raises the PEP 479
 * RuntimeError (3.11). docs/conformance.md maps every rule to its test.
 *
 * Sections:
 *   1. Basics: values, statuses, states, errors
 *   2. Exceptions: types, objects, raise, try/except/finally, defer
 *   3. Generators: create, drive, free (caller side)
 *   4. Generators: yield, yield from (body side)
 *   5. Iteration helper
 *   6. Configuration: allocator, unraisable hook, stacks
 *   7. Internals the macros need (not API)
 *
 * Conventions used throughout:
 *   - Values crossing yield/send are `void *`; NULL stands for Python's None.
 *     cogen never owns, copies or frees them.
 *   - Protocol misuse (resuming a running generator, sending a value into a
 *     fresh one, NULL arguments) is reported the way Python reports it: an
 *     exception of the matching type with Python's message. Functions that
 *     allocate return NULL with errno set (ENOMEM, EINVAL) instead.
 *   - "New reference" means the caller must release the exception with
 *     cg_exc_unref(); "borrowed" means it must not.
 *   - Everything is per thread: a generator belongs to the thread that
 *     created it (see cg_new).
 *   - A switch between a body and its resumer (cg_send, cg_yield, ...)
 *     keeps what a function call keeps: the callee-saved registers and each
 *     side's stack. The rest is the thread's and shared, as Python
 *     generators share their thread's state: errno, thread-locals, and the
 *     floating-point environment (rounding mode, flush-to-zero, exception
 *     masks and flags; a generator can keep its own with CG_OPT_FPENV).
 *   - Getters (cg_gen_*, cg_exc_* accessors) accept NULL and answer what an
 *     absent object has: NULL, 0, "generator", CG_GEN_CLOSED, CG_GUARD_NONE.
 *   - A body must leave only by returning, raising, or being closed: a body
 *     that ends its thread (pthread_exit) or longjmps out of its own stack
 *     leaves its generator RUNNING for good, and its handle is never freed.
 */
#ifndef COGEN_H
#define COGEN_H

#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#define CG_NORETURN [[noreturn]]
#else
#define CG_NORETURN _Noreturn
#endif

#if defined(COGEN_BUILDING) && defined(__GNUC__)
#define CG_API __attribute__((visibility("default")))
#else
#define CG_API
#endif

#define COGEN_VERSION_MAJOR 0
#define COGEN_VERSION_MINOR 1
#define COGEN_VERSION_PATCH 0

/* ======================================================================
 * 1. Basics
 * ====================================================================== */

typedef struct cg_gen cg_gen;           /* a generator (opaque) */
typedef struct cg_exc cg_exc;           /* an exception object (opaque, refcounted) */
typedef struct cg_exc_type cg_exc_type; /* an exception type (static descriptor) */

/* What a resumption of a generator produced. */
typedef enum cg_status {
    CG_YIELDED = 0,  /* the body yielded; *out is the value; it is suspended */
    CG_RETURNED = 1, /* the body returned (Python's StopIteration); *out is the
                        return value, NULL for a bare return or an exhausted
                        generator; the generator is closed */
    CG_RAISED = 2    /* an exception came out; *exc is a new reference to it */
} cg_status;

/* inspect.getgeneratorstate(), as an enum. */
typedef enum cg_state {
    CG_GEN_CREATED = 0,   /* made, no line of the body has run */
    CG_GEN_SUSPENDED = 1, /* parked at a cg_yield (or inside cg_yield_from) */
    CG_GEN_RUNNING = 2,   /* executing now (also a delegator while its
                             subgenerator runs) */
    CG_GEN_CLOSED = 3     /* returned, raised or closed; its stack is released */
} cg_state;

/* Name of a status or state, for messages: "CG_YIELDED", "GEN_SUSPENDED";
 * "?" for a value that is none of them. */
CG_API const char *cg_status_name(cg_status s);
CG_API const char *cg_state_name(cg_state s);

/* ======================================================================
 * 2. Exceptions
 *
 * Types are static descriptors with single inheritance, named after
 * Python's built-ins. Define your own with CG_EXC_TYPE:
 *
 *     CG_EXC_TYPE(AppError, cg_Exception);       // in one .c file
 *     extern const cg_exc_type AppError;          // in a header
 *
 * Objects are refcounted: one exception can be in flight, being handled,
 * the context of a newer one and returned to a caller all at once. Every
 * object carries a message (or none: Python's `Type()`), an optional
 * payload with its destructor, the exception that was being handled when it
 * was raised (Python's __context__), an explicit __cause__ and the site of
 * its first raise (file, line, function).
 * ====================================================================== */

struct cg_exc_type {
    const char *name;         /* "ValueError" */
    const cg_exc_type *base;  /* NULL only for BaseException */
};

#define CG_EXC_TYPE(var, basevar) const cg_exc_type var = {#var, &(basevar)}

/* Python's hierarchy below BaseException, as (name, base) pairs: the
 * variables are cg_Exception, cg_ValueError, ... GeneratorExit derives from
 * BaseException, not Exception, so catching cg_Exception never swallows
 * close(). */
#define CG_BUILTIN_EXC_TYPES(X)              \
    X(Exception, BaseException)              \
    X(GeneratorExit, BaseException)          \
    X(KeyboardInterrupt, BaseException)      \
    X(SystemExit, BaseException)             \
    X(StopIteration, Exception)              \
    X(StopAsyncIteration, Exception)         \
    X(ArithmeticError, Exception)            \
    X(OverflowError, ArithmeticError)        \
    X(ZeroDivisionError, ArithmeticError)    \
    X(AssertionError, Exception)             \
    X(AttributeError, Exception)             \
    X(LookupError, Exception)                \
    X(IndexError, LookupError)               \
    X(KeyError, LookupError)                 \
    X(MemoryError, Exception)                \
    X(OSError, Exception)                    \
    X(TimeoutError, OSError)                 \
    X(RuntimeError, Exception)               \
    X(NotImplementedError, RuntimeError)     \
    X(RecursionError, RuntimeError)          \
    X(TypeError, Exception)                  \
    X(ValueError, Exception)                 \
    X(BaseExceptionGroup, BaseException)     \
    X(ExceptionGroup, BaseExceptionGroup)

extern CG_API const cg_exc_type cg_BaseException; /* the root */
#define CG__DECLARE_TYPE(name, base) extern CG_API const cg_exc_type cg_##name;
CG_BUILTIN_EXC_TYPES(CG__DECLARE_TYPE)
#undef CG__DECLARE_TYPE

/* issubclass(t, base). 0 if either is NULL. ExceptionGroup (and any type
 * derived from it) is both a BaseExceptionGroup and an Exception, as in
 * Python: `except Exception` catches it, BaseExceptionGroup does not. */
CG_API int cg_type_is(const cg_exc_type *t, const cg_exc_type *base);

/* A new exception: type(msg), or type() when msg is NULL. The message is
 * copied. Returns a new reference; never NULL: when memory runs out it
 * returns the preallocated MemoryError instead (check cg_exc_is). A NULL
 * type is a TypeError. */
CG_API cg_exc *cg_exc_new(const cg_exc_type *type, const char *msg);
/* Same with a printf-style message; a NULL fmt makes type() (no message).
 * A NULL type is a TypeError, as for cg_exc_new. */
CG_API cg_exc *cg_exc_newf(const cg_exc_type *type, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Reference counting. cg_exc_ref returns e; both accept NULL. Counts are
 * not atomic: an exception may move to another thread, but may not be
 * shared by two threads at once. */
CG_API cg_exc *cg_exc_ref(cg_exc *e);
CG_API void cg_exc_unref(cg_exc *e);

/* isinstance(e, t). A NULL e is not an instance of anything. */
CG_API int cg_exc_is(const cg_exc *e, const cg_exc_type *t);
CG_API const cg_exc_type *cg_exc_type_of(const cg_exc *e);
CG_API const char *cg_exc_msg(const cg_exc *e); /* NULL when raised as Type() */

/* __context__ and __cause__, borrowed (NULL when absent). Setters take a new
 * reference of their own to the value (NULL clears). Setting the cause also
 * sets the context to the same value, as `raise X from Y` does; so
 * cg_exc_set_cause(e, NULL) clears both. Setting e as its own context or
 * cause, or setting anything on NULL or on the preallocated MemoryError,
 * does nothing. Exceptions never form a reference cycle (refcounting could
 * not free it): if e can be reached from the new value through context and
 * cause links, the links that lead back to e are cut first, as Python's
 * implicit chaining cuts __context__ links. */
CG_API cg_exc *cg_exc_context(const cg_exc *e);
CG_API cg_exc *cg_exc_cause(const cg_exc *e);
CG_API void cg_exc_set_context(cg_exc *e, cg_exc *context);
CG_API void cg_exc_set_cause(cg_exc *e, cg_exc *cause);

/* A payload travelling with the exception; ownership passes to it. dtor
 * (may be NULL; it must not raise) runs on it exactly once: when the
 * exception is freed or the payload replaced, or at once when e is NULL or
 * the preallocated MemoryError. Setting the payload e already has (the same
 * non-NULL pointer) keeps it and only changes the destructor. */
CG_API void cg_exc_set_payload(cg_exc *e, void *payload, void (*dtor)(void *));
CG_API void *cg_exc_payload(const cg_exc *e);

/* Where the exception was first raised with CG_RAISE, CG_RAISEF or
 * cg_raise; file and func are NULL (line 0) for one that was not (made and
 * thrown into a generator, or made by the library for its caller). */
CG_API const char *cg_exc_file(const cg_exc *e);
CG_API int cg_exc_line(const cg_exc *e);
CG_API const char *cg_exc_func(const cg_exc *e);

/* Python's repr: "ValueError('boom')", "KeyError()", TypeError("can't ...").
 * Writes at most size bytes including the terminating NUL and returns the
 * length of the full text, like snprintf. buf may be NULL (size then counts
 * as 0) to measure the length. */
CG_API size_t cg_exc_repr(const cg_exc *e, char *buf, size_t size);
/* Prints e, its raise site and its context chain, oldest first, the way
 * Python prints a traceback's exception lines. f NULL: stderr; e NULL: "None". */
CG_API void cg_exc_print(const cg_exc *e, FILE *f);

/* Exception groups (PEP 654): BaseExceptionGroup(msg, excs), an exception
 * whose message is msg and which holds the exceptions excs[0..n-1] (the
 * group takes references of its own; excs stays the caller's). type is
 * &cg_BaseExceptionGroup (or NULL), &cg_ExceptionGroup, or a type derived
 * from either; as in Python, BaseExceptionGroup makes an ExceptionGroup when
 * every member is an Exception. Raises what Python's constructor raises:
 * TypeError('BaseExceptionGroup.__new__() argument 1 must be str, not None')
 * for a NULL msg, ValueError('second argument (exceptions) must be a
 * non-empty sequence') for none, ValueError('Item 1 of second argument
 * (exceptions) is not an exception') for a NULL member, TypeError('Cannot
 * nest BaseExceptions in an ExceptionGroup') for a BaseException in an
 * ExceptionGroup, TypeError when type is not a group type; MemoryError.
 * Returns a new reference. The members are the group's payload: do not
 * replace it (cg_exc_set_payload). A group made by cg_exc_new has no
 * members. cg_exc_repr gives Python's repr,
 * "ExceptionGroup('msg', [ValueError('a'), KeyError('b')])"; cg_exc_msg
 * the message alone. */
CG_API cg_exc *cg_exc_group_new(const cg_exc_type *type, const char *msg, cg_exc *const *excs, size_t n);
/* len(eg.exceptions), 0 for anything that is not a group; eg.exceptions[i]
 * borrowed, NULL when out of range. */
CG_API size_t cg_exc_group_count(const cg_exc *e);
CG_API cg_exc *cg_exc_group_at(const cg_exc *e, size_t i);

/* Raising. These never return: control goes to the innermost enclosing
 * CG_EXCEPT that matches, running CG_FINALLY blocks and CG_DEFER records
 * on the way. An exception that escapes a generator's body closes the
 * generator and is reported to whoever resumed it (CG_RAISED). One that
 * escapes everything on a thread's own stack is printed, and the process
 * aborts, like an uncaught C++ exception.
 *
 * Raising sets the exception's __context__ to the exception being handled
 * at that point (cg_exc_current), as Python does; any link (context or
 * cause) from that exception's chain back to the one raised is cut, so no
 * cycle forms.
 *
 *   CG_RAISE(&cg_ValueError, "bad input");     // ValueError('bad input')
 *   CG_RAISE(&cg_KeyError, NULL);              // KeyError()
 *   CG_RAISEF(&cg_ValueError, "bad %d", n);
 *   cg_raise(e);                               // raise e (consumes e)
 *   cg_reraise();                              // bare `raise`
 */
#define CG_RAISE(type, msg) cg_raise_at(cg_exc_new((type), (msg)), __FILE__, __LINE__, __func__)
#define CG_RAISEF(type, ...) cg_raise_at(cg_exc_newf((type), __VA_ARGS__), __FILE__, __LINE__, __func__)
#define cg_raise(e) cg_raise_at((e), __FILE__, __LINE__, __func__)
/* Raises e, consuming the caller's reference. A NULL e raises TypeError.
 * To raise on the exception a CG_EXCEPT block names (Python's `raise e` in
 * `except E as e`), write cg_raise(cg_exc_ref(e)) or cg_reraise(); a plain
 * cg_raise(e) of that borrowed e is recognized when the handler holds its
 * only reference, and a reference is taken for it. */
CG_NORETURN CG_API void cg_raise_at(cg_exc *e, const char *file, int line, const char *func);
/* Raises e (consuming the reference) as it is: unlike cg_raise, it leaves
 * e's __context__ and raise site alone. This is how an exception propagates
 * out of a call in Python, where the caller's handled exception does not
 * become its context: for an exception handed on from elsewhere, such as
 * what a resumed generator raised (cg_send, cg_throw: CG_RAISED) or what
 * cg_try_catch caught, when the caller is inside an except block of its
 * own. NULL: TypeError, as for cg_raise. */
CG_NORETURN CG_API void cg_propagate(cg_exc *e);
/* Bare `raise`: re-raises the exception being handled, unchanged. With none
 * being handled: RuntimeError('No active exception to reraise'). */
CG_NORETURN CG_API void cg_reraise(void);

/* The exception being handled here, borrowed, or NULL: Python's
 * sys.exc_info()[1]. Inside a generator that handles nothing, this is the
 * exception its resumer is handling. */
CG_API cg_exc *cg_exc_current(void);

/* try / except / finally.
 *
 *   CG_TRY {
 *       risky();
 *   } CG_EXCEPT(&cg_ValueError, e) {       // e: borrowed, valid in the block
 *       log(cg_exc_msg(e));
 *   } CG_EXCEPT(&cg_BaseException, e) {    // any exception, like bare except
 *       cleanup();
 *       cg_reraise();
 *   } CG_FINALLY {
 *       always();
 *   } CG_END;
 *
 * Any number of CG_EXCEPT clauses (first match wins), an optional
 * CG_FINALLY; CG_END closes the block. A clause with a NULL type, reached
 * while looking for a match, raises TypeError('catching classes that do
 * not inherit from BaseException is not allowed'), as `except None:` does. Handlers and the finally block may
 * yield, raise (the new exception is chained to the one being handled) and
 * re-raise. An exception that no clause matches continues outward after the
 * finally block runs. Blocks nest to any depth (also within handlers and
 * finally blocks); each CG_EXCEPT, CG_FINALLY and CG_END belongs to the
 * innermost open CG_TRY. Rules (they follow from setjmp/longjmp):
 *   - locals: see "Locals and CG_TRY" below;
 *   - `return`, `break` or `goto` out of a CG_TRY body or handler leaves the
 *     block without running its CG_FINALLY (use CG_DEFER for cleanup that
 *     must always run); leaving a CG_FINALLY that way discards a pending
 *     exception, like `return` inside Python's `finally`;
 *   - never let an exception cross foreign frames (C++ code, callbacks of
 *     other libraries): catch it before, or use cg_yield_catch;
 *   - never swallow cg_GeneratorExit: re-raise it or return.
 *
 * Locals and CG_TRY. CG_TRY is a setjmp in the function that writes it, and
 * a raise comes back there by longjmp. C (C11 7.13.2.1p3) then leaves
 * indeterminate every local of that function that is not volatile and was
 * changed after CG_TRY began: such a local must not be read in a handler, in
 * the finally block, or after CG_END once an exception may have arrived.
 * This is no theory: at -O1 and above clang hands such a local back with
 * the value it had when CG_TRY began (in every case we tried), gcc does in
 * some (a loop in a generator body), and neither reliably warns (gcc's
 * -Wclobbered, part of -Wextra, catches some cases; clang has no such
 * warning). Safe, in order of preference:
 *   1. cg_try_call / cg_try_catch (below): the setjmp is in the library's
 *      frame, the exception comes back as a return value, and every local
 *      of the caller keeps its value;
 *   2. CG_DEFER for cleanup: no setjmp at all, so no local is at risk
 *      (the deferred function reaches them through its argument);
 *   3. state that the try body changes kept outside the function's frame:
 *      in an object reached through a pointer argument (a generator's arg),
 *      a static, or the heap;
 *   4. a local declared volatile: `volatile int n`, `char *volatile p` (the
 *      pointer itself, not what it points to).
 * Locals that are only read between CG_TRY and CG_END, or changed only
 * before CG_TRY, need nothing.
 *
 * Nested blocks build clean with -Wshadow, in C and C++ (the one name each
 * CG_TRY declares for its clauses, and that a nested one hides, is
 * declared with the warning off). */
#define CG_TRY CG__TRY(CG__CAT(cg__try_, __COUNTER__))
#define CG_EXCEPT(type, e)                                          \
        } else if (cg__try_match(cg__try_here, (type))) {           \
            cg_exc *const e = cg__try_here->exc;                    \
            (void)e;
#define CG_FINALLY                                                  \
        }                                                           \
        cg__try_finally(cg__try_here);                              \
        {
#define CG_END                                                      \
        }                                                           \
        cg__try_end(cg__try_here);                                  \
    }

/* Try as a function call: runs fn(arg) inside a try statement and returns
 * what it raised, so that no setjmp lands in the caller's frame and none of
 * its locals can be clobbered. fn may yield (in a generator body), raise,
 * and use CG_TRY and CG_DEFER itself.
 *   cg_try_call(fn, arg)        catches what `except Exception:` catches;
 *                               GeneratorExit, KeyboardInterrupt and
 *                               SystemExit continue outward, so a body that
 *                               yields inside fn still closes properly;
 *   cg_try_catch(fn, arg, type) catches instances of type (any type, e.g.
 *                               &cg_BaseException); others continue outward.
 * Both return NULL when fn returned, or a new reference to the exception
 * that was caught; it is no longer being handled once they return (as after
 * Python's except block): to re-raise it, cg_raise(e), which keeps its
 * first raise site. The caught exception's cleanups (CG_DEFER, CG_FINALLY
 * inside fn) have all run by then. fn NULL is a call of None: TypeError("'NoneType'
 * object is not callable"), caught or not like any other exception. type
 * NULL is `except None:`: nothing happens if fn returns, else TypeError is
 * raised from the call, chained to fn's exception.
 *
 *   typedef struct { int parsed; } job;
 *   static void parse_all(void *p) { job *j = p; for (;;) { step(); j->parsed++; } }
 *   ...
 *   job j = {0};
 *   cg_exc *e = cg_try_catch(parse_all, &j, &cg_ValueError);
 *   if (e) { printf("stopped after %d: %s\n", j.parsed, cg_exc_msg(e)); cg_exc_unref(e); }
 */
CG_API cg_exc *cg_try_call(void (*fn)(void *), void *arg);
CG_API cg_exc *cg_try_catch(void (*fn)(void *), void *arg, const cg_exc_type *type);

/* CG_DEFER(fn, arg): fn(arg) runs when the enclosing block is left, by
 * falling off its end, by return/break/goto, or by an exception passing
 * through (newest first, while unwinding). A defer that raises while an
 * exception passes replaces it, chained to it. Any number of CG_DEFERs may
 * share a line or a macro. fn may be NULL: nothing runs (e.g.
 * CG_DEFER(owned ? free : NULL, p)). */
#define CG_DEFER(fn, arg) CG__DEFER(CG__CAT(cg__defer_, __COUNTER__), fn, arg)

/* ======================================================================
 * 3. Generators: the caller side
 * ====================================================================== */

/* A generator body. It receives its generator and the argument given to
 * cg_new; what it returns is the generator's return value. */
typedef void *(*cg_fn)(cg_gen *g, void *arg);

/* Stack protection a generator got (cg_gen_guard). */
typedef enum cg_guard {
    CG_GUARD_NONE = 0,    /* no stack: a NULL or closed generator */
    CG_GUARD_PAGE = 1,    /* a no-access guard below the stack (one page on
                             x86-64, 64 KiB on AArch64, where compilers
                             assume that much); an overflow faults at once
                             and is reported (cg_new) */
    CG_GUARD_CANARY = 2   /* no guard page was available (the kernel's
                             mapping limit was reached): a canary below the
                             stack is checked at every switch, an overflow is
                             reported when the generator next yields */
} cg_guard;

/* Options for cg_new; a NULL options pointer means all defaults. */
typedef struct cg_opts {
    size_t stack_size; /* usable stack bytes; 0: CG_STACK_DEFAULT; rounded up
                          to whole pages; at least CG_STACK_MIN */
    const char *name;  /* for diagnostics (overflow, unraisable, gdb);
                          borrowed: must outlive the generator */
    unsigned flags;    /* CG_OPT_* below; other bits are ignored */
} cg_opts;

#define CG_STACK_DEFAULT (128u * 1024u)
#define CG_STACK_COMPACT_DEFAULT (32u * 1024u) /* with CG_OPT_COMPACT */
#define CG_STACK_MIN (16u * 1024u)
#define CG_OPT_REQUIRE_GUARD 1u /* fail (errno EAGAIN; ENOMEM when out of
                                   address space) rather than fall back to a
                                   canary when no guard page is left */
/* Compact mode, for very many small generators. Only the 64 compact
 * generators of a thread that were resumed last keep the pages of their
 * stacks; when another one runs, the oldest suspended one is swapped out:
 * the used part of its stack is copied to a buffer of exactly that size
 * and its pages are given back, to be copied back in before it runs again.
 * A suspended shallow generator then costs about 0.4 KiB (its handle and
 * its used stack bytes) instead of a page. Semantics are the same; what
 * changes: while a compact generator is suspended, no other code may use
 * pointers into its stack (its locals), and swapping costs a copy and a
 * page fault. Its stack defaults to 32 KiB and keeps its guard page.
 * Ignored by the ucontext fallback build. */
#define CG_OPT_COMPACT 2u
/* A private floating-point environment. By default a generator shares its
 * thread's, as a Python generator runs in its thread's state: a switch
 * neither saves nor loads the floating-point control state, so a body that
 * changes the rounding mode (fesetround), flush-to-zero or the exception
 * masks changes them for the thread, as any function it called would, and
 * sees the changes its resumer makes; exception flags raised on either side
 * are seen by both. With this flag the generator keeps its own control
 * state: x86-64, MXCSR (with its exception flags) and the x87 control word;
 * AArch64, FPCR; other architectures, the whole fenv_t. It is saved when
 * the body switches back to whoever resumed it, and loaded (only if it
 * differs from the resumer's) when the generator is resumed, around its own
 * switches only; the resumer gets its own back. Its first run starts with
 * its first resumer's environment, as a called function would. A
 * subgenerator it delegates to (cg_yield_from) is resumed by the chain's
 * resumer, not by it: without the flag, a subgenerator runs in that
 * resumer's environment. The cost: two reads of the control state per
 * resume (slow instructions on some CPUs) and the C path instead of the
 * assembly fast paths. The ucontext fallback build behaves the same in
 * both modes (its swapcontext would restore each side's environment, so its
 * switch copies the switching side's across, to share it). */
#define CG_OPT_FPENV 4u

/* How many compact generators of the calling thread keep their stack pages
 * (64 by default, or COGEN_COMPACT's N). A swap costs a page fault and a
 * madvise call, microseconds where a resume costs nanoseconds: a program
 * that keeps resuming W compact generators in turn wants a limit of at
 * least W, and pays about 4 KiB per resident generator for it. A limit of
 * `limit` (>= 1) takes effect at once (the excess is swapped out); 0 only
 * asks. Returns the limit as it was. Running generators are never swapped
 * out, so more than `limit` can be resident while they run. */
CG_API unsigned cg_compact_resident(unsigned limit);

/* Makes a generator that will run fn(g, arg); no line of it runs yet
 * (GEN_CREATED). Its stack comes from the calling thread's pool. Returns
 * NULL with errno EINVAL (fn NULL, stack_size too large) or ENOMEM (no
 * memory or no address space), or EAGAIN (CG_OPT_REQUIRE_GUARD could not be
 * met). The generator belongs to the calling thread: resuming it from
 * another thread raises RuntimeError. Free it with cg_free. */
CG_API cg_gen *cg_new(cg_fn fn, void *arg, const cg_opts *opts);

/* Resume the generator, Python's next(g) and g.send(value).
 *
 * out (may be NULL) receives the yielded or returned value; exc (may be
 * NULL, then the exception is discarded) receives a new reference to the
 * exception when the result is CG_RAISED, and is set to NULL otherwise.
 * By state:
 *   CREATED:   starts the body; a non-NULL value raises TypeError("can't
 *              send non-None value to a just-started generator") and
 *              leaves it CREATED;
 *   SUSPENDED: resumes it; cg_yield returns value there;
 *   RUNNING:   ValueError('generator already executing'), nothing changes;
 *   CLOSED:    CG_RETURNED with NULL (a bare StopIteration), every time.
 * A StopIteration escaping the body becomes RuntimeError('generator raised
 * StopIteration') with it as __cause__ (PEP 479). g NULL: TypeError. */
CG_API cg_status cg_send(cg_gen *g, void *value, void **out, cg_exc **exc);
CG_API cg_status cg_next(cg_gen *g, void **out, cg_exc **exc);

/* g.throw(e): raises e inside the generator at its cg_yield; consumes the
 * caller's reference to e (to throw the borrowed e of a CG_EXCEPT block,
 * pass cg_exc_ref(e)). Outcomes: not caught, e comes back (CG_RAISED,
 * generator closed); caught and yields (CG_YIELDED); caught and returns
 * (CG_RETURNED, closed); caught and raises another (CG_RAISED, closed,
 * the new one chained to e). While delegating (cg_yield_from) the throw
 * goes to the subgenerator first; GeneratorExit closes it instead.
 * CREATED: e is raised before the first line (nothing can catch it) and the
 * generator is closed. CLOSED: e is handed back as it is. RUNNING:
 * ValueError('generator already executing'). e NULL: TypeError('exceptions
 * must be classes or instances deriving from BaseException, not NoneType'),
 * generator untouched. */
CG_API cg_status cg_throw(cg_gen *g, cg_exc *e, void **out, cg_exc **exc);

/* g.close(): raises GeneratorExit at the cg_yield (made, as CPython's close()
 * makes it, in the caller's context: its __context__ is the exception the
 * caller is handling, if any). Returns CG_RETURNED when
 * the generator let GeneratorExit through or returned (*retval is its return
 * value, as in Python 3.13, else NULL); CG_RAISED when it raised something
 * else. If it yields instead, the result is RuntimeError('generator ignored
 * GeneratorExit') and the generator stays SUSPENDED at that yield. CREATED
 * and CLOSED generators close at once, running nothing. RUNNING:
 * ValueError('generator already executing'). Never CG_YIELDED. */
CG_API cg_status cg_close(cg_gen *g, void **retval, cg_exc **exc);

/* inspect.getgeneratorstate(g). NULL reads as CG_GEN_CLOSED. */
CG_API cg_state cg_gen_state(const cg_gen *g);

/* Drops the generator, like dropping Python's last reference: a suspended
 * generator is closed first (GeneratorExit at its yield, cleanups run), and
 * what that close raises goes to the unraisable hook (cg_set_unraisable_hook);
 * a generator that refuses to close (yields again) has its stack discarded
 * without running its remaining cleanups. A generator that another
 * generator is delegating to is freed as soon as the delegation ends. A
 * running generator (called from its own body, or from a body it resumed)
 * is not freed: RuntimeError is raised at the call, since its resumer is
 * waiting for it. NULL is ignored.
 *
 * cg_free is final: a handle used after it (freed twice, resumed, read) is
 * a use after free, as with free(3). cogen reports it with a fatal error
 * while the freed handle is not yet reused by cg_new; with the environment
 * variable COGEN_DEBUG_HANDLES=1 (or the build option COGEN_DEBUG_HANDLES),
 * freed handles are never reused, so every later use is reported, and in
 * AddressSanitizer builds it is reported by ASan at the faulting access.
 * That mode keeps each freed handle allocated: it is for debugging.
 *
 * Any thread may free a generator. From a thread other than its owner the
 * free is handed to the owner, which finalizes it (its cleanups run there)
 * at its next cg_new, cg_free or cg_trim, or when it ends. A generator
 * whose owner thread has ended can no longer be resumed (RuntimeError) and
 * is finalized at once by the thread that frees it. */
CG_API void cg_free(cg_gen *g);

/* Introspection. */
CG_API const char *cg_gen_name(const cg_gen *g);       /* opts.name or "generator" */
CG_API cg_gen *cg_gen_yieldfrom(const cg_gen *g);      /* gi_yieldfrom, borrowed */
CG_API size_t cg_gen_stack_size(const cg_gen *g);      /* usable bytes (as made,
                                                           also once closed) */
CG_API cg_guard cg_gen_guard(const cg_gen *g);
CG_API int cg_gen_compact(const cg_gen *g);           /* made with CG_OPT_COMPACT */
CG_API int cg_gen_fpenv(const cg_gen *g);             /* made with CG_OPT_FPENV */
CG_API void *cg_gen_arg(const cg_gen *g);

/* ======================================================================
 * 4. Generators: the body side
 * ====================================================================== */

/* Yield value to whoever resumed g and suspend; returns the value sent in
 * (NULL for cg_next). g must be the generator running this code. When the
 * caller throws (or closes), the exception is raised right here, on the
 * generator's own stack, and unwinds the body like any raise. Calling it
 * for a generator that is not the one running: RuntimeError. */
CG_API void *cg_yield(cg_gen *g, void *value);

/* Non-unwinding yield, for code that must not be longjmp'd over (foreign
 * frames on the stack): returns NULL and stores the sent value in *sent
 * (may be NULL), or returns the exception thrown in (a new reference the
 * body now owns: re-raise it, or handle it and go on; GeneratorExit should
 * end the body). It never unwinds, not even when misused: called for a
 * generator that is not the one running (or NULL), it yields nothing and
 * returns RuntimeError('cg_yield_catch() called outside the body of its
 * generator'), with *sent = NULL. */
CG_API cg_exc *cg_yield_catch(cg_gen *g, void *value, void **sent);

/* `return (yield from sub)`: runs sub to completion, passing its yields to
 * g's caller and the caller's send/throw/close to sub, and returns sub's
 * return value. An exception from sub is raised here. g borrows sub, which
 * must outlive the call. sub running (or sub == g): ValueError('generator
 * already executing') raised here; sub closed: returns NULL at once; sub
 * NULL: TypeError. */
CG_API void *cg_yield_from(cg_gen *g, cg_gen *sub);

/* `yield from fn(arg)`: like cg_yield_from on a new generator made with
 * cg_new(fn, arg, opts), which is freed as soon as the delegation ends,
 * however it ends (as Python drops the subgenerator). If it cannot be made,
 * raised here: fn NULL, TypeError("'NoneType' object is not iterable") as
 * for cg_yield_from(g, NULL); out of memory, MemoryError; other refused
 * options (stack_size too large, CG_OPT_REQUIRE_GUARD not met),
 * ValueError('cannot make the subgenerator (<strerror(errno)>)'). */
CG_API void *cg_yield_from_new(cg_gen *g, cg_fn fn, void *arg, const cg_opts *opts);

/* The generator running on this thread right now (the innermost), or NULL
 * on the thread's own stack. */
CG_API cg_gen *cg_current(void);

/* ======================================================================
 * 5. Iteration
 *
 *   CG_FOREACH(v, g) { use(v); }
 *
 * runs g to exhaustion like Python's `for v in g`: a return ends the loop
 * (its value is discarded), an exception is raised in the loop's context.
 * `break` leaves g suspended.
 * ====================================================================== */

/* One step of iteration: returns 1 and sets *out when g yielded, 0 when it
 * returned or was exhausted; raises what g raised. */
CG_API int cg_iter_next(cg_gen *g, void **out);
#define CG_FOREACH(var, g) \
    for (void *var = NULL; cg_iter_next((g), &var);)

/* ======================================================================
 * 6. Configuration
 * ====================================================================== */

/* Where cogen gets its memory (exceptions, generator handles). Defaults to
 * malloc/free. alloc returning NULL is handled as out of memory. Set it
 * before anything is allocated, or restore the same functions before the
 * allocations made with them are freed. NULL functions restore the
 * defaults. Call it while no other thread is inside cogen; memory that
 * threads keep cached for reuse (freed handles and exceptions) goes back to
 * the allocator it came from: the calling thread's at once, another
 * thread's at its next use of cogen or when it ends. */
CG_API void cg_set_allocator(void *(*alloc)(size_t size, void *ud),
                             void (*dealloc)(void *p, void *ud), void *ud);

/* What finalization does with an exception it cannot raise anywhere
 * (cg_free of a generator whose close raised): Python's sys.unraisablehook.
 * The hook gets a borrowed exception and the generator being freed. The
 * default prints "Exception ignored in: generator 'name'" and the exception
 * to stderr. NULL restores the default. Per process. What the hook raises
 * does not leave cg_free: as Python does with an error in the hook, it is
 * printed to stderr ("Exception ignored in the unraisable hook ...") and
 * the generator is freed all the same. */
typedef void (*cg_unraisable_hook)(cg_exc *e, cg_gen *g, void *ud);
CG_API void cg_set_unraisable_hook(cg_unraisable_hook hook, void *ud);

/* Two environment variables, read once, for testing on any machine what
 * some machines do:
 *   COGEN_COMPACT=N          every generator is compact (CG_OPT_COMPACT),
 *                            with at most N resident per thread (N=1 swaps
 *                            at almost every switch);
 *   COGEN_STACK_GUARD=mprotect or =canary
 *                            stacks get the protection of a kernel without
 *                            MADV_GUARD_INSTALL, or of one whose mapping
 *                            limit is reached (see cg_guard).
 * make check runs the whole suite both ways (docs/tools.md). */

/* Stack accounting, per process. */
typedef struct cg_stack_stats {
    size_t live;          /* stacks in use by generators */
    size_t pooled;        /* stacks kept for reuse */
    size_t guard_pages;   /* live stacks with a guard page */
    size_t canaries;      /* live stacks with a canary only */
    size_t mappings;      /* memory mappings cogen holds for stacks */
} cg_stack_stats;
CG_API void cg_get_stack_stats(cg_stack_stats *st);

/* Gives the calling thread's pooled stacks and spare generator handles
 * back to the system, and finalizes the generators that other threads
 * freed for it (cg_free). */
CG_API void cg_trim(void);

/* The trace recorder. Records, on every thread, every resume of a plain
 * generator made while it is on (cg_send, cg_next, cg_throw, cg_close and
 * the resumes of a yield from's subgenerator: the generator's name, as
 * given in cg_opts.name, else "generator"; its thread; start and end; how
 * it was resumed, "send", "throw" or "close"; how that resume ended,
 * "yielded", "returned", "raised", "closed" or "delegated" to a
 * subgenerator), every task step of the event loop (cogen_loop.h), and
 * the spans marked with cg_trace_begin/cg_trace_end, as Chrome
 * trace-event JSON in path: Perfetto and chrome://tracing open it, one
 * track per thread. Every event is a complete event ("X"), so that one
 * resumed inside another (a generator in a task step, a generator that
 * drives another) is drawn nested inside it. tools/cogen-trace.py prints
 * a trace as `task1 --> task2 --> task1` and `gen1 --> gen2 --> gen1`
 * and draws an SVG (docs/debugging.md).
 *
 * The environment variable COGEN_TRACE=FILE starts it when the library is
 * loaded (or, if set later, when the process makes its first loop).
 * Off, it costs nothing on cg_send, cg_next and cg_yield: a generator made
 * while it is off is never traced, even once a trace starts, and one made
 * while it is on is resumed through the slower C path (its resumes are
 * recorded only while a trace runs). cg_new costs one more test.
 * cg_trace_start: 0, or -1 with errno (a trace already running is stopped
 * first). cg_trace_stop writes the file out (also done at exit); call it
 * when the traced threads are done or between their steps. Spans nest up
 * to 8 deep per thread; a span longer than the buffer's time is written
 * when it ends. Names are cut to 45 bytes. */
CG_API int cg_trace_start(const char *path);
CG_API void cg_trace_stop(void);
CG_API int cg_trace_active(void);
CG_API void cg_trace_begin(const char *name);
CG_API void cg_trace_end(void);

/* ======================================================================
 * 7. Internals the macros above need. Not API: names and layout change.
 * ====================================================================== */

#define CG__CAT2(a, b) a##b
#define CG__CAT(a, b) CG__CAT2(a, b)
#if defined(__GNUC__) || defined(__clang__)
#define CG__CLEANUP(fn) __attribute__((cleanup(fn)))
#else
#error "cogen needs GCC or Clang (the cleanup attribute)"
#endif

typedef struct cg__rec {
    struct cg__rec *next; /* older record in the same stack */
    int kind;             /* CG__REC_* */
} cg__rec;

enum { CG__REC_TRY = 1, CG__REC_DEFER = 2, CG__REC_HANDLED = 3 };

/* Where control is in a try statement (src/core/exc.c). */
enum {
    CG__TRY_BODY = 0, /* running the try body: a raise lands here */
    CG__TRY_CAUGHT,   /* landed; the except clauses are being matched */
    CG__TRY_HANDLING, /* an except clause runs: its exception is being
                         handled, and a raise lands here again so that
                         finally runs */
    CG__TRY_PENDING,  /* a handler raised: skip the clauses, run finally */
    CG__TRY_FINALLY,  /* the finally block runs; exc, if any, is pending */
    CG__TRY_DONE      /* the record is off the chain */
};

typedef struct cg__try {
    cg__rec rec;
    int phase;   /* CG__TRY_*: where control is in the try statement */
    cg_exc *exc; /* caught, handled or pending exception (owned) */
    jmp_buf jb;  /* where a raise lands */
} cg__try;

typedef struct cg__defer {
    cg__rec rec;
    void (*fn)(void *);
    void *arg;
} cg__defer;

/* CG_TRY's start: the record goes on the running context's chain, then a
 * setjmp. On x86-64 and AArch64, one call (cg__try_enter) does both with
 * the library's setjmp: a lean one written for the ABI, or libc's in builds
 * with sanitizers (whose interceptors must see it); longjmp must match it,
 * so the choice is the library's, not the caller's. */
#if defined(__x86_64__) || defined(__aarch64__)
CG_API int cg__try_enter(cg__try *t) __attribute__((returns_twice));
#define CG__TRY_ENTER(t) if (cg__try_enter(t) == 0)
#else
#define CG__TRY_ENTER(t)                                            \
        cg__try_push(t);                                            \
        if (setjmp((t)->jb) == 0)
#endif

/* A CG_TRY's record gets a name of its own (__COUNTER__); its clauses reach
 * it through cg__try_here, a constant pointer that every CG_TRY declares:
 * the innermost one in scope is the clause's own. A nested CG_TRY's
 * cg__try_here is meant to hide the outer one, so -Wshadow is off for that
 * declaration alone (user code builds clean with -Wshadow, in C and C++).
 * It is set before the setjmp and never changes: a longjmp cannot make it
 * indeterminate. */
#define CG__TRY(rec)                                                \
    {                                                               \
        CG__CLEANUP(cg__try_leave) cg__try rec;                     \
        CG__NO_SHADOW_BEGIN                                         \
        cg__try *const cg__try_here = &rec;                         \
        CG__NO_SHADOW_END                                           \
        CG__TRY_ENTER(&rec) {
#define CG__NO_SHADOW_BEGIN                                         \
    _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wshadow\"")
#define CG__NO_SHADOW_END _Pragma("GCC diagnostic pop")
#define CG__DEFER(rec, fn, arg)                                     \
    CG__CLEANUP(cg__defer_exit) cg__defer rec = {{0, 0}, (fn), (arg)}; \
    cg__defer_push(&rec)

CG_API void cg__try_push(cg__try *t);
CG_API int cg__try_match(cg__try *t, const cg_exc_type *type);
CG_API void cg__try_finally(cg__try *t);
CG_API void cg__try_end(cg__try *t);
CG_API void cg__try_cleanup(cg__try *t);
/* At the end of a CG_TRY's scope: nothing to do unless the block was left
 * by return, break or goto (CG_END marks the record done). */
static inline void cg__try_leave(cg__try *t) {
    if (t->phase != CG__TRY_DONE) cg__try_cleanup(t);
}
CG_API void cg__defer_push(cg__defer *d);
CG_API void cg__defer_exit(cg__defer *d);

/* Build check: a translation unit compiled with AddressSanitizer or
 * ThreadSanitizer tells the library so, once, before main; the library
 * warns on stderr when it was not built with the same sanitizer (its stack
 * switches and CG_TRY's longjmp would then be hidden from it). */
#define CG__BUILD_ASAN 1u
#define CG__BUILD_TSAN 2u
CG_API void cg__check_build(unsigned flags);
#if defined(__SANITIZE_ADDRESS__)
#define CG__TU_ASAN CG__BUILD_ASAN
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CG__TU_ASAN CG__BUILD_ASAN
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define CG__TU_TSAN CG__BUILD_TSAN
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CG__TU_TSAN CG__BUILD_TSAN
#endif
#endif
#ifndef CG__TU_ASAN
#define CG__TU_ASAN 0u
#endif
#ifndef CG__TU_TSAN
#define CG__TU_TSAN 0u
#endif
#if (CG__TU_ASAN || CG__TU_TSAN) && !defined(COGEN_BUILDING)
__attribute__((constructor, unused)) static void cg__check_build_here(void) {
    cg__check_build(CG__TU_ASAN | CG__TU_TSAN);
}
#endif

#ifdef __cplusplus
}
#endif
#endif /* COGEN_H */
