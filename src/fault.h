/*  fault.h -- the seeded decisions behind injected link faults.
 *
 *  The kernel of the test machines has no netem, so byznode injects loss and
 *  delay itself, seeded so that a run is repeatable.  This module knows
 *  nothing of messages: for every outgoing send the transport asks
 *  bn_fault_decide(), which drops it with probability `drop`, or says to hold
 *  it for `delay_ms`; a held item (an opaque pointer the transport owns the
 *  meaning of) waits in a bounded FIFO (BN_FAULT_QUEUE; a send that finds it
 *  full passes at once) until bn_fault_pop_due() hands it back.  All delays
 *  are equal, so FIFO order is due order.  With drop = 0 and delay_ms = 0
 *  every send passes and no random number is drawn.
 */
#ifndef BN_FAULT_H
#define BN_FAULT_H

#include "common.h"

#define BN_FAULT_QUEUE 4096

typedef struct bn_fault_t bn_fault_t;

typedef enum {
    BN_FAULT_PASS = 0,    /* send it now                           */
    BN_FAULT_DROP,        /* lose it (counted in dropped)          */
    BN_FAULT_HOLD,        /* give it to bn_fault_hold              */
} bn_fault_verdict_t;

/* free_item releases a held item that is never popped (at destroy); it may
 * be NULL if items need no release.  The draws come from (seed,
 * BN_STREAM_FAULT + node_id << 8).  NULL when out of memory. */
bn_fault_t *bn_fault_new(double drop, uint32_t delay_ms, uint64_t seed, uint32_t node_id,
                         void (*free_item)(void *item));
/* Releases every held item and the object; nulls *self_p; safe twice. */
void bn_fault_destroy(bn_fault_t **self_p);

/* The verdict for one send.  HOLD is only returned when there is room. */
bn_fault_verdict_t bn_fault_decide(bn_fault_t *f);
/* Holds item (taken) until now + delay; call only after a HOLD verdict.
 * Counted in delayed. */
void bn_fault_hold(bn_fault_t *f, double now, void *item);
/* The oldest held item if it is due at `now` (the caller owns it), else NULL. */
void *bn_fault_pop_due(bn_fault_t *f, double now);
/* Milliseconds from `now` until the oldest held item is due (0 if it is),
 * -1 if none is held. */
int bn_fault_next_due_ms(const bn_fault_t *f, double now);
/* Items held now. */
size_t bn_fault_held(const bn_fault_t *f);

typedef struct { uint64_t dropped, delayed; } bn_fault_stats_t;
const bn_fault_stats_t *bn_fault_stats(const bn_fault_t *f);

#endif
