/* fuzz_http.c: libFuzzer entry for http-hello's request parser
 * (examples/http_parse.h).
 *
 * Two kinds of input. Raw bytes are cut as readuntil("\r\n\r\n") cuts a
 * head (through the first empty line, one added when missing) and parsed:
 * whatever the answer, no read outside the head (ASan in `make fuzz`), and
 * an accepted head must hold what was reported (a method of token
 * characters at its start followed by a space, HTTP/1.d, keep-alive 0 or
 * 1), and each of its prefixes must read as incomplete (http_parse_prefix
 * asks for more: the server parses what it has read so far).
 * An input starting with 'S' instead builds a valid request from its bytes
 * (method, target, version, header order and case, optional whitespace,
 * Content-Length, Connection) and the parser must report exactly what was
 * built.
 *
 * Built with -DFUZZ_STANDALONE it is its own driver (ctest
 * fuzz.http_random): random inputs of both kinds from a seed.
 */
#define _GNU_SOURCE /* memmem, strcasestr */
#include "http_parse.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FAIL(...) (fprintf(stderr, "fuzz_http: " __VA_ARGS__), fputc('\n', stderr), abort())

/* Read in pieces, as the server reads: every part of an accepted head asks
 * for more (never refused early, never taken as whole), and bytes after it
 * (the next pipelined request) do not change where it ends. */
static void check_prefixes(const char *head, size_t len) {
    http_request part;
    for (size_t j = 0; j < len; j++)
        if (http_parse_prefix(head, j, &part) != 0) FAIL("prefix of %zu bytes of a %zu-byte head", j, len);
    char *more = malloc(len + 5);
    if (!more) return;
    memcpy(more, head, len);
    memcpy(more + len, "GET /", 5);
    if (http_parse_prefix(more, len + 5, &part) != (long)len) FAIL("a %zu-byte head followed by more", len);
    free(more);
}

static void check_raw(const uint8_t *d, size_t n) {
    size_t len = n;
    for (size_t i = 0; i + 4 <= n; i++)
        if (!memcmp(d + i, "\r\n\r\n", 4)) {
            len = i + 4;
            break;
        }
    int added = len == n && (n < 4 || memcmp(d + n - 4, "\r\n\r\n", 4));
    char *head = malloc(len + (added ? 4 : 0)); /* exactly the head: ASan sees any overrun */
    if (!head) return;
    memcpy(head, d, len);
    if (added) memcpy(head + len, "\r\n\r\n", 4), len += 4;
    http_request req;
    if (http_parse(head, len, &req) == 0) {
        if (req.method != head || req.method_len == 0 || req.method_len >= len || head[req.method_len] != ' ')
            FAIL("method");
        for (size_t i = 0; i < req.method_len; i++)
            if (!http_tchar((unsigned char)head[i])) FAIL("method byte %zu", i);
        if (req.minor < 0 || req.minor > 9) FAIL("minor %d", req.minor);
        if (req.keep_alive != 0 && req.keep_alive != 1) FAIL("keep_alive %d", req.keep_alive);
        if (!memmem(head, len, "HTTP/1.", 7)) FAIL("no version");
        check_prefixes(head, len);
    }
    free(head);
}

static size_t pick(const uint8_t *d, size_t n, size_t *i, size_t m) { return *i < n ? d[(*i)++] % m : 0; }

static void upper_some(char *s, size_t bits) {
    for (size_t k = 0; s[k]; k++)
        if ((bits >> (k % 16)) & 1 && s[k] >= 'a' && s[k] <= 'z') s[k] = (char)(s[k] - 'a' + 'A');
}

static void check_built(const uint8_t *d, size_t n) {
    static const char *methods[] = {"GET", "POST", "HEAD", "PUT", "X-Custom!"};
    static const char *targets[] = {"/", "/index.html", "*", "/a?b=c&d=%20", "http://h/p"};
    static const char *ows[] = {"", " ", "\t", "  \t"};
    size_t i = 0;
    char req[2048];
    size_t m = pick(d, n, &i, 5), minor = pick(d, n, &i, 2);
    int len = snprintf(req, sizeof req, "%s %s HTTP/1.%zu\r\n", methods[m], targets[pick(d, n, &i, 5)], minor);
    int want_keep;
    size_t want_length = 0;
    size_t nh = pick(d, n, &i, 6);
    int have_length = 0;
    for (size_t h = 0; h < nh; h++) {
        char name[32], value[64];
        switch (pick(d, n, &i, 4)) {
        case 0:
            if (have_length) continue;
            have_length = 1;
            want_length = pick(d, n, &i, 256) * 1000 + pick(d, n, &i, 256);
            snprintf(name, sizeof name, "content-length");
            snprintf(value, sizeof value, "%zu", want_length);
            break;
        case 1: {
            size_t c = pick(d, n, &i, 3);
            snprintf(name, sizeof name, "connection");
            snprintf(value, sizeof value, "%s", c == 0 ? "close" : c == 1 ? "keep-alive" : "Upgrade, close");
            break;
        }
        default:
            snprintf(name, sizeof name, "x-h%zu", h);
            snprintf(value, sizeof value, "v%zu: a,b", pick(d, n, &i, 100));
        }
        upper_some(name, pick(d, n, &i, 256) * 256 + pick(d, n, &i, 256));
        len += snprintf(req + len, sizeof req - (size_t)len, "%s:%s%s%s\r\n", name, ows[pick(d, n, &i, 4)], value,
                        ows[pick(d, n, &i, 4)]);
    }
    len += snprintf(req + len, sizeof req - (size_t)len, "\r\n");
    /* the headers as written: a close anywhere closes; keep-alive keeps
     * an HTTP/1.0 connection open */
    int saw_close = 0, saw_keep = 0;
    for (char *c = strstr(req, "\r\n"); c && c[2] != '\r'; c = strstr(c, "\r\n")) {
        c += 2;
        if (strncasecmp(c, "connection:", 11)) continue;
        char line[128];
        snprintf(line, sizeof line, "%.*s", (int)(strstr(c, "\r\n") - c), c);
        saw_close |= strcasestr(line, "close") != NULL;
        saw_keep |= strcasestr(line, "keep-alive") != NULL;
    }
    want_keep = !saw_close && (minor == 1 || saw_keep);
    http_request r;
    if (http_parse(req, (size_t)len, &r) != 0) FAIL("a valid request refused: %s", req);
    if (r.method_len != strlen(methods[m]) || memcmp(r.method, methods[m], r.method_len)) FAIL("method of %s", req);
    if (r.minor != (int)minor) FAIL("minor of %s", req);
    if (r.content_length != want_length) FAIL("length %zu of %s", r.content_length, req);
    if (r.keep_alive != want_keep) FAIL("keep_alive %d of %s", r.keep_alive, req);
    check_prefixes(req, (size_t)len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 0 && data[0] == 'S')
        check_built(data + 1, size - 1);
    else
        check_raw(data, size);
    return 0;
}

#ifdef FUZZ_STANDALONE
#include "io_driver.h"

/* Half built requests ('S' and random bytes), half raw heads made of
 * pieces of HTTP and random bytes. */
static size_t make_input(uint64_t *s, uint8_t *buf, size_t cap) {
    static const char pieces[][32] = {"GET ", "/ ", "HTTP/1.1\r\n", "HTTP/1.0\r\n", "Host: x\r\n", "\r\n", "Content-Length: ",
                                      "12", "Connection: close\r\n", ":", " ", "\t", "\n", "\r", "\x7f", "Transfer-Encoding: chunked\r\n"};
    if (cap > 700) cap = 700;
    size_t n = 0, parts = (size_t)(fuzz_next(s) >> 33) % 20;
    int built = (*s >> 20) & 1;
    if (built) buf[n++] = 'S';
    for (size_t k = 0; k < parts; k++) {
        uint64_t r = fuzz_next(s);
        if (built || (r >> 60) < 4) {
            for (int b = 0; b < 4 && n < cap; b++) buf[n++] = (uint8_t)(r >> (8 * b + 24));
        } else {
            const char *p = pieces[(r >> 40) % (sizeof pieces / sizeof pieces[0])];
            size_t l = strlen(p);
            if (n + l < cap) memcpy(buf + n, p, l), n += l;
        }
    }
    return n;
}
#endif
