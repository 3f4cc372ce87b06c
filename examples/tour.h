/* tour.h: what the two tours of `make demo` share (tour.c, the generators;
 * tour_loop.c, the event loop): claims checked as they are printed,
 * exceptions printed as Python's repr(), section headers. */
#ifndef COGEN_EXAMPLES_TOUR_H
#define COGEN_EXAMPLES_TOUR_H

#include <cogen.h>

#include <stdio.h>

/* Claims that did not hold: a tour with any exits 1. */
static int failures;

/* A claim that the library must make true. */
static void expect(int ok, const char *claim) {
    if (!ok) {
        printf("    !! UNEXPECTED: %s\n", claim);
        failures++;
    }
}

/* Python's repr() of an exception ("None" for NULL), for printf. Four
 * rotating buffers, so that one printf can show an exception and its
 * __context__. */
static const char *repr(const cg_exc *e) {
    static char bufs[4][192];
    static int next;
    char *b = bufs[next++ % 4];
    cg_exc_repr(e, b, sizeof bufs[0]);
    return b;
}

static void section(const char *title) { printf("\n== %s ==\n", title); }

#endif
