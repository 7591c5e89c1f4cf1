/*  fault.c -- seeded loss and delay decisions and the delay FIFO; see fault.h. */
#include "fault.h"

#include <stdlib.h>

#include "rng.h"

typedef struct {
    double due;           /* bn_now() seconds */
    void  *item;          /* owned while held */
} s_held_t;

struct bn_fault_t {
    double    drop, delay;    /* probability, seconds */
    bn_rng_t  rng;
    s_held_t *q;              /* FIFO ring of BN_FAULT_QUEUE, NULL without delay */
    size_t    head, count;
    void    (*free_item)(void *);
    bn_fault_stats_t stats;
};

bn_fault_t *bn_fault_new(double drop, uint32_t delay_ms, uint64_t seed, uint32_t node_id,
                         void (*free_item)(void *item))
{
    bn_fault_t *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->drop = drop;
    f->delay = delay_ms / 1000.0;
    f->free_item = free_item;
    bn_rng_seed(&f->rng, seed, BN_STREAM_FAULT + ((uint64_t) node_id << 8));
    if (delay_ms > 0) {
        f->q = calloc(BN_FAULT_QUEUE, sizeof *f->q);
        if (!f->q) {
            free(f);
            return NULL;
        }
    }
    return f;
}

void bn_fault_destroy(bn_fault_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bn_fault_t *f = *self_p;
    for (size_t i = 0; i < f->count; i++) {
        void *item = f->q[(f->head + i) % BN_FAULT_QUEUE].item;
        if (f->free_item)
            f->free_item(item);
    }
    free(f->q);
    free(f);
    *self_p = NULL;
}

bn_fault_verdict_t bn_fault_decide(bn_fault_t *f)
{
    if (f->drop > 0 && bn_rng_uniform(&f->rng) < f->drop) {
        f->stats.dropped++;
        return BN_FAULT_DROP;
    }
    if (f->delay > 0 && f->count < BN_FAULT_QUEUE)
        return BN_FAULT_HOLD;
    return BN_FAULT_PASS;
}

void bn_fault_hold(bn_fault_t *f, double now, void *item)
{
    if (!f->q || f->count >= BN_FAULT_QUEUE) {   /* contract broken: do not lose it silently */
        if (f->free_item)
            f->free_item(item);
        return;
    }
    s_held_t *h = &f->q[(f->head + f->count) % BN_FAULT_QUEUE];
    h->due = now + f->delay;
    h->item = item;
    f->count++;
    f->stats.delayed++;
}

void *bn_fault_pop_due(bn_fault_t *f, double now)
{
    if (f->count == 0 || f->q[f->head].due > now)
        return NULL;
    void *item = f->q[f->head].item;
    f->head = (f->head + 1) % BN_FAULT_QUEUE;
    f->count--;
    return item;
}

int bn_fault_next_due_ms(const bn_fault_t *f, double now)
{
    if (f->count == 0)
        return -1;
    double ms = (f->q[f->head].due - now) * 1000.0;
    return ms <= 0 ? 0 : (int) ms + 1;
}

size_t bn_fault_held(const bn_fault_t *f)
{
    return f->count;
}

const bn_fault_stats_t *bn_fault_stats(const bn_fault_t *f)
{
    return &f->stats;
}
