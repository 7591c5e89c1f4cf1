/*  transport.h -- ZeroMQ sockets of one node (the zguide's shape).
 *
 *  One bound PULL socket per node for everything it receives, and one PUSH
 *  socket per peer it sends to, created on first use and connected to the
 *  peer's endpoint from the swarm file.  High-water marks are small and every
 *  send is ZMQ_DONTWAIT: a full queue drops the message and counts it (drop,
 *  don't block), so a slow or dead peer never stalls a node.  Large payloads
 *  are sent as one reference-counted zmq message shared by all peers, so a
 *  round's model is copied once, not once per neighbour.  ZMQ_MAXMSGSIZE makes
 *  libzmq itself refuse oversize frames before they are buffered.
 *
 *  With CURVE (keys in the swarm file), the PULL socket is a CURVE server and
 *  a ZAP handler thread accepts only the listed public keys, giving each
 *  connection the user id "<node id>"; bn_rx_t.auth_id reports it so that the
 *  node can drop a message whose claimed sender is another node.
 */
#ifndef BN_TRANSPORT_H
#define BN_TRANSPORT_H

#include <zmq.h>

#include "common.h"
#include "swarmfile.h"

#define BN_RX_MAX_FRAMES 4
#define BN_AUTH_NONE UINT32_MAX

typedef struct {
    int      sndhwm;          /* per-peer send queue, messages (default 4)        */
    int      rcvhwm;          /* per-connection receive queue (default 4)         */
    int64_t  max_msg_size;    /* ZMQ_MAXMSGSIZE in bytes, -1 = unlimited          */
    int      linger_ms;       /* how long close waits to flush (default 2000)     */
    const char *secret_key;   /* our CURVE secret key (Z85), NULL without CURVE   */
    bool     bind;            /* bind our endpoint (false: send-only, e.g. tools) */
} bn_transport_opts_t;

void bn_transport_opts_default(bn_transport_opts_t *opts);

typedef struct bn_transport_t bn_transport_t;

/* A received multipart message: frames[0..n) are owned by the rx and released
 * by bn_rx_close.  auth_id is the authenticated sender (CURVE) or BN_AUTH_NONE.
 * truncated is set when the message had more than BN_RX_MAX_FRAMES frames
 * (the rest were read and discarded). */
typedef struct {
    int       n;
    zmq_msg_t frames[BN_RX_MAX_FRAMES];
    uint32_t  auth_id;
    bool      truncated;
} bn_rx_t;

/* Sets up the sockets of node `self` of `swarm` (borrowed; must outlive the
 * transport).  self == UINT32_MAX with bind_endpoint != NULL binds that
 * endpoint instead (the monitor).  NULL on failure, with a message in err. */
bn_transport_t *bn_transport_new(const bn_swarm_t *swarm, uint32_t self,
                                 const char *bind_endpoint, const bn_transport_opts_t *opts,
                                 char *err, size_t errlen);
void bn_transport_destroy(bn_transport_t **self_p);

/* Sends [header][payload] (and an optional middle frame) to node `peer`, or to
 * the monitor when peer == BN_PEER_MONITOR.  payload is shared by reference
 * (zmq_msg_copy), the caller keeps its own reference.  Returns BN_OK, or
 * BN_ETIMEOUT when the peer's queue is full (message dropped and counted), or
 * BN_ENET. */
#define BN_PEER_MONITOR UINT32_MAX
int bn_transport_send(bn_transport_t *t, uint32_t peer, const void *header, size_t header_len,
                      const void *middle, size_t middle_len, zmq_msg_t *payload);

/* Waits up to timeout_ms (0 = poll, -1 = forever) for one message.  BN_OK with
 * rx filled (call bn_rx_close after use), BN_ETIMEOUT, or BN_ENET (interrupted). */
int bn_transport_recv(bn_transport_t *t, int timeout_ms, bn_rx_t *rx);
void bn_rx_close(bn_rx_t *rx);

typedef struct {
    uint64_t msgs_sent, bytes_sent;
    uint64_t msgs_received, bytes_received;
    uint64_t send_dropped;     /* queue full at send time */
} bn_transport_stats_t;

const bn_transport_stats_t *bn_transport_stats(const bn_transport_t *t);

/* Reads the secret key from a key file written by `byznode keygen` (a line
 * "secret-key <40 Z85 chars>") into key (41 bytes).  BN_EIO / BN_EFORMAT with
 * a message naming the file. */
int bn_key_read(const char *path, char *key, char *err, size_t errlen);

#endif
