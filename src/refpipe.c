/*  refpipe.c -- a node's reference FIFO and its writes into the peers';
 *  see refpipe.h.
 *
 *  Invariants: fd is the owner's read-write descriptor of path (a FIFO it
 *  created); buf[head, tail) holds bytes read and not yet framed, tail -
 *  head < BN_REFPIPE_RECORD_MAX after every scan that found no whole record
 *  (so a read always has room); peers[j].fd is -1 or a write-only
 *  descriptor of a FIFO.
 */
#include "refpipe.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shm.h"

#define S_MAGIC 0x46524e42u                 /* "BNRF" */
#define S_HEAD  8u                          /* magic, two lengths */
#define S_RETRY 1.0                         /* s before reopening a refused FIFO */

_Static_assert(BN_REFPIPE_RECORD_MAX <= PIPE_BUF, "a record must be written atomically");

typedef struct {
    int    fd;                /* -1: not open */
    double retry_at;          /* bn_now() before which not to try opening again */
} s_peer_t;

struct bn_refpipe_t {
    const bn_swarm_t *swarm;  /* borrowed */
    uint32_t  self;
    int       fd;
    char      path[BN_SHM_PATH_MAX];
    s_peer_t *peers;          /* n */
    size_t    head, tail;
    uint8_t   buf[BN_REFPIPE_BUF];
    bn_refpipe_stats_t stats;
};

/* The FIFO's name of node id: its ring's, ".refs" for ".ring". */
static int s_path(const bn_swarm_t *swarm, uint32_t id, char *out, size_t cap)
{
    if (bn_shm_path(swarm->nodes[id].endpoint, swarm->swarm_id, id, out, cap) != BN_OK)
        return BN_EARG;
    size_t n = strlen(out);
    if (n < 5 || strcmp(out + n - 5, ".ring") != 0)
        return BN_EARG;
    memcpy(out + n - 5, ".refs", 5);
    return BN_OK;
}

bn_refpipe_t *bn_refpipe_new(const bn_swarm_t *swarm, uint32_t self, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = 0;
    if (!swarm || self >= swarm->n) {
        bn_fail(err, errlen, BN_EARG, "no such node");
        return NULL;
    }
    bn_refpipe_t *p = calloc(1, sizeof *p);
    s_peer_t *peers = malloc(swarm->n * sizeof *peers);
    if (!p || !peers) {
        free(p);
        free(peers);
        bn_fail(err, errlen, BN_ENOMEM, "out of memory");
        return NULL;
    }
    p->swarm = swarm;
    p->self = self;
    p->peers = peers;
    for (uint32_t j = 0; j < swarm->n; j++)
        peers[j] = (s_peer_t) { -1, 0.0 };
    if (s_path(swarm, self, p->path, sizeof p->path) != BN_OK) {
        bn_fail(err, errlen, BN_EARG, "%s: not an ipc:// endpoint with a short path",
                swarm->nodes[self].endpoint);
        goto fail;
    }
    /* A FIFO a killed run of this node left goes: its writers get EPIPE
     * and reopen this one. */
    unlink(p->path);
    if (mkfifo(p->path, 0600) != 0) {
        bn_fail(err, errlen, BN_EIO, "cannot create %s: %s", p->path, strerror(errno));
        goto fail;
    }
    p->fd = open(p->path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (p->fd < 0 || fstat(p->fd, &st) != 0 || !S_ISFIFO(st.st_mode)) {
        bn_fail(err, errlen, BN_EIO, "cannot open %s: %s", p->path, strerror(errno));
        if (p->fd >= 0)
            close(p->fd);
        unlink(p->path);
        goto fail;
    }
    return p;
fail:
    free(peers);
    free(p);
    return NULL;
}

void bn_refpipe_destroy(bn_refpipe_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bn_refpipe_t *p = *self_p;
    for (uint32_t j = 0; j < p->swarm->n; j++)
        if (p->peers[j].fd >= 0)
            close(p->peers[j].fd);
    close(p->fd);
    unlink(p->path);
    free(p->peers);
    free(p);
    *self_p = NULL;
}

int bn_refpipe_fd(const bn_refpipe_t *p)
{
    return p ? p->fd : -1;
}

/* ---- sending ----------------------------------------------------------- */

/* peers[peer].fd open, or false (refused; not retried for S_RETRY s). */
static bool s_open_peer(bn_refpipe_t *p, uint32_t peer)
{
    s_peer_t *q = &p->peers[peer];
    if (q->fd >= 0)
        return true;
    double now = bn_now();
    if (now < q->retry_at)
        return false;
    char path[BN_SHM_PATH_MAX];
    int fd = -1;
    struct stat st;
    if (s_path(p->swarm, peer, path, sizeof path) == BN_OK)
        fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
    /* only a FIFO: a regular file of that name would take the records and
     * never hand them on */
    if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISFIFO(st.st_mode))) {
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        q->retry_at = now + S_RETRY;
        return false;
    }
    q->fd = fd;
    return true;
}

int bn_refpipe_send(bn_refpipe_t *p, uint32_t peer, const void *header, size_t header_len,
                    const void *ref, size_t ref_len)
{
    if (!p || peer >= p->swarm->n || header_len == 0 || ref_len == 0
        || S_HEAD + header_len + ref_len > BN_REFPIPE_RECORD_MAX)
        return BN_EARG;
    if (!s_open_peer(p, peer)) {
        p->stats.unavailable++;
        return BN_EIO;
    }
    uint8_t rec[BN_REFPIPE_RECORD_MAX];
    uint32_t magic = S_MAGIC;
    uint16_t hl = (uint16_t) header_len, rl = (uint16_t) ref_len;
    memcpy(rec, &magic, 4);
    memcpy(rec + 4, &hl, 2);
    memcpy(rec + 6, &rl, 2);
    memcpy(rec + S_HEAD, header, header_len);
    memcpy(rec + S_HEAD + header_len, ref, ref_len);
    size_t len = S_HEAD + header_len + ref_len;
    ssize_t w;
    do
        w = write(p->peers[peer].fd, rec, len);
    while (w < 0 && errno == EINTR);
    if (w == (ssize_t) len) {
        p->stats.sent++;
        return BN_OK;
    }
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        p->stats.full++;
        return BN_ETIMEOUT;
    }
    /* EPIPE (the owner is gone; SIGPIPE is ignored by the node) or anything
     * else: close, reopen by name next time (a restarted owner's new FIFO).
     * A write below PIPE_BUF is never partial. */
    close(p->peers[peer].fd);
    p->peers[peer].fd = -1;
    p->stats.unavailable++;
    return BN_EIO;
}

/* ---- receiving --------------------------------------------------------- */

/* The record at buf + head if one is whole there: its lengths; 0 if more
 * bytes are needed; -1 if the bytes there cannot start a record. */
static int s_frame(const bn_refpipe_t *p, size_t *hl_out, size_t *rl_out)
{
    size_t have = p->tail - p->head;
    const uint8_t *b = p->buf + p->head;
    if (have < 4) {
        /* a prefix of the magic may still become one */
        uint32_t magic = S_MAGIC;
        return memcmp(b, &magic, have) == 0 ? 0 : -1;
    }
    uint32_t magic;
    memcpy(&magic, b, 4);
    if (magic != S_MAGIC)
        return -1;
    if (have < S_HEAD)
        return 0;
    uint16_t hl, rl;
    memcpy(&hl, b + 4, 2);
    memcpy(&rl, b + 6, 2);
    if (hl == 0 || rl == 0 || S_HEAD + (size_t) hl + rl > BN_REFPIPE_RECORD_MAX)
        return -1;
    if (have < S_HEAD + (size_t) hl + rl)
        return 0;
    *hl_out = hl;
    *rl_out = rl;
    return 1;
}

int bn_refpipe_recv(bn_refpipe_t *p, bn_msg_t **msg)
{
    *msg = NULL;
    if (!p)
        return BN_EARG;
    for (;;) {
        size_t hl = 0, rl = 0;
        int f = p->tail > p->head ? s_frame(p, &hl, &rl) : 0;
        if (f < 0) {                        /* not a record: skip a byte */
            p->head++;
            p->stats.bad_bytes++;
            continue;
        }
        if (f > 0) {
            const uint8_t *b = p->buf + p->head;
            const void *frames[2] = { b + S_HEAD, b + S_HEAD + hl };
            size_t lens[2] = { hl, rl };
            bn_msg_t *m = bn_msg_new(2, frames, lens, BN_AUTH_NONE, false);
            if (!m)
                return BN_ENOMEM;           /* the record stays; tried again */
            p->head += S_HEAD + hl + rl;
            p->stats.received++;
            *msg = m;
            return BN_OK;
        }
        /* need more bytes: move the partial record to the front, read */
        size_t left = p->tail - p->head;
        memmove(p->buf, p->buf + p->head, left);
        p->head = 0;
        p->tail = left;
        ssize_t r;
        do
            r = read(p->fd, p->buf + p->tail, sizeof p->buf - p->tail);
        while (r < 0 && errno == EINTR);
        if (r <= 0)
            return BN_ETIMEOUT;             /* EAGAIN: nothing pending now */
        p->tail += (size_t) r;
    }
}

const bn_refpipe_stats_t *bn_refpipe_stats(const bn_refpipe_t *p)
{
    return &p->stats;
}
