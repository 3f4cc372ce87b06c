/* fuzz_stream.c: libFuzzer entry for the stream reader (readline,
 * readuntil, read, readexactly) against a model of what asyncio's
 * StreamReader may answer.
 *
 * The input is a program: the limit, a separator, then operations: feed
 * bytes (written to the other end of a socketpair), feed EOF, or call the
 * reader. The model is the byte stream fed so far and the position the
 * reader has consumed to. Each answer must be the stream's next bytes,
 * nothing lost, duplicated or reordered: a line up to its first separator
 * (and within the limit), read(n) 1..n bytes, readexactly n, an
 * IncompleteReadError's partial all that is left at EOF, a LimitOverrunError
 * only when the separator is not within the limit (with the data kept, its
 * consumed count true of the stream, and the message matching the case),
 * readline's ValueError dropping the line through its separator. A call the
 * model says would wait for data never fed is not made. After readline's
 * 'not found' ValueError the reader drops what it had buffered, which the
 * model cannot see: the program stops there.
 *
 * Built with -DFUZZ_STANDALONE it is its own driver: random programs from
 * a seed (ctest fuzz.stream_random).
 */
#define _GNU_SOURCE
#include "cogen_io.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define FAIL(...) (fprintf(stderr, "fuzz_stream: " __VA_ARGS__), fputc('\n', stderr), abort())

static const char alphabet[] = "ab\n-";

typedef struct prog {
    const uint8_t *d;
    size_t n, i;
    size_t limit;
    char sep[4];
    size_t seplen;
    char fed[4096]; /* the model: everything fed */
    size_t nfed, pos;
    int eof;
    int wfd;
    cg_stream_reader *r;
} prog;

static int next(prog *p) { return p->i < p->n ? p->d[p->i++] : -1; }

/* The first separator at or after from, or -1. */
static long find_sep(const prog *p, size_t from) {
    if (p->nfed < p->seplen) return -1;
    for (size_t k = from; k + p->seplen <= p->nfed; k++)
        if (!memcmp(p->fed + k, p->sep, p->seplen)) return (long)(k - p->pos);
    return -1;
}

typedef struct call {
    prog *p;
    int op;
    size_t n;
    const char *out;
    size_t len;
    char buf[64];
} call;

static void do_call(void *arg) {
    call *c = arg;
    switch (c->op) {
    case 1: c->len = cg_stream_read(c->p->r, c->buf, c->n); c->out = c->buf; break;
    case 2: cg_stream_readexactly(c->p->r, c->buf, c->n); c->len = c->n; c->out = c->buf; break;
    case 3: c->out = cg_stream_readline(c->p->r, &c->len); break;
    default: c->out = cg_stream_readuntil(c->p->r, c->p->sep, c->p->seplen, &c->len); break;
    }
}

static void expect_bytes(prog *p, const char *got, size_t len, const char *what) {
    if (p->pos + len > p->nfed) FAIL("%s: %zu bytes, only %zu left", what, len, p->nfed - p->pos);
    if (len && memcmp(got, p->fed + p->pos, len)) FAIL("%s: bytes differ from the stream at %zu", what, p->pos);
    p->pos += len;
}

/* Runs one reader call the model says will answer; 0 to go on, 1 to stop. */
static int check_call(prog *p, int op, size_t n) {
    size_t left = p->nfed - p->pos;
    int line = op == 3;
    const char *sep = line ? "\n" : p->sep;
    size_t seplen = line ? 1 : p->seplen;
    long isep = -1;
    if (op >= 3) {
        char save[4];
        memcpy(save, p->sep, 4);
        size_t savelen = p->seplen;
        memcpy(p->sep, sep, seplen), p->seplen = seplen;
        isep = find_sep(p, p->pos);
        memcpy(p->sep, save, 4), p->seplen = savelen;
        /* it waits when the separator is not there yet, the end has not
         * come and what is there is still within the limit */
        if (isep < 0 && !p->eof && !(left >= seplen && left + 1 - seplen > p->limit)) return 0;
    } else if (op == 1) {
        if (left == 0 && !p->eof) return 0;
    } else if (op == 2) {
        if (left < n && !p->eof) return 0;
    }
    call c = {p, op, n, NULL, 0, {0}};
    cg_exc *e = cg_try_catch(do_call, &c, &cg_Exception);
    if (!e) {
        switch (op) {
        case 1:
            if (n == 0 || (left == 0 && p->eof)) {
                if (c.len) FAIL("read(%zu): %zu bytes where none were due", n, c.len);
            } else if (c.len == 0 || c.len > n) {
                FAIL("read(%zu): %zu bytes with %zu left", n, c.len, left);
            }
            expect_bytes(p, c.out, c.len, "read");
            break;
        case 2: expect_bytes(p, c.out, c.len, "readexactly"); break;
        default:
            if (isep >= 0) {
                if (c.len != (size_t)isep + seplen) FAIL("%s: %zu bytes, separator at %ld", line ? "readline" : "readuntil", c.len, isep);
                if ((size_t)isep > p->limit) FAIL("a line of %ld past the limit %zu", isep, p->limit);
            } else if (!line || c.len != left || !p->eof) {
                FAIL("%s answered %zu bytes without a separator", line ? "readline" : "readuntil", c.len);
            }
            expect_bytes(p, c.out, c.len, line ? "readline" : "readuntil");
        }
        return 0;
    }
    const char *msg = cg_exc_msg(e) ? cg_exc_msg(e) : "";
    int stop = 0;
    if (cg_exc_is(e, &cg_IncompleteReadError)) {
        size_t plen;
        const char *partial = cg_incomplete_read_partial(e, &plen);
        if (!p->eof || plen != left) FAIL("IncompleteReadError with %zu bytes, %zu left, eof %d", plen, left, p->eof);
        if (op == 2 ? cg_incomplete_read_expected(e) != n : cg_incomplete_read_expected(e) != SIZE_MAX)
            FAIL("IncompleteReadError: expected %zu", cg_incomplete_read_expected(e));
        char want[100];
        if (op == 2)
            snprintf(want, sizeof want, "%zu bytes read on a total of %zu expected bytes", plen, n);
        else
            snprintf(want, sizeof want, "%zu bytes read on a total of undefined expected bytes", plen);
        if (strcmp(msg, want)) FAIL("IncompleteReadError('%s')", msg);
        expect_bytes(p, partial, plen, "partial");
    } else if (cg_exc_is(e, &cg_LimitOverrunError) || (line && cg_exc_is(e, &cg_ValueError))) {
        int found = !strcmp(msg, "Separator is found, but chunk is longer than limit");
        int not_found = !strcmp(msg, "Separator is not found, and chunk exceed the limit");
        if (!found && !not_found) FAIL("limit message '%s'", msg);
        if (found && (isep < 0 || (size_t)isep <= p->limit)) FAIL("'found, but longer' with the separator at %ld", isep);
        if (not_found && isep >= 0 && (size_t)isep <= p->limit) FAIL("'not found' with the separator at %ld", isep);
        if (!line) {
            size_t consumed = cg_limit_overrun_consumed(e);
            if (consumed <= p->limit) FAIL("consumed %zu within the limit", consumed);
            if (found && consumed != (size_t)isep) FAIL("consumed %zu, separator at %ld", consumed, isep);
            if (not_found && isep >= 0 && (size_t)isep < consumed) FAIL("consumed %zu past the separator at %ld", consumed, isep);
            /* the data stays: nothing consumed */
        } else if (found) {
            p->pos += (size_t)isep + 1; /* dropped through the separator */
        } else {
            stop = 1; /* the buffer dropped: how much, the model cannot tell */
        }
    } else {
        char rep[200];
        cg_exc_repr(e, rep, sizeof rep);
        FAIL("unexpected %s", rep);
    }
    cg_exc_unref(e);
    return stop;
}

static void *run(cg_gen *g, void *arg) {
    (void)g;
    prog *p = arg;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) FAIL("socketpair");
    p->wfd = sv[1];
    cg_stream_opts o = {.limit = p->limit};
    cg_stream_open_fd(sv[0], &o, &p->r, NULL);
    int op;
    while ((op = next(p)) >= 0) {
        op %= 6;
        if (op == 0 || op == 5) {
            if (p->eof) continue;
            if (op == 5) {
                shutdown(p->wfd, SHUT_WR);
                p->eof = 1;
                continue;
            }
            int len = next(p);
            if (len < 0) break;
            len %= 64;
            char chunk[64];
            for (int k = 0; k < len; k++) {
                int b = next(p);
                chunk[k] = alphabet[(b < 0 ? 0 : b) % 4];
            }
            if (p->nfed + (size_t)len > sizeof p->fed) continue;
            if (write(p->wfd, chunk, (size_t)len) != len) FAIL("write");
            memcpy(p->fed + p->nfed, chunk, (size_t)len);
            p->nfed += (size_t)len;
            continue;
        }
        size_t n = 0;
        if (op == 1 || op == 2) {
            int b = next(p);
            n = (size_t)(b < 0 ? 1 : b % 20);
        }
        if (check_call(p, op, n)) break;
    }
    cg_stream_reader_free(p->r);
    close(p->wfd);
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static prog p;
    memset(&p, 0, sizeof p);
    p.d = data;
    p.n = size;
    int b = next(&p);
    p.limit = 1 + (size_t)(b < 0 ? 8 : b % 32);
    b = next(&p);
    p.seplen = 1 + (size_t)(b < 0 ? 0 : b % 3);
    for (size_t k = 0; k < p.seplen; k++) {
        b = next(&p);
        p.sep[k] = alphabet[(b < 0 ? 2 : b) % 4];
    }
    cg_exc *e = NULL;
    if (cg_run(run, &p, NULL, NULL, &e) != CG_RETURNED) {
        cg_exc_print(e, stderr);
        FAIL("the run raised");
    }
    return 0;
}

#ifdef FUZZ_STANDALONE
#include "io_driver.h"

/* A random program: random bytes, up to 600. */
static size_t make_input(uint64_t *s, uint8_t *buf, size_t cap) {
    size_t n = (size_t)(fuzz_next(s) >> 33) % (cap < 600 ? cap : 600);
    for (size_t k = 0; k < n; k++) buf[k] = (uint8_t)(fuzz_next(s) >> 56);
    return n;
}
#endif
