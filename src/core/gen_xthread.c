/* gen_xthread.c: freeing a generator from another thread.
 *
 * A generator belongs to the thread that made it: only that thread may
 * resume it, and only that thread touches its lists. cg_free from another
 * thread therefore puts it in its owner's inbox, and the owner finalizes
 * it (closing it if it is suspended) at its next call into cogen, or when
 * it ends. If the owner has ended already, the generator is an orphan: it
 * can no longer be resumed by anyone, and the thread that frees it adopts
 * it and finalizes it at once. The inbox lives on the heap so that it
 * outlives its thread while orphans point to it.
 */
#include "core/gen.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>


cg__home *cg__home_get(void) {
    cg__home *h = cg__gt.home;
    if (CG_LIKELY(h)) return h;
    h = malloc(sizeof *h);
    if (!h) return NULL;
    pthread_mutex_init(&h->lock, NULL);
    atomic_init(&h->inbox, NULL);
    h->alive = 1;
    h->orphans = 0;
    cg__gt.home = h;
    return h;
}

static void home_destroy(cg__home *h) {
    pthread_mutex_destroy(&h->lock);
    free(h);
}

/* Frees the generators of an inbox list taken by their owner. */
static void free_inbox_list(cg_gen *list) {
    while (list) {
        cg_gen *g = list;
        list = g->inbox_next;
        g->in_inbox = 0;
        cg__gen_free(g);
    }
}

/* The owner finalizes what other threads freed. */
CG_COLD static void drain(cg__home *h) {
    pthread_mutex_lock(&h->lock);
    cg_gen *list = atomic_exchange_explicit(&h->inbox, NULL, memory_order_relaxed);
    pthread_mutex_unlock(&h->lock);
    free_inbox_list(list);
}

void cg__gen_drain(void) {
    if (cg__gt.home) drain(cg__gt.home);
}

/* cg_free from a thread that is not g's owner. Only fields that the owner
 * never changes after creation are read here (home), so the owner may go
 * on using its other generators meanwhile. */
int cg__free_remote(cg_gen *g) {
    cg__home *h = g->home;
    pthread_mutex_lock(&h->lock);
    if (h->alive) {
        g->in_inbox = 1;
        g->inbox_next = atomic_load_explicit(&h->inbox, memory_order_relaxed);
        atomic_store_explicit(&h->inbox, g, memory_order_relaxed);
        pthread_mutex_unlock(&h->lock);
        return 1;
    }
    int last = --h->orphans == 0;
    pthread_mutex_unlock(&h->lock);
    if (last) home_destroy(h);
    /* An orphan: adopt it. Nobody else can reach its lists any more. */
    cg__cur();
    g->home = cg__home_get();
    set_owner(g, cg__self() | (owner_word(g) & OWNER_SWAPPED)); /* still swapped out, if it was */
    return 0;
}

void cg__gen_thread_exit(void) {
    cg__home *h = cg__gt.home;
    if (!h) return;
    pthread_mutex_lock(&h->lock);
    h->alive = 0;
    cg_gen *list = atomic_exchange_explicit(&h->inbox, NULL, memory_order_relaxed);
    long orphans = 0;
    for (cg_gen *g = cg__gt.live, *next; g; g = next) {
        next = g->live_next;
        g->live_prev = NULL;
        g->live_next = NULL;
        if (g->resident) { /* the ring goes: its word is the swap's */
            g->resident = 0;
            g->res_slot = 0;
        }
        if (g->in_inbox) continue; /* finalized below, by us */
        set_owner(g, ORPHAN | (owner_word(g) & OWNER_SWAPPED));
        orphans++;
    }
    cg__gt.live = NULL;
    free(cg__gt.res);
    cg__gt.res = NULL;
    cg__gt.res_cap = cg__gt.res_first = cg__gt.res_end = cg__gt.nres = 0;
    h->orphans = orphans;
    pthread_mutex_unlock(&h->lock);
    free_inbox_list(list);
    cg__gt.home = NULL;
    if (!orphans) home_destroy(h);
}
