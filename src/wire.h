/*  wire.h -- the byznode message format (docs/protocol.md is the full spec).
 *
 *  A message is a ZeroMQ multipart message:
 *      frame 0: header, a MessagePack map (<= BN_WIRE_HEADER_MAX bytes)
 *      frame 1: payload, `dim` little-endian IEEE-754 float32 values (raw;
 *               bn_wire_payload_encode / _decode own the byte order)
 *  (kind REPORT adds a MessagePack metrics frame between the two; see
 *  monitor.h).  The header is decoded strictly: every required key present with
 *  the right type and range, unknown keys skipped, nothing read past `len`.
 *  bn_wire_validate() then checks it against what this node expects.  The
 *  checks that need the node's position (stale, duplicate, too far ahead, not a
 *  neighbour) are the node's; their reasons are listed here so that every drop
 *  is counted under one enum.
 */
#ifndef BN_WIRE_H
#define BN_WIRE_H

#include "common.h"

#define BN_WIRE_VERSION    2   /* 2: the configuration fingerprint "c" */
#define BN_WIRE_HEADER_MAX 256
#define BN_DTYPE_F32       1
/* Largest header bn_wire_encode() produces (every field at its maximum). */
#define BN_WIRE_HEADER_ENCODED_MAX 95

typedef enum {
    BN_MSG_MODEL   = 1,   /* x_i^{t+1} for (epoch, round), to a neighbour      */
    BN_MSG_REPORT  = 2,   /* per-epoch metrics (and model) to the monitor      */
    BN_MSG_COLLUDE = 3,   /* attacker to attacker: honest models it heard      */
    BN_MSG_MODEL_SHM = 4, /* a MODEL whose payload is in the sender's shared-
                             memory ring: frame 1 names the slot (shm.h); the
                             receiver reads it into a MODEL before admission */
} bn_msg_kind_t;

typedef struct {
    uint32_t version;     /* BN_WIRE_VERSION                                   */
    uint32_t kind;        /* bn_msg_kind_t                                     */
    uint64_t swarm_id;    /* hash of the swarm name (swarmfile.h)              */
    uint32_t sender;      /* node id of the sender                             */
    uint32_t epoch;       /* 0-based epoch                                     */
    uint64_t round;       /* 0-based global round since the start of training  */
    uint64_t topology;    /* fingerprint of the sender's graph for this epoch  */
    uint64_t config;      /* bn_options_fingerprint of the sender's swarm-wide options */
    uint32_t dtype;       /* BN_DTYPE_F32                                      */
    uint32_t dim;         /* number of elements in the payload                 */
    uint32_t origin;      /* COLLUDE: the honest node whose model this is; else = sender */
} bn_wire_header_t;

typedef enum {
    BN_DROP_NONE = 0,
    BN_DROP_FRAMES,        /* wrong number of frames                            */
    BN_DROP_HEADER,        /* header is not a valid MessagePack map of our keys */
    BN_DROP_VERSION,       /* unknown protocol version                          */
    BN_DROP_KIND,          /* unknown or unexpected message kind                */
    BN_DROP_SWARM,         /* another swarm's message                           */
    BN_DROP_SENDER,        /* sender id outside 0..n-1, or our own id           */
    BN_DROP_AUTH,          /* sender id does not match the authenticated key    */
    BN_DROP_DTYPE,         /* element type other than float32                   */
    BN_DROP_DIM,           /* dim differs from the model's, or payload size != dim * 4 */
    BN_DROP_NONFINITE,     /* payload holds NaN or infinity                     */
    BN_DROP_STALE,         /* for a round this node has finished                */
    BN_DROP_DUPLICATE,     /* second message from a sender for one round        */
    BN_DROP_FUTURE,        /* too far ahead, or the early-message buffer is full */
    BN_DROP_NOT_NEIGHBOR,  /* sender is not a neighbour in that epoch's graph   */
    BN_DROP_TOPOLOGY,      /* sender's graph fingerprint differs from ours      */
    BN_DROP_CONFIG,        /* sender's configuration fingerprint differs from ours */
    BN_DROP_SIZE,          /* the whole message is larger than the bound        */
    BN_DROP_SHM,           /* a MODEL_SHM whose slot could not be read: no or a
                              short file, a torn or overwritten slot (shm.h)    */
    BN_DROP_COUNT
} bn_drop_reason_t;

/* Short stable name ("stale", "nonfinite", ...), used in logs and metrics. */
const char *bn_drop_reason_name(bn_drop_reason_t r);

/* Encodes h into buf (cap bytes); *len gets the size.  BN_EARG if cap is too small. */
int bn_wire_encode(const bn_wire_header_t *h, uint8_t *buf, size_t cap, size_t *len);

/* Decodes a header frame.  Returns BN_DROP_NONE or BN_DROP_HEADER /
 * BN_DROP_VERSION; never reads outside buf[0..len). */
bn_drop_reason_t bn_wire_decode(const uint8_t *buf, size_t len, bn_wire_header_t *h);

typedef struct {
    uint64_t swarm_id;
    uint32_t n;          /* swarm size: valid senders are 0..n-1 */
    uint32_t self;       /* our id: a message claiming it is dropped */
    uint32_t dim;        /* model dimension */
    uint64_t config;     /* our configuration fingerprint */
} bn_wire_expect_t;

/* Checks a decoded header and its payload frame against `ex`, in this order:
 * version, kind, swarm, sender (range, not ours; origin < n, and equal to
 * sender unless kind is COLLUDE), config (MODEL and COLLUDE only), dtype,
 * dim and payload_len == dim * 4, and (when check_finite) that every value
 * is finite -- the one finite check a received model gets.  payload may be
 * unaligned.  A REPORT or a COLLUDE may carry an empty payload with dim 0
 * or ex->dim. */
bn_drop_reason_t bn_wire_validate(const bn_wire_expect_t *ex, const bn_wire_header_t *h,
                                  const void *payload, size_t payload_len, bool check_finite);

/* True if all n floats are finite. */
bool bn_all_finite(const float *x, size_t n);

/* ---- payload ----------------------------------------------------------- */

/* Writes x[0..dim) as little-endian float32 into out (dim * 4 bytes, any
 * alignment). */
void bn_wire_payload_encode(const float *x, size_t dim, void *out);
/* Reads dim little-endian float32 values from in (any alignment) into out. */
void bn_wire_payload_decode(const void *in, size_t dim, float *out);
/* True if the dim little-endian float32 values at in (any alignment) are
 * all finite: the check bn_wire_validate makes, for a payload validated
 * without it (the monitor's REPORT, where a diverged model is kept). */
bool bn_wire_payload_finite(const void *in, size_t dim);
/* True if a payload's bytes, 4-byte aligned, can be read in place as this
 * host's floats (a little-endian host); else decode into a copy. */
bool bn_wire_payload_native(void);

#endif
