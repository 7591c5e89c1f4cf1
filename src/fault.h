/*  fault.h -- injected loss and delay on a node's outgoing messages.
 *
 *  This machine's kernel has no netem, so byznode injects link faults itself,
 *  seeded so that a run is repeatable: each outgoing message is dropped with
 *  probability `drop`, otherwise held for `delay_ms` before it is handed to
 *  ZeroMQ.  Held messages share the payload by reference; the queue is
 *  bounded (BN_FAULT_QUEUE) and a message that finds it full is sent at once.
 *  With drop = 0 and delay_ms = 0 every call passes straight through.
 */
#ifndef BN_FAULT_H
#define BN_FAULT_H

#include "transport.h"

#define BN_FAULT_QUEUE 4096

typedef struct bn_fault_t bn_fault_t;

bn_fault_t *bn_fault_new(double drop, uint32_t delay_ms, uint64_t seed, uint32_t node_id);
void bn_fault_destroy(bn_fault_t **self_p);

/* Drops, delays or sends [header][payload] to peer.  header is copied. */
int bn_fault_send(bn_fault_t *f, bn_transport_t *t, uint32_t peer, const void *header,
                  size_t header_len, zmq_msg_t *payload);
/* Sends every held message whose time has come. */
void bn_fault_flush(bn_fault_t *f, bn_transport_t *t);
/* Milliseconds until the next held message is due, -1 if none. */
int bn_fault_next_due_ms(const bn_fault_t *f);
/* Waits for and sends every held message (used before exit). */
void bn_fault_drain(bn_fault_t *f, bn_transport_t *t);

typedef struct { uint64_t dropped, delayed; } bn_fault_stats_t;
const bn_fault_stats_t *bn_fault_stats(const bn_fault_t *f);

#endif
