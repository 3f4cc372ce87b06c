/* dns.c: loop.getaddrinfo / getnameinfo on the DNS workers: a pool of
 * its own (CG__DNS_WORKERS threads at most, for every loop of the
 * process), so that slow lookups never hold up the executors' work. A
 * numeric host with a numeric port needs no lookup: it is answered on the
 * loop's thread (asyncio's _ipaddr_info does the same for connections). */
#define _GNU_SOURCE
#include "io/pool.h"
#include "cogen_io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CG__DNS_WORKERS 4 /* libuv's thread pool size */

typedef struct dns_job {
    cg__job job;                 /* first */
    /* getaddrinfo */
    char *host, *port;           /* copies, or NULL */
    struct addrinfo hints;
    int has_hints;
    struct addrinfo *res;
    /* getnameinfo */
    struct sockaddr_storage sa;
    socklen_t salen;
    int flags;
    size_t hostlen, servlen;     /* asked for (0: not wanted) */
    char h[NI_MAXHOST], s[NI_MAXSERV];
    /* the answer */
    int rc, err;                 /* EAI_*, and errno for EAI_SYSTEM */
} dns_job;

static cg__pool *dns_pool;
static pthread_once_t dns_once = PTHREAD_ONCE_INIT;

/* At exit, idle DNS workers end, and are waited for (a lookup still
 * running keeps its worker: it is left to the process's end). */
static void dns_atexit(void) {
    if (dns_pool) cg__pool_release_idle(dns_pool);
}

static void dns_init(void) {
    dns_pool = cg__pool_new(CG__DNS_WORKERS);
    if (dns_pool) atexit(dns_atexit);
}

/* socket.gaierror(rc, gai_strerror(rc)), or the OSError of errno for
 * EAI_SYSTEM, as Python's set_gaierror makes them. */
static cg_exc *gai_exc(int rc, int err) {
    if (rc == EAI_SYSTEM) return cg_oserror_new(err);
    char msg[160];
    snprintf(msg, sizeof msg, "[Errno %d] %s", rc, gai_strerror(rc));
    return cg_oserror_new_msg(&cg_gaierror, rc, msg);
}

static void gai_work(cg__job *j) {
    dns_job *d = (dns_job *)j;
    errno = 0;
    d->rc = getaddrinfo(d->host, d->port, d->has_hints ? &d->hints : NULL, &d->res);
    d->err = errno;
}

static void gni_work(cg__job *j) {
    dns_job *d = (dns_job *)j;
    errno = 0;
    d->rc = getnameinfo((struct sockaddr *)&d->sa, d->salen, d->hostlen ? d->h : NULL,
                        (socklen_t)d->hostlen, d->servlen ? d->s : NULL, (socklen_t)d->servlen, d->flags);
    d->err = errno;
}

/* The outcome stays in the job for the caller, which holds a reference. */
static void dns_deliver(cg__job *j, cg_future *f) {
    dns_job *d = (dns_job *)j;
    if (d->rc)
        cg_future_set_exception(f, gai_exc(d->rc, d->err));
    else
        cg_future_set_result(f, NULL);
}

static void dns_fini(cg__job *j) {
    dns_job *d = (dns_job *)j;
    if (d->res) freeaddrinfo(d->res);
    cg__dealloc_with(j->mem, d->host);
    cg__dealloc_with(j->mem, d->port);
    cg__job_dealloc(j);
}

static dns_job *dns_job_new(void (*work)(cg__job *)) {
    return cg__job_new(sizeof(dns_job), work, dns_deliver, dns_fini, 2); /* the link's and the caller's */
}

/* Sends d to the DNS workers and waits for it; raises what the lookup
 * raised (or CancelledError), d released then. */
static void dns_run(dns_job *d) {
    pthread_once(&dns_once, dns_init);
    cg_exc *e = NULL;
    cg_future *f = NULL;
    if (!dns_pool) {
        cg__job_release(&d->job);
        e = cg_exc_new(&cg_MemoryError, NULL);
    } else {
        f = cg__job_start(NULL, dns_pool, &d->job, &e);
    }
    if (f) {
        e = cg__await_catch(f); /* cancelled: the future is, the job dropped when it ends */
        cg_future_unref(f);
    }
    if (e) {
        cg__job_release(&d->job);
        cg_raise(e);
    }
}

static char *dup_or_null(const char *s, int *failed) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *c = cg__alloc(n); /* (the job's allocator: it is the one in force) */
    if (c)
        memcpy(c, s, n);
    else
        *failed = 1;
    return c;
}

struct addrinfo *cg_getaddrinfo(const char *host, const char *port, const struct addrinfo *hints) {
    cg__check_in_task("cg_getaddrinfo");
    /* numeric host and port: no lookup, no worker */
    struct addrinfo h = {0}, *res = NULL;
    if (hints) h = *hints;
    h.ai_flags |= AI_NUMERICHOST | AI_NUMERICSERV;
    if (getaddrinfo(host, port, &h, &res) == 0) return res;
    dns_job *d = dns_job_new(gai_work);
    int failed = 0;
    d->host = dup_or_null(host, &failed);
    d->port = dup_or_null(port, &failed);
    if (hints) {
        d->hints = *hints;
        d->hints.ai_addr = NULL; /* (getaddrinfo reads flags, family, socktype, protocol) */
        d->hints.ai_canonname = NULL;
        d->hints.ai_next = NULL;
        d->has_hints = 1;
    }
    if (failed) {
        dns_fini(&d->job);
        cg_raise(cg_exc_new(&cg_MemoryError, NULL));
    }
    dns_run(d);
    res = d->res;
    d->res = NULL;
    cg__job_release(&d->job);
    return res;
}

void cg_getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host, size_t hostlen, char *serv,
                    size_t servlen, int flags) {
    cg__check_in_task("cg_getnameinfo");
    if (!sa || salen > sizeof(struct sockaddr_storage)) cg_raise(gai_exc(EAI_FAMILY, 0));
    dns_job *d = dns_job_new(gni_work);
    memcpy(&d->sa, sa, salen);
    d->salen = salen;
    d->flags = flags;
    d->hostlen = host ? (hostlen < sizeof d->h ? hostlen : sizeof d->h) : 0;
    d->servlen = serv ? (servlen < sizeof d->s ? servlen : sizeof d->s) : 0;
    dns_run(d);
    if (d->hostlen) memcpy(host, d->h, strlen(d->h) + 1);
    if (d->servlen) memcpy(serv, d->s, strlen(d->s) + 1);
    cg__job_release(&d->job);
}
