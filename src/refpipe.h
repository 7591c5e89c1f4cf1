/*  refpipe.h -- same-host references without the sockets: each node's FIFO
 *  that its same-host neighbours write their MODEL_SHM references into
 *  (docs/protocol.md, "Same-host models through shared memory").
 *
 *  With the ring exchange (shm.h) a round's model crosses between two nodes
 *  on one host as a reference of a few dozen bytes, but through ZeroMQ that
 *  small message still costs two wake-ups of each side's I/O thread and two
 *  of its pipes: at n = 100 on 2 cores the I/O threads took 12.6% of the
 *  machine (docs/performance.md).  Here the sender writes the reference
 *  record straight into the receiver's FIFO with one write(2), and the
 *  receiver reads every pending record with one read(2) when its poll says
 *  the FIFO is readable: no I/O thread on either side.
 *
 *  The FIFO of node i is its ring's path (shm.h, bn_shm_path) with ".refs"
 *  for ".ring".  Its owner creates it at start (replacing one a killed run
 *  left; the ring sweep removes a dead ring's FIFO with it), opens it
 *  read-write and non-blocking (so that it never sees end-of-file when no
 *  writer is left), and removes it at exit.  A sender opens a neighbour's
 *  FIFO write-only, non-blocking, at its first reference (refused when
 *  nobody reads it: ENXIO), keeps the descriptor, and reopens it after
 *  EPIPE (the owner died; a restarted owner has a new FIFO under the same
 *  name).  The process must ignore SIGPIPE (main.c does), or that write
 *  kills it.
 *
 *  Record: magic u32 | header length u16 | reference length u16 | header |
 *  reference, in host byte order (the FIFO never leaves the host), at most
 *  BN_REFPIPE_RECORD_MAX bytes, below PIPE_BUF: the kernel writes a record
 *  whole or not at all, so honest records never interleave.  A record that
 *  cannot be written now (the FIFO is full: the owner is stalled or slow;
 *  or it is gone) is not queued here: bn_refpipe_send fails and the caller
 *  sends the message over the socket instead, with the socket's own
 *  drop-don't-block high-water mark.
 *
 *  What a reader trusts: nothing.  Anyone with the owner's uid can write
 *  into the FIFO, as into its ipc:// socket.  A record is only framed here
 *  (magic, lengths in range); its header and reference then go through the
 *  same admission as a MODEL_SHM that came over the socket (bn_shm_resolve,
 *  then the inbox), with no authenticated sender: the node uses the FIFO
 *  only in a swarm without CURVE, where a sender id is a claim either way.
 *  Bytes that do not frame are skipped one at a time until the next magic
 *  and counted (bad_bytes), so a writer of garbage cannot shift the honest
 *  records after it out of frame.
 *
 *  Ownership: a bn_refpipe_t owns its FIFO, its read descriptor, its write
 *  descriptors to peers and its read buffer; the swarm is borrowed.
 *  Memory: BN_REFPIPE_BUF bytes plus 16 bytes per node of the swarm.
 */
#ifndef BN_REFPIPE_H
#define BN_REFPIPE_H

#include "common.h"
#include "swarmfile.h"
#include "transport.h"

#define BN_REFPIPE_RECORD_MAX 256
#define BN_REFPIPE_BUF        65536

typedef struct {
    uint64_t sent;          /* records written into neighbours' FIFOs          */
    uint64_t full;          /* not written: the neighbour's FIFO was full      */
    uint64_t unavailable;   /* not written: no FIFO, nobody reading, EPIPE     */
    uint64_t received;      /* records read and handed out as messages         */
    uint64_t bad_bytes;     /* bytes skipped that did not frame as a record    */
} bn_refpipe_stats_t;

typedef struct bn_refpipe_t bn_refpipe_t;

/* The FIFO of node `self` of `swarm` (borrowed; self's endpoint must be
 * ipc://), created now.  NULL when it cannot be (err says why): then the
 * node sends and receives its references over the sockets. */
bn_refpipe_t *bn_refpipe_new(const bn_swarm_t *swarm, uint32_t self, char *err, size_t errlen);
/* Closes every descriptor and removes the node's FIFO. */
void bn_refpipe_destroy(bn_refpipe_t **self_p);

/* The descriptor to poll for input. */
int bn_refpipe_fd(const bn_refpipe_t *p);

/* Writes one record [header][ref] into peer's FIFO.  BN_OK; BN_ETIMEOUT when
 * it is full; BN_EIO when there is none or nobody reads it; BN_EARG for
 * lengths that do not fit a record.  On any error nothing was written:
 * send the message another way. */
int bn_refpipe_send(bn_refpipe_t *p, uint32_t peer, const void *header, size_t header_len,
                    const void *ref, size_t ref_len);

/* The next record received, as a two-frame message [header][ref] with no
 * authenticated sender (destroy it after use).  BN_OK; BN_ETIMEOUT when no
 * whole record is pending (never waits); BN_ENOMEM. */
int bn_refpipe_recv(bn_refpipe_t *p, bn_msg_t **msg);

const bn_refpipe_stats_t *bn_refpipe_stats(const bn_refpipe_t *p);

#endif
