/* loadgen.c: the load generator of the I/O benchmarks (bench_io_load).
 *
 *   bench_io_load freeport       prints a TCP port free on 127.0.0.1
 *   bench_io_load wait PORT      waits (10 s at most) until 127.0.0.1:PORT
 *                                accepts a connection
 *   bench_io_load echo PORT [-c CONNS] [-s SIZE] [-t SECONDS | -n MESSAGES]
 *                 [-w WARMUP_SECONDS] [-p SERVER_PID] [-S STRACE_OUT]
 *                 [-b BENCH] [-i IMPL]
 *
 * echo opens CONNS connections (default 100) to an echo server and keeps
 * one SIZE-byte message (default 64) in flight on each: when a message's
 * echo has come back whole and equal byte for byte to what was sent, the
 * next one goes out on that connection. Every message has different bytes
 * (a function of the connection and the message number), so a server that
 * sends back a stale or another connection's buffer is caught; any
 * difference, a connection closed or no progress for 10 s ends the run
 * with status 1 and says where.
 *
 * A run is two phases: a warm-up (WARMUP_SECONDS, default 0.5), then the
 * measured messages (for SECONDS, default 2, or exactly MESSAGES). Each
 * phase ends by sending no more and waiting for every echo in flight, so
 * that nothing crosses from one phase to the other: the measured messages
 * are exactly those sent and echoed between the two readings below, and
 * the server is idle at both.
 *
 * With -p, the server's CPU time (utime + stime of /proc/PID/stat, every
 * thread) is read before and after the measured messages, and the RESULT
 * value is the server's CPU per message in ns; without, it is the wall
 * time per message. With -S, strace -c -f is attached to the server for
 * the measured messages only (after the warm-up, so start-up, accepts and
 * warm-up are not counted) and the RESULT is bench=syscalls_per_msg, the
 * server's system calls per message. The load generator's own CPU time
 * in the measured phase is in the RESULT line too (client_cpu_s).
 */
#define _GNU_SOURCE
#include "io_common.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_SIZE 4096
#define STALL_NS 10e9

typedef struct lconn {
    int fd;
    uint32_t seq;                /* number of the message in flight on this connection */
    size_t got;                  /* bytes of its echo received so far */
    int busy;                    /* a message is in flight */
    unsigned char msg[MAX_SIZE]; /* the message in flight, what the echo must be */
} lconn;

typedef struct options {
    int port;
    long conns;
    size_t size;
    double seconds;  /* measured phase by time (when messages is 0) */
    long messages;   /* measured phase by count */
    double warmup;   /* seconds */
    long server_pid; /* 0: not measured */
    const char *strace_out;
    const char *bench;
    const char *impl;
} options;

static lconn *conns;
static long inflight;

static int connect_port(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) bench_die("socket: %s", strerror(errno));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Connects, retrying while the server is not listening yet (10 s). */
static int connect_retry(int port) {
    double t0 = bench_now_ns();
    for (;;) {
        int fd = connect_port(port);
        if (fd >= 0) return fd;
        if (errno != ECONNREFUSED || bench_now_ns() - t0 > 10e9)
            bench_die("connect to 127.0.0.1:%d: %s", port, strerror(errno));
        usleep(10000);
    }
}

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        bench_die("no free port: %s", strerror(errno));
    close(fd);
    return ntohs(a.sin_port);
}

/* The bytes of message seq on connection i: an LCG seeded by both. */
static void make_message(unsigned char *p, size_t size, long i, uint32_t seq) {
    uint32_t x = (uint32_t)i * 2654435761u ^ (seq * 40503u + 0x9e3779b9u);
    for (size_t k = 0; k < size; k++) {
        x = x * 1103515245u + 12345u;
        p[k] = (unsigned char)(x >> 24);
    }
}

static void send_message(long i, size_t size) {
    lconn *c = &conns[i];
    make_message(c->msg, size, i, c->seq);
    ssize_t w = write(c->fd, c->msg, size);
    /* One message in flight: the socket's send buffer is empty, it takes
     * SIZE bytes whole. */
    if (w != (ssize_t)size) bench_die("connection %ld: write returned %zd: %s", i, w, strerror(errno));
    c->busy = 1;
    inflight++;
}

/* Reads what connection i has; returns 1 when its echo is complete. */
static int receive(long i, size_t size) {
    lconn *c = &conns[i];
    unsigned char buf[MAX_SIZE];
    if (!c->busy) bench_die("connection %ld: %s while no message was in flight", i, "data arrived");
    ssize_t r = read(c->fd, buf, size - c->got);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
    if (r <= 0)
        bench_die("connection %ld: %s after %zu of %zu bytes of message %u", i,
                  r == 0 ? "closed by the server" : strerror(errno), c->got, size, c->seq);
    for (ssize_t k = 0; k < r; k++)
        if (buf[k] != c->msg[c->got + (size_t)k]) {
            fprintf(stderr, "bench-io: mismatch: connection %ld, message %u, byte %zu: sent 0x%02x, echoed 0x%02x\n",
                    i, c->seq, c->got + (size_t)k, c->msg[c->got + (size_t)k], buf[k]);
            exit(1);
        }
    c->got += (size_t)r;
    if (c->got < size) return 0;
    c->got = 0;
    c->busy = 0;
    c->seq++;
    inflight--;
    return 1;
}

/* One phase: messages on every connection until `seconds` have passed or
 * `count` have been sent (whichever is set), then every echo awaited.
 * Returns the number of messages echoed. */
static long run_phase(int ep, const options *o, double seconds, long count) {
    struct epoll_event evs[256];
    long sent = 0, done = 0;
    int sending = 1;
    double t0 = bench_now_ns(), last = t0;
    for (long i = 0; i < o->conns && (count == 0 || sent < count); i++, sent++) send_message(i, o->size);
    if (count && sent >= count) sending = 0;
    while (inflight > 0) {
        int n = epoll_wait(ep, evs, 256, 1000);
        if (n < 0 && errno != EINTR) bench_die("epoll_wait: %s", strerror(errno));
        double now = bench_now_ns();
        if (sending && count == 0 && now - t0 >= seconds * 1e9) sending = 0;
        if (n > 0) last = now;
        else if (now - last > STALL_NS) bench_die("no echo for 10 s (%ld messages in flight)", inflight);
        for (int k = 0; k < n; k++) {
            long i = (long)evs[k].data.u64;
            if (!receive(i, o->size)) continue;
            done++;
            if (!sending) continue;
            send_message(i, o->size);
            if (count && ++sent >= count) sending = 0;
        }
    }
    return done;
}

/* The server's utime + stime in clock ticks (every thread). */
static long long server_ticks(long pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) bench_die("%s: %s (is the server running?)", path, strerror(errno));
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long long ut = 0, st = 0;
    /* after ") ": state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        bench_die("%s: cannot read utime and stime", path);
    return (long long)(ut + st);
}

/* Whether every thread of pid is traced by tracer. */
static int all_traced(long pid, pid_t tracer) {
    char path[96], line[256];
    snprintf(path, sizeof path, "/proc/%ld/task", pid);
    DIR *d = opendir(path);
    if (!d) return 0;
    int all = 1;
    struct dirent *e;
    while (all && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "/proc/%ld/task/%.20s/status", pid, e->d_name);
        FILE *f = fopen(path, "r");
        long t = -1;
        while (f && fgets(line, sizeof line, f))
            if (strncmp(line, "TracerPid:", 10) == 0) t = strtol(line + 10, NULL, 10);
        if (f) fclose(f);
        if (t != tracer) all = 0;
    }
    closedir(d);
    return all;
}

static pid_t strace_start(const options *o) {
    char pid[32];
    snprintf(pid, sizeof pid, "%ld", o->server_pid);
    pid_t s = fork();
    if (s < 0) bench_die("fork: %s", strerror(errno));
    if (s == 0) {
        execlp("strace", "strace", "-c", "-f", "-q", "-o", o->strace_out, "-p", pid, (char *)NULL);
        fprintf(stderr, "bench-io: strace: %s\n", strerror(errno));
        _exit(127);
    }
    double t0 = bench_now_ns();
    while (!all_traced(o->server_pid, s)) {
        int st;
        if (waitpid(s, &st, WNOHANG) == s) bench_die("strace -p %s failed (status %d)", pid, st);
        if (bench_now_ns() - t0 > 10e9) bench_die("strace did not attach to every thread of %s in 10 s", pid);
        usleep(10000);
    }
    return s;
}

/* Stops strace and returns the calls it counted (the sum of its per-call
 * lines: "% time, seconds, usecs/call, calls, [errors,] syscall"). */
static long strace_stop(pid_t s, const char *out) {
    int st;
    kill(s, SIGINT);
    if (waitpid(s, &st, 0) != s) bench_die("waitpid strace: %s", strerror(errno));
    FILE *f = fopen(out, "r");
    if (!f) bench_die("%s: %s", out, strerror(errno));
    char line[512], name[128];
    long total = 0, lines = 0;
    while (fgets(line, sizeof line, f)) {
        double pct, secs;
        long usecs, calls;
        if (sscanf(line, "%lf %lf %ld %ld %*s", &pct, &secs, &usecs, &calls) != 4) continue;
        int k = sscanf(line, "%*f %*f %*d %*d %127s %127s", name, name);
        if (k >= 1 && strcmp(name, "total") != 0) total += calls, lines++;
    }
    fclose(f);
    if (lines == 0) bench_die("%s: no system call counted by strace", out);
    return total;
}

static double arg_number(const char *s, const char *what) {
    char *end = NULL;
    double v = strtod(s, &end);
    if (!end || end == s || *end || v < 0) bench_die("%s: not a number: '%s'", what, s);
    return v;
}

static void parse(int argc, char **argv, options *o) {
    *o = (options){.conns = 100, .size = 64, .seconds = 2, .warmup = 0.5, .bench = "echo", .impl = "server"};
    o->port = (int)arg_number(argv[2], "PORT");
    optind = 3;
    for (int ch; (ch = getopt(argc, argv, "c:s:t:n:w:p:S:b:i:")) != -1;) {
        switch (ch) {
        case 'c': o->conns = (long)arg_number(optarg, "-c"); break;
        case 's': o->size = (size_t)arg_number(optarg, "-s"); break;
        case 't': o->seconds = arg_number(optarg, "-t"); break;
        case 'n': o->messages = (long)arg_number(optarg, "-n"); break;
        case 'w': o->warmup = arg_number(optarg, "-w"); break;
        case 'p': o->server_pid = (long)arg_number(optarg, "-p"); break;
        case 'S': o->strace_out = optarg; break;
        case 'b': o->bench = optarg; break;
        case 'i': o->impl = optarg; break;
        default: bench_die("usage: see the comment at the top of bench/io/loadgen.c");
        }
    }
    if (o->conns < 1 || o->size < 1 || o->size > MAX_SIZE || o->port < 1 || o->port > 65535)
        bench_die("need 1 <= CONNS, 1 <= SIZE <= %d and a port", MAX_SIZE);
    if (o->strace_out && !o->server_pid) bench_die("-S needs -p SERVER_PID");
}

/* This process's CPU time (user + system), in seconds. */
static double self_cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void echo(const options *o) {
    io_raise_nofile();
    conns = calloc((size_t)o->conns, sizeof *conns);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (!conns || ep < 0) bench_die("out of memory or epoll_create1 failed");
    for (long i = 0; i < o->conns; i++) {
        int fd = i == 0 ? connect_retry(o->port) : connect_port(o->port);
        if (fd < 0) bench_die("connection %ld of %ld: %s", i + 1, o->conns, strerror(errno));
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        conns[i].fd = fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) bench_die("epoll_ctl: %s", strerror(errno));
    }
    long warm = run_phase(ep, o, o->warmup, 0);
    pid_t tracer = o->strace_out ? strace_start(o) : 0;
    long long ticks0 = o->server_pid ? server_ticks(o->server_pid) : 0;
    double t0 = bench_now_ns(), self0 = self_cpu_s();
    long done = run_phase(ep, o, o->seconds, o->messages);
    double wall = bench_now_ns() - t0, self = self_cpu_s() - self0;
    long long ticks1 = o->server_pid ? server_ticks(o->server_pid) : 0;
    long calls = tracer ? strace_stop(tracer, o->strace_out) : 0;
    for (long i = 0; i < o->conns; i++) close(conns[i].fd);
    close(ep);
    free(conns);
    if (done == 0) bench_die("no message echoed in the measured phase");

    char extra[256];
    long hz = sysconf(_SC_CLK_TCK);
    snprintf(extra, sizeof extra, "conns=%ld size=%zu wall_s=%.3f warmup_msgs=%ld client_cpu_s=%.3f", o->conns,
             o->size, wall / 1e9, warm, self);
    if (tracer) {
        snprintf(extra + strlen(extra), sizeof extra - strlen(extra), " syscalls=%ld", calls);
        bench_result("syscalls_per_msg", o->impl, (double)calls / (double)done, "count", done, extra);
    } else if (o->server_pid) {
        snprintf(extra + strlen(extra), sizeof extra - strlen(extra), " server_cpu_ticks=%lld clk_tck=%ld",
                 ticks1 - ticks0, hz);
        bench_result(o->bench, o->impl, (double)(ticks1 - ticks0) * 1e9 / (double)hz / (double)done, "ns", done,
                     extra);
    } else {
        bench_result(o->bench, o->impl, wall / (double)done, "ns", done, extra);
    }
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    if (argc == 2 && strcmp(argv[1], "freeport") == 0) {
        printf("%d\n", free_port());
    } else if (argc == 3 && strcmp(argv[1], "wait") == 0) {
        close(connect_retry((int)arg_number(argv[2], "PORT")));
    } else if (argc >= 3 && strcmp(argv[1], "echo") == 0) {
        options o;
        parse(argc, argv, &o);
        echo(&o);
    } else {
        fprintf(stderr, "usage: %s freeport | wait PORT | echo PORT [options] (see bench/io/loadgen.c)\n", argv[0]);
        return 2;
    }
    return 0;
}
