/*  transport.h -- the sockets of one node (the zguide's shape), behind an API
 *  that shows no ZeroMQ type.
 *
 *  One bound PULL socket per node for everything it receives, and one PUSH
 *  socket per peer it sends to, created on first use and connected to the
 *  peer's endpoint from the swarm file.  High-water marks are small and every
 *  send is non-blocking: a full queue drops the message and counts it (drop,
 *  don't block), so a slow or dead peer never stalls a node.  A payload is a
 *  reference-counted buffer (bn_buf_t) shared by every send of it, so a
 *  round's model is copied once, not once per neighbour.
 *
 *  Size bound: opts.max_msg_size bounds a whole message (all frames
 *  together), not a frame.  libzmq refuses a single frame above it before
 *  buffering it (ZMQ_MAXMSGSIZE); a multipart message whose frames are each
 *  small but whose sum is above it is read, discarded frame by frame, marked
 *  oversize (bn_msg_oversize), and the memory it took is handed back to the
 *  system, so that it leaves no lasting growth of the process.
 *
 *  Fault injection (opts.fault_drop, opts.fault_delay_ms; the kernel of the
 *  test machines has no netem) happens inside bn_transport_send: a seeded
 *  draw drops the message (counted as fault_dropped) or holds it for the
 *  delay (fault_delayed); held messages go out from bn_transport_recv and
 *  bn_transport_drain when due.  With both 0 every send goes straight out.
 *
 *  With CURVE (keys in the swarm file), the PULL socket is a CURVE server and
 *  a ZAP handler thread accepts only the listed public keys, giving each
 *  connection the user id "<node id>"; bn_msg_auth() reports it so that the
 *  node can drop a message whose claimed sender is another node.
 */
#ifndef BN_TRANSPORT_H
#define BN_TRANSPORT_H

#include <signal.h>

#include "common.h"
#include "swarmfile.h"

#define BN_MSG_MAX_FRAMES 4
#define BN_AUTH_NONE UINT32_MAX
#define BN_PEER_MONITOR UINT32_MAX

/* ---- buffers ----------------------------------------------------------- */

/* An immutable, reference-counted byte buffer (one frame).  Its data is
 * 4-byte aligned, so a float payload can be read in place. */
typedef struct bn_buf_t bn_buf_t;

/* A new buffer of len bytes; *data (if not NULL) gets its address so that
 * the caller can fill it before the first send.  NULL when out of memory. */
bn_buf_t *bn_buf_new(size_t len, void **data);
/* Another reference to the same bytes (no copy).  NULL when out of memory. */
bn_buf_t *bn_buf_ref(const bn_buf_t *b);
/* Drops one reference and nulls *b; safe on NULL and twice. */
void bn_buf_release(bn_buf_t **b);
const void *bn_buf_data(const bn_buf_t *b);
size_t bn_buf_size(const bn_buf_t *b);

/* ---- received messages ------------------------------------------------- */

/* A received multipart message, owned by the caller of bn_transport_recv
 * until bn_msg_destroy.  Frames beyond BN_MSG_MAX_FRAMES are read and
 * discarded; bn_msg_count still counts them. */
typedef struct bn_msg_t bn_msg_t;

/* A message as if received: count frames (the first BN_MSG_MAX_FRAMES
 * copied from frames[i], lens[i] bytes), from authenticated sender auth,
 * oversize as bn_msg_oversize reports it (then no frame is held).  For tests
 * and tools that replay messages; NULL when out of memory. */
bn_msg_t *bn_msg_new(uint32_t count, const void *const *frames, const size_t *lens, uint32_t auth,
                     bool oversize);
/* A two-frame message [header][payload] as if received from auth: the
 * header copied, the payload buffer taken (*payload is nulled; no copy).
 * For a payload that came another way (shm.h).  NULL when out of memory
 * (*payload is then left to the caller). */
bn_msg_t *bn_msg_wrap(const void *header, size_t header_len, bn_buf_t **payload, uint32_t auth);
uint32_t bn_msg_count(const bn_msg_t *m);          /* frames the message had */
/* Frame i's bytes (borrowed, valid until bn_msg_destroy or bn_msg_take of
 * that frame); NULL with *len = 0 for a frame that is not held. */
const void *bn_msg_frame(const bn_msg_t *m, uint32_t i, size_t *len);
/* Moves frame i out of the message as a buffer (4-byte aligned data; copied
 * only if libzmq's was not).  NULL if not held or out of memory. */
bn_buf_t *bn_msg_take(bn_msg_t *m, uint32_t i);
/* The authenticated sender (CURVE user id) or BN_AUTH_NONE. */
uint32_t bn_msg_auth(const bn_msg_t *m);
/* True if the frames together exceeded opts.max_msg_size (none are held). */
bool bn_msg_oversize(const bn_msg_t *m);
void bn_msg_destroy(bn_msg_t **m);

/* ---- the transport ----------------------------------------------------- */

typedef struct {
    int      sndhwm;          /* per-peer send queue, messages (default 4)        */
    int      rcvhwm;          /* per-connection receive queue (default 4)         */
    int64_t  max_msg_size;    /* bytes of a whole message, -1 = unlimited         */
    int      linger_ms;       /* how long close waits to flush (default 2000)     */
    const char *secret_key;   /* our CURVE secret key (Z85), NULL without CURVE   */
    bool     bind;            /* bind our endpoint (false: send-only, e.g. tools) */
    double   fault_drop;      /* probability that a send is dropped (0)           */
    uint32_t fault_delay_ms;  /* hold every send that long (0)                    */
    uint64_t fault_seed;      /* seed of the fault draws (with the node id)       */
} bn_transport_opts_t;

void bn_transport_opts_default(bn_transport_opts_t *opts);

typedef struct bn_transport_t bn_transport_t;

/* Sets up the sockets of node `self` of `swarm` (borrowed; must outlive the
 * transport).  self == UINT32_MAX with bind_endpoint != NULL binds that
 * endpoint instead (the monitor).  NULL on failure, with a message in err. */
bn_transport_t *bn_transport_new(const bn_swarm_t *swarm, uint32_t self,
                                 const char *bind_endpoint, const bn_transport_opts_t *opts,
                                 char *err, size_t errlen);
void bn_transport_destroy(bn_transport_t **self_p);

/* Sends [header][middle][payload] to node `peer`, or to the monitor when
 * peer == BN_PEER_MONITOR.  middle may be NULL (no such frame); payload may
 * be NULL (an empty last frame) and is shared by reference, the caller keeps
 * its own.  Returns BN_OK (sent, held by the fault delay, or dropped by the
 * injected loss), BN_ETIMEOUT when the peer's queue is full (dropped and
 * counted as send_dropped), BN_EARG or BN_ENET. */
int bn_transport_send(bn_transport_t *t, uint32_t peer, const void *header, size_t header_len,
                      const void *middle, size_t middle_len, const bn_buf_t *payload);

/* bn_transport_recv's return when only the watched descriptor is readable. */
#define BN_TRANSPORT_FD 1

/* Waits up to timeout_ms (0 = poll, -1 = forever) for one message, sending
 * held messages as they fall due meanwhile.  BN_OK with *msg set (destroy it
 * after use), BN_TRANSPORT_FD (no message; the descriptor given to
 * bn_transport_watch is readable), BN_ETIMEOUT, BN_ENOMEM or BN_ENET
 * (interrupted). */
int bn_transport_recv(bn_transport_t *t, int timeout_ms, bn_msg_t **msg);

/* Also wait for input on fd (borrowed; -1: none, the default) in
 * bn_transport_recv: the node's reference FIFO (refpipe.h). */
void bn_transport_watch(bn_transport_t *t, int fd);

/* Sends the held messages that are due now (bn_transport_recv does too). */
void bn_transport_pump(bn_transport_t *t);

/* Sends every held message when it falls due, waiting for it; returns as
 * soon as *stop (may be NULL) becomes non-zero, the held rest discarded. */
void bn_transport_drain(bn_transport_t *t, volatile sig_atomic_t *stop);

typedef struct {
    uint64_t msgs_sent, bytes_sent;
    uint64_t msgs_received, bytes_received;
    uint64_t send_dropped;     /* queue full at send time */
    uint64_t oversize;         /* received messages above max_msg_size */
    uint64_t fault_dropped, fault_delayed;
} bn_transport_stats_t;

const bn_transport_stats_t *bn_transport_stats(const bn_transport_t *t);

/* Reads the secret key from a key file written by `byznode keygen` (a line
 * "secret-key <40 Z85 chars>") into key (41 bytes).  BN_EIO / BN_EFORMAT with
 * a message naming the file. */
int bn_key_read(const char *path, char *key, char *err, size_t errlen);

#endif
