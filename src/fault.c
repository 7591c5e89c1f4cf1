/*  fault.c -- seeded loss and delay on outgoing messages; see fault.h. */
#include "fault.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rng.h"
#include "wire.h"

typedef struct {
    double    due;
    uint32_t  peer;
    size_t    header_len;
    uint8_t   header[BN_WIRE_HEADER_MAX];
    zmq_msg_t payload;
} s_held_t;

struct bn_fault_t {
    double   drop, delay;     /* probability, seconds */
    bn_rng_t rng;
    s_held_t *q;              /* FIFO ring; all delays are equal, so FIFO is due order */
    size_t   head, count;
    bn_fault_stats_t stats;
};

bn_fault_t *bn_fault_new(double drop, uint32_t delay_ms, uint64_t seed, uint32_t node_id)
{
    bn_fault_t *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->drop = drop;
    f->delay = delay_ms / 1000.0;
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
    for (size_t i = 0; i < f->count; i++)
        zmq_msg_close(&f->q[(f->head + i) % BN_FAULT_QUEUE].payload);
    free(f->q);
    free(f);
    *self_p = NULL;
}

int bn_fault_send(bn_fault_t *f, bn_transport_t *t, uint32_t peer, const void *header,
                  size_t header_len, zmq_msg_t *payload)
{
    if (f->drop > 0 && bn_rng_uniform(&f->rng) < f->drop) {
        f->stats.dropped++;
        return BN_OK;
    }
    if (f->delay > 0 && f->count < BN_FAULT_QUEUE && header_len <= BN_WIRE_HEADER_MAX) {
        s_held_t *h = &f->q[(f->head + f->count) % BN_FAULT_QUEUE];
        h->due = bn_now() + f->delay;
        h->peer = peer;
        h->header_len = header_len;
        memcpy(h->header, header, header_len);
        zmq_msg_init(&h->payload);
        zmq_msg_copy(&h->payload, payload);
        f->count++;
        f->stats.delayed++;
        return BN_OK;
    }
    return bn_transport_send(t, peer, header, header_len, NULL, 0, payload);
}

void bn_fault_flush(bn_fault_t *f, bn_transport_t *t)
{
    double now = bn_now();
    while (f->count > 0) {
        s_held_t *h = &f->q[f->head];
        if (h->due > now)
            break;
        bn_transport_send(t, h->peer, h->header, h->header_len, NULL, 0, &h->payload);
        zmq_msg_close(&h->payload);
        f->head = (f->head + 1) % BN_FAULT_QUEUE;
        f->count--;
    }
}

int bn_fault_next_due_ms(const bn_fault_t *f)
{
    if (f->count == 0)
        return -1;
    double ms = (f->q[f->head].due - bn_now()) * 1000.0;
    return ms <= 0 ? 0 : (int) ms + 1;
}

void bn_fault_drain(bn_fault_t *f, bn_transport_t *t)
{
    while (f->count > 0) {
        int ms = bn_fault_next_due_ms(f);
        if (ms > 0) {
            struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
            nanosleep(&ts, NULL);
        }
        bn_fault_flush(f, t);
    }
}

const bn_fault_stats_t *bn_fault_stats(const bn_fault_t *f)
{
    return &f->stats;
}
