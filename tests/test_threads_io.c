/* test_threads_io.c: work sent off the loop: the DNS workers
 * (cg_getaddrinfo, cg_getnameinfo), the executors (cg_to_thread,
 * cg_loop_run_in_executor, executors of one's own) and the calls between a
 * loop and other threads (run_coroutine_threadsafe, wrap_future).
 *
 * Expected values are Python's, checked on CPython 3.13 by hand:
 * socket.getaddrinfo('nonexistent.invalid', 80) raises gaierror(-2, 'Name
 * or service not known'), str '[Errno -2] Name or service not known' (or
 * EAI_AGAIN's '[Errno -3] Temporary failure in name resolution' on a
 * machine whose resolver cannot be reached); socket.getnameinfo(
 * ('127.0.0.1', 80), 0) is ('localhost', 'http') and with NI_NUMERICHOST |
 * NI_NUMERICSERV ('127.0.0.1', '80'); an EAI_SYSTEM failure is the OSError
 * of errno (OSError(24, 'Too many open files')).
 *
 * The test interposes getaddrinfo (the executable's definition comes
 * first) to make a lookup that blocks until the test lets it go
 * ("block.test.invalid") or fails with EAI_SYSTEM ("emfile.test.invalid"),
 * and to count the lookups that reach the resolver.
 */
#define _GNU_SOURCE
#include "cogen_io.h"
#include "check.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------------
 * The getaddrinfo shim, and gates
 * ------------------------------------------------------------------ */

typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open;
    int waiting; /* threads stopped at it */
} gate;

#define GATE_INIT {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0}

static void gate_pass(gate *g) {
    pthread_mutex_lock(&g->mu);
    g->waiting++;
    pthread_cond_broadcast(&g->cv);
    while (!g->open) pthread_cond_wait(&g->cv, &g->mu);
    g->waiting--;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static void gate_set(gate *g, int open) {
    pthread_mutex_lock(&g->mu);
    g->open = open;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static int gate_waiting(gate *g) {
    pthread_mutex_lock(&g->mu);
    int n = g->waiting;
    pthread_mutex_unlock(&g->mu);
    return n;
}

static gate dns_gate = GATE_INIT;
static int resolver_calls; /* lookups that were not numeric (atomic) */

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res) {
    static int (*real)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
    if (!real) *(void **)&real = dlsym(RTLD_NEXT, "getaddrinfo");
    if (hints && (hints->ai_flags & AI_NUMERICHOST)) return real(node, service, hints, res);
    __atomic_add_fetch(&resolver_calls, 1, __ATOMIC_RELAXED);
    if (node && strcmp(node, "block.test.invalid") == 0) {
        gate_pass(&dns_gate);
        node = "127.0.0.1";
    }
    if (node && strcmp(node, "emfile.test.invalid") == 0) {
        errno = EMFILE;
        return EAI_SYSTEM;
    }
    return real(node, service, hints, res);
}

static int count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    CHECK(d != NULL);
    int n = 0;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

static void run_main(cg_fn body, void *arg) {
    cg_exc *e = NULL;
    cg_status st = cg_run(body, arg, NULL, NULL, &e);
    if (st != CG_RETURNED) {
        cg_exc_print(e, stderr);
        CHECK(!"the run raised");
    }
}

/* A task that sleeps in real time until cond(arg) holds (a few seconds at
 * most), letting the loop run meanwhile. */
static void sleep_until(int (*cond)(void *), void *arg) {
    for (int i = 0; i < 5000 && !cond(arg); i++) cg_sleep(CG_MS(1));
    CHECK(cond(arg));
}

/* ---------------------------------------------------------------------
 * DNS
 * ------------------------------------------------------------------ */

static void *gai_localhost_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    struct addrinfo hints = {0};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    int calls = __atomic_load_n(&resolver_calls, __ATOMIC_RELAXED);
    struct addrinfo *res = cg_getaddrinfo("localhost", "80", &hints);
    CHECK(__atomic_load_n(&resolver_calls, __ATOMIC_RELAXED) > calls); /* it was looked up */
    CHECK(res != NULL);
    int found = 0;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        CHECK_EQ(a->ai_family, AF_INET);
        struct sockaddr_in *s = (struct sockaddr_in *)a->ai_addr;
        CHECK_EQ(ntohs(s->sin_port), 80);
        if (ntohl(s->sin_addr.s_addr) == INADDR_LOOPBACK) found = 1;
    }
    CHECK(found);
    freeaddrinfo(res);
    /* a numeric host and port: answered without a lookup */
    calls = __atomic_load_n(&resolver_calls, __ATOMIC_RELAXED);
    res = cg_getaddrinfo("127.0.0.1", "8080", &hints);
    CHECK_EQ(__atomic_load_n(&resolver_calls, __ATOMIC_RELAXED), calls);
    CHECK_EQ(ntohs(((struct sockaddr_in *)res->ai_addr)->sin_port), 8080);
    freeaddrinfo(res);
    return NULL;
}

TEST(dns_getaddrinfo_localhost) {
    int fds = count_fds();
    run_main(gai_localhost_main, NULL);
    CHECK_EQ(count_fds(), fds);
}

static void gai_invalid(void *arg) {
    struct addrinfo *res = cg_getaddrinfo(arg, "80", NULL);
    freeaddrinfo(res);
    CHECK(!"resolved");
}

static void *gai_error_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    cg_exc *e = cg_try_catch(gai_invalid, "nonexistent.invalid", &cg_OSError);
    CHECK_PTR(cg_exc_type_of(e), &cg_gaierror);
    CHECK(cg_exc_is(e, &cg_OSError));
    int err = cg_exc_errno(e);
    if (err == EAI_NONAME)
        CHECK_STR(cg_exc_msg(e), "[Errno -2] Name or service not known");
    else if (err == EAI_AGAIN)
        CHECK_STR(cg_exc_msg(e), "[Errno -3] Temporary failure in name resolution");
    else
        CHECK(!"gaierror, EAI_NONAME or EAI_AGAIN");
    cg_exc_unref(e);
    /* EAI_SYSTEM: the OSError of errno */
    e = cg_try_catch(gai_invalid, "emfile.test.invalid", &cg_OSError);
    CHECK_PTR(cg_exc_type_of(e), &cg_OSError);
    CHECK_EQ(cg_exc_errno(e), EMFILE);
    CHECK_STR(cg_exc_msg(e), "[Errno 24] Too many open files");
    cg_exc_unref(e);
    return NULL;
}

TEST(dns_getaddrinfo_error) { run_main(gai_error_main, NULL); }

static void *gni_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(80);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    cg_getnameinfo((struct sockaddr *)&sa, sizeof sa, host, sizeof host, serv, sizeof serv, 0);
    CHECK_STR(host, "localhost");
    CHECK_STR(serv, "http");
    cg_getnameinfo((struct sockaddr *)&sa, sizeof sa, host, sizeof host, serv, sizeof serv,
                   NI_NUMERICHOST | NI_NUMERICSERV);
    CHECK_STR(host, "127.0.0.1");
    CHECK_STR(serv, "80");
    return NULL;
}

TEST(dns_getnameinfo) { run_main(gni_main, NULL); }

/* Cancelled while its lookup runs: the task stops waiting at once; the
 * lookup finishes on its worker later and its result is freed there. */
static void *gai_blocked(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    struct addrinfo *res = cg_getaddrinfo("block.test.invalid", "80", NULL);
    freeaddrinfo(res);
    return "resolved";
}

static int one_blocked(void *arg) { return gate_waiting(arg) >= 1; }

static void join(void *t) { cg_await(cg_task_future(t)); }

static void *gai_cancel_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    cg_task *t = cg_create_task(gai_blocked, NULL, NULL);
    sleep_until(one_blocked, &dns_gate);
    cg_task_cancel(t, "enough");
    cg_exc *e = cg_try_catch(join, t, &cg_CancelledError);
    CHECK_EXC(e, "CancelledError('enough')");
    cg_exc_unref(e);
    cg_future_unref(cg_task_future(t));
    /* the lookup still runs; a second one completes once the gate opens */
    gate_set(&dns_gate, 1);
    struct addrinfo *res = cg_getaddrinfo("block.test.invalid", "80", NULL);
    CHECK(res != NULL);
    freeaddrinfo(res);
    gate_set(&dns_gate, 0);
    return NULL;
}

TEST(dns_cancel) { run_main(gai_cancel_main, NULL); }

static const check_case cases[] = {
    CASE(dns_getaddrinfo_localhost), CASE(dns_getaddrinfo_error), CASE(dns_getnameinfo), CASE(dns_cancel),
};

CHECK_MAIN(cases)
