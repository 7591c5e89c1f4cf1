/*  shm.h -- the same-host model exchange: a node's ring of model slots in a
 *  file of its own (docs/protocol.md, "Same-host models through shared
 *  memory").
 *
 *  A node whose peers are on its host (ipc:// endpoints) writes its round's
 *  encoded model once into the next of BN_SHM_SLOTS slots of its ring file
 *  and sends each such neighbour a MODEL_SHM message: the MODEL's header with
 *  kind BN_MSG_MODEL_SHM and, as frame 1, a BN_SHM_REF_LEN-byte reference
 *  (generation of the file, slot, payload length, sequence number) instead
 *  of the payload.  That saves the two kernel copies of a 320 KB model per
 *  neighbour and libzmq's handling of it; the sender's one write serves all
 *  of them.
 *
 *  Each slot starts with a sequence number written seqlock-style: odd while
 *  the owner writes the slot, the next even number once it is complete.  A
 *  reader copies the slot out with pread() into a buffer it owns (never
 *  mmap: a peer that truncates its file could otherwise make us SIGBUS),
 *  then reads the sequence number again: a torn copy (it changed meanwhile)
 *  or a stale one (the slot holds another round by now) is dropped and
 *  counted (BN_DROP_SHM), like any bad message.  The copy then goes through
 *  the normal admission (bn_shm_resolve gives an ordinary MODEL message), so
 *  whatever the owner writes into its file after the copy changes nothing
 *  that was checked, and nothing in a peer's file can crash the node: every
 *  field read from it is bounds-checked, a missing or short file is a
 *  counted drop, and a file that is not a regular file is never read.
 *
 *  Where: the ring of node i is the file
 *      <dir>/byznode-<swarm id, 16 hex>-<i>-<hash of i's endpoint, 8 hex>.ring
 *  where dir is the directory of i's ipc:// socket when that is a tmpfs, else
 *  /dev/shm.  Writer and readers compute it from the swarm file alone; the
 *  endpoint's hash keeps two swarms of the same name on one host apart.  The
 *  owner creates it at start (replacing one a killed run of the same node
 *  left), holds flock(LOCK_EX) on it while it lives, and removes it at exit;
 *  creating a ring also removes the unlocked (dead owners') rings of this
 *  version in the same directory (shm.c, "Leftover rings").  Its size is one page plus BN_SHM_SLOTS
 *  slots of one page-rounded header + payload each (4 x 320 KB for the CNN),
 *  allocated at creation (posix_fallocate) so that a full tmpfs is found at
 *  start, not in a round.  Byte order is the host's: the file never leaves
 *  the host.
 *
 *  Readers keep one descriptor per peer, opened at the first reference and
 *  reopened when a reference names another generation (the peer restarted
 *  and made a new file).  Ownership: a bn_shm_t owns its file, its
 *  descriptors and nothing else; the swarm is borrowed.
 */
#ifndef BN_SHM_H
#define BN_SHM_H

#include "common.h"
#include "swarmfile.h"
#include "transport.h"
#include "wire.h"

/* Slots of a ring.  A receiver reads a reference as soon as it comes off the
 * socket, and an honest sender is at most two rounds ahead of a neighbour
 * it waits for (it needs that neighbour's model of round r to send r + 2),
 * so a slot is overwritten only under references that are R rounds old:
 * those of a neighbour that stalled and was given up, which the normal path
 * would drop as stale too. */
#define BN_SHM_SLOTS   4
#define BN_SHM_REF_LEN 24
#define BN_SHM_PATH_MAX 512

/* --shm: auto = rings, and the references through each node's FIFO
 * (refpipe.h) where it can; rings = rings, the references over the sockets;
 * off = every payload over the sockets. */
typedef enum { BN_SHM_AUTO = 0, BN_SHM_OFF = 1, BN_SHM_RINGS = 2, BN_SHM_MODE_COUNT } bn_shm_mode_t;

/* "auto" / "off" / "rings"; NULL past the table. */
const char *bn_shm_mode_name(bn_shm_mode_t m);
/* BN_OK, or BN_EARG for an unknown name. */
int bn_shm_mode_parse(const char *s, bn_shm_mode_t *m);

/* Frame 1 of a MODEL_SHM: which slot of which file holds the payload. */
typedef struct {
    uint64_t gen;     /* generation of the ring file (random at creation)  */
    uint64_t seq;     /* the slot's sequence number once written (even)    */
    uint32_t slot;    /* 0 .. BN_SHM_SLOTS - 1                              */
    uint32_t len;     /* payload bytes                                      */
} bn_shm_ref_t;

void bn_shm_ref_encode(const bn_shm_ref_t *ref, uint8_t out[BN_SHM_REF_LEN]);
/* False unless len == BN_SHM_REF_LEN. */
bool bn_shm_ref_decode(const void *buf, size_t len, bn_shm_ref_t *ref);

typedef struct {
    uint64_t published;     /* models written into our ring                  */
    uint64_t received;      /* peers' models read and handed to admission    */
    uint64_t torn;          /* dropped: the slot changed during the copy     */
    uint64_t stale;         /* dropped: the slot holds another round now, or
                               the reference names another generation        */
    uint64_t unreadable;    /* dropped: no file, not a regular file, short,
                               bad header or reference, out of memory        */
} bn_shm_stats_t;

typedef struct bn_shm_t bn_shm_t;

/* The ring file's path of node `id` with that endpoint, into out (cap
 * bytes).  BN_EARG when the endpoint is not ipc:// or the path is too long. */
int bn_shm_path(const char *endpoint, uint64_t swarm_id, uint32_t id, char *out, size_t cap);

/* The exchange of node `self` of `swarm` (borrowed; must outlive it) for
 * payloads of len bytes.  With publish it also creates the node's own ring
 * file (self's endpoint must be ipc://); when that fails it warns (err says
 * why) and the object only reads.  NULL when out of memory. */
bn_shm_t *bn_shm_new(const bn_swarm_t *swarm, uint32_t self, size_t len, bool publish,
                     char *err, size_t errlen);
/* Closes every descriptor and removes the node's own ring file. */
void bn_shm_destroy(bn_shm_t **self_p);

/* Whether this node writes a ring (bn_shm_publish may be called). */
bool bn_shm_publishing(const bn_shm_t *s);
/* Whether peer's endpoint makes it a same-host peer (ipc://). */
bool bn_shm_same_host(const bn_shm_t *s, uint32_t peer);

/* Writes the payload (len bytes) of (epoch, round) into the next slot; *ref
 * names it.  BN_OK, or BN_EIO (send the payload itself). */
int bn_shm_publish(bn_shm_t *s, uint32_t epoch, uint64_t round, const void *payload,
                   bn_shm_ref_t *ref);

/* Reads the slot `ref` names in peer's ring, for the message header h (its
 * epoch and round must be the slot's).  BN_DROP_NONE with *out a new buffer
 * of ref->len bytes (the caller owns it), else BN_DROP_SHM or BN_DROP_DIM
 * (counted in the stats; *out NULL). */
bn_drop_reason_t bn_shm_read(bn_shm_t *s, uint32_t peer, const bn_wire_header_t *h,
                             const bn_shm_ref_t *ref, bn_buf_t **out);

/* A received message.  Not a MODEL_SHM (or one admission refuses anyway:
 * sender out of range, authenticated as another): BN_DROP_NONE and *out
 * NULL, admit msg itself.  A readable one: BN_DROP_NONE and *out the
 * MODEL it stands for (the same header with kind MODEL, the copy as
 * payload, msg's sender authentication); admit *out, destroy both.  Else the
 * drop reason, and *blame the peer to count it against. */
bn_drop_reason_t bn_shm_resolve(bn_shm_t *s, const bn_msg_t *msg, bn_msg_t **out, uint32_t *blame);

const bn_shm_stats_t *bn_shm_stats(const bn_shm_t *s);

/* Tests only: fn(ctx) runs in bn_shm_read after the payload's copy, before
 * the sequence number is read again (NULL: none). */
void bn_shm_set_copy_hook(bn_shm_t *s, void (*fn)(void *ctx), void *ctx);

#endif
