/* http_parse.h: the request head parser of http-hello (and of its fuzz
 * target, tests/fuzz/fuzz_http.c): one HTTP/1.x request head, from the
 * request line to the empty line, already cut out of the stream by
 * readuntil("\r\n\r\n"). Only what the server needs: the method, the
 * version, Content-Length (the body is skipped) and whether the
 * connection stays open. */
#ifndef COGEN_EXAMPLE_HTTP_PARSE_H
#define COGEN_EXAMPLE_HTTP_PARSE_H

#include <stddef.h>
#include <string.h>

typedef struct http_request {
    const char *method;   /* into the head (not NUL-terminated) */
    size_t method_len;
    int minor;            /* HTTP/1.minor */
    size_t content_length;
    int keep_alive;       /* no "Connection: close", and HTTP/1.1 or "Connection: keep-alive" */
} http_request;

/* A token character (RFC 9110: ALPHA, DIGIT and "!#$%&'*+-.^_`|~"): bit c of
 * the two words below, one test per byte instead of a search of the list. */
static int http_tchar(unsigned char c) {
    static const unsigned long long bits[2] = {0x03ff6cfa00000000ull, 0x57ffffffc7fffffeull};
    return c < 128 && (bits[c >> 6] >> (c & 63) & 1);
}

/* Does a[0..n) equal the lower-case literal lit, ignoring ASCII case? (A
 * macro, so that the literal's length is known: most names differ there.) */
#define HTTP_IEQ(a, n, lit) http_ieq(a, n, lit, sizeof lit - 1)
static int http_ieq(const char *a, size_t n, const char *lit, size_t m) {
    if (n != m) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = a[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != lit[i]) return 0;
    }
    return 1;
}

/* Does the comma-separated value v (n bytes) list token tok (m bytes, lower case)? */
static int http_has_token(const char *v, size_t n, const char *tok, size_t m) {
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
        size_t s = i;
        while (i < n && v[i] != ',') i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t')) e--;
        if (e > s && http_ieq(v + s, e - s, tok, m)) return 1;
    }
    return 0;
}

/* Parses head[0..n) (ending with "\r\n\r\n"): 0 and *req, or -1 for a
 * request to answer 400 Bad Request. */
static int http_parse(const char *head, size_t n, http_request *req) {
    memset(req, 0, sizeof *req);
    if (n < 4 || memcmp(head + n - 4, "\r\n\r\n", 4) != 0) return -1;
    const char *end = head + n - 2; /* the final CRLF */
    const char *p = head;
    /* request line: method SP target SP HTTP/1.d CRLF */
    const char *m = p;
    while (p < end && http_tchar((unsigned char)*p)) p++;
    if (p == m || p >= end || *p != ' ') return -1;
    req->method = m;
    req->method_len = (size_t)(p - m);
    p++;
    const char *t = p;
    while (p < end && *p != ' ' && *p != '\r' && (unsigned char)*p > ' ') p++;
    if (p == t || p >= end || *p != ' ') return -1;
    p++;
    if (end - p < 10 || memcmp(p, "HTTP/1.", 7) != 0 || p[7] < '0' || p[7] > '9' || p[8] != '\r' || p[9] != '\n')
        return -1;
    req->minor = p[7] - '0';
    p += 10;
    if (memchr(p, 0, (size_t)(end - p))) return -1; /* a NUL in a field */
    int have_length = 0, close = 0, keep = 0;
    /* header fields: name ":" OWS value OWS CRLF */
    while (p < end) {
        const char *name = p;
        while (p < end && http_tchar((unsigned char)*p)) p++;
        if (p == name || p >= end || *p != ':') return -1;
        size_t name_len = (size_t)(p - name);
        p++;
        /* the line's CR (there is one: the head ends with CRLF CRLF), and
         * no bare LF before it: its first LF is the one after that CR (and
         * no NUL anywhere, checked once above) */
        const char *eol = memchr(p, '\r', (size_t)(end + 1 - p));
        if (!eol || eol >= end || memchr(p, '\n', (size_t)(eol + 2 - p)) != eol + 1) return -1;
        const char *v = p, *ve = eol;
        while (v < ve && (*v == ' ' || *v == '\t')) v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
        if (HTTP_IEQ(name, name_len, "content-length")) {
            if (v == ve || have_length) return -1;
            size_t len = 0;
            for (const char *d = v; d < ve; d++) {
                if (*d < '0' || *d > '9') return -1;
                if (len > ((size_t)-1 - 9) / 10) return -1;
                len = len * 10 + (size_t)(*d - '0');
            }
            req->content_length = len;
            have_length = 1;
        } else if (HTTP_IEQ(name, name_len, "transfer-encoding")) {
            return -1; /* chunked bodies: not for this server */
        } else if (HTTP_IEQ(name, name_len, "connection")) {
            close |= http_has_token(v, (size_t)(ve - v), "close", 5);
            keep |= http_has_token(v, (size_t)(ve - v), "keep-alive", 10);
        }
        p = eol + 2;
    }
    req->keep_alive = !close && (req->minor >= 1 || keep);
    return 0;
}

#endif
