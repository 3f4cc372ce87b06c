/* http_parse.h: the request head parser of http-hello (and of its fuzz
 * target, tests/fuzz/fuzz_http.c): one HTTP/1.x request head, from the
 * request line to the empty line, found at the start of what the server
 * has read (http_parse_prefix: the parse also finds where the head ends,
 * so the bytes are scanned once), or already cut out (http_parse). Only
 * what the server needs: the method, the version, Content-Length (the
 * body is skipped) and whether the connection stays open. */
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

/* A token character (RFC 9110: ALPHA, DIGIT and "!#$%&'*+-.^_`|~"): one
 * load per byte (bytes 128 and up are 0: the rest of the table). */
static const unsigned char http_tchars[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0,
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1, 0,
};
static int http_tchar(unsigned char c) { return http_tchars[c]; }

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

/* Parses the request head at the start of buf[0..n), in one pass that
 * also finds where it ends (its first empty line): the head's length and
 * *req; 0 when buf holds only part of a head (read more and call again);
 * -1 for a request to answer 400 Bad Request. */
static long http_parse_prefix(const char *buf, size_t n, http_request *req) {
    memset(req, 0, sizeof *req);
    const char *p = buf, *lim = buf + n;
    /* request line: method SP target SP HTTP/1.d CRLF */
    while (p < lim && http_tchar((unsigned char)*p)) p++;
    if (p == lim) return 0;
    if (p == buf || *p != ' ') return -1;
    req->method = buf;
    req->method_len = (size_t)(p - buf);
    const char *t = ++p;
    while (p < lim && *p != ' ' && (unsigned char)*p > ' ') p++;
    if (p == lim) return 0;
    if (p == t || *p != ' ') return -1;
    p++;
    if (lim - p < 10) return 0;
    if (memcmp(p, "HTTP/1.", 7) != 0 || p[7] < '0' || p[7] > '9' || p[8] != '\r' || p[9] != '\n') return -1;
    req->minor = p[7] - '0';
    p += 10;
    int have_length = 0, close = 0, keep = 0;
    /* header fields: name ":" OWS value OWS CRLF, up to an empty line */
    for (;;) {
        if (lim - p < 2) return 0;
        if (*p == '\r') {
            if (p[1] != '\n') return -1;
            break;
        }
        const char *name = p;
        while (p < lim && http_tchar((unsigned char)*p)) p++;
        if (p == lim) return 0;
        if (p == name || *p != ':') return -1;
        size_t name_len = (size_t)(p - name);
        p++;
        /* the line's CR, then its LF, and no bare LF or NUL before them */
        const char *eol = memchr(p, '\r', (size_t)(lim - p));
        if (!eol || lim - eol < 2) return 0;
        if (eol[1] != '\n' || memchr(p, '\n', (size_t)(eol - p)) || memchr(p, 0, (size_t)(eol - p))) return -1;
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
    return (long)(p + 2 - buf);
}

/* Parses head[0..n), one whole head (ending with its empty line "\r\n"):
 * 0 and *req, or -1 for a request to answer 400 Bad Request. */
static inline int http_parse(const char *head, size_t n, http_request *req) {
    return http_parse_prefix(head, n, req) == (long)n ? 0 : -1;
}

#endif
