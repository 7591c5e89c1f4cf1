/*  shm.c -- a node's ring of model slots and its reads of the peers' rings;
 *  see shm.h.
 *
 *  File layout (host byte order):
 *      [0, S_PAGE)        file header: magic, version, slots, payload bytes,
 *                         swarm id, owner id, generation
 *      slot i at S_PAGE + i * stride, stride = page-rounded S_SLOT_HDR + len:
 *          seq u64 | round u64 | epoch u32 | len u32 | (to S_SLOT_HDR) | payload
 *  Writer: seq + 1 (odd), payload, round / epoch / len, seq + 2 (even), each a
 *  pwrite, a fence between them.  Reader: slot header (seq, round, epoch,
 *  len), payload, seq again; a fence between the reads.  The kernel's page
 *  cache is coherent and a syscall completes its copy before it returns, so
 *  with the fences, a reader that sees the same even seq before and after
 *  its copy read none of a later write: the writer makes seq odd before it
 *  touches anything else of the slot.  Invariants: peers[j].fd is -1 or an
 *  open regular file whose header was valid for peer j when opened, with
 *  generation peers[j].gen; own_fd is -1 unless publishing.
 *
 *  Leftover rings.  The owner holds flock(LOCK_EX) on its ring for as long
 *  as it lives; the kernel drops the lock when the process dies, however it
 *  dies.  So a ring nobody holds locked is a dead node's: a node that
 *  creates its ring first removes every such byznode-*.ring of ours (this
 *  version, our user) in the same directory, whatever its swarm, so that
 *  SIGKILLed swarms do not pile up in a tmpfs (RAM) until the next boot.
 *  Creating and sweeping both hold flock(LOCK_EX) on the directory, so a
 *  sweep never sees a ring between its creation and its lock, and never
 *  removes the new ring of a node restarting at the same moment (the name
 *  is checked to still be the inode it locked, under the directory lock).
 *  The owner writes its header only once it holds its ring's lock, so a ring
 *  with a valid header and no lock is dead even without the directory lock.
 *  A ring of another version (no lock protocol) is never touched.  A
 *  removed ring's reference FIFO (refpipe.h: same name, ".refs") goes with
 *  it.
 */
#include "shm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "rng.h"

#define S_PAGE      4096u
#define S_SLOT_HDR  64u
#define S_MAGIC     0x314d48534e5a4242ull   /* "BBZNSHM1" */
#define S_VERSION   2u                      /* 2: the owner holds a flock */
#define S_TMPFS     0x01021994              /* TMPFS_MAGIC, linux/magic.h */
#define S_FALLBACK  "/dev/shm"

typedef struct {
    uint64_t magic;
    uint32_t version, slots;
    uint64_t len, swarm_id;
    uint32_t id, pad;
    uint64_t gen;
} s_file_hdr_t;

typedef struct {
    uint64_t seq, round;
    uint32_t epoch, len;
} s_slot_hdr_t;

typedef struct {
    int      fd;                /* -1: not open */
    uint64_t gen;               /* of the open file */
} s_peer_t;

struct bn_shm_t {
    const bn_swarm_t *swarm;    /* borrowed */
    uint32_t  self;
    size_t    len;              /* payload bytes of every slot, every node */
    size_t    stride;           /* bytes per slot */
    int       own_fd;           /* our ring, -1 when not publishing */
    char      own_path[BN_SHM_PATH_MAX];
    uint64_t  gen;              /* our ring's generation */
    uint64_t  seq[BN_SHM_SLOTS];/* our slots' sequence numbers (even) */
    uint64_t  next;             /* slot of the next publish, mod BN_SHM_SLOTS */
    s_peer_t *peers;            /* n */
    void    (*hook)(void *);    /* tests: after the copy */
    void     *hook_ctx;
    bn_shm_stats_t stats;
};

/* ---- names, references ------------------------------------------------- */

static const char *const s_mode_names[BN_SHM_MODE_COUNT] = { "auto", "off", "rings" };

const char *bn_shm_mode_name(bn_shm_mode_t m)
{
    return (unsigned) m < BN_SHM_MODE_COUNT ? s_mode_names[m] : NULL;
}

int bn_shm_mode_parse(const char *s, bn_shm_mode_t *m)
{
    for (int k = 0; k < BN_SHM_MODE_COUNT; k++)
        if (strcmp(s, s_mode_names[k]) == 0) {
            *m = (bn_shm_mode_t) k;
            return BN_OK;
        }
    return BN_EARG;
}

void bn_shm_ref_encode(const bn_shm_ref_t *ref, uint8_t out[BN_SHM_REF_LEN])
{
    memcpy(out, &ref->gen, 8);
    memcpy(out + 8, &ref->seq, 8);
    memcpy(out + 16, &ref->slot, 4);
    memcpy(out + 20, &ref->len, 4);
}

bool bn_shm_ref_decode(const void *buf, size_t len, bn_shm_ref_t *ref)
{
    if (!buf || len != BN_SHM_REF_LEN)
        return false;
    const uint8_t *b = buf;
    memcpy(&ref->gen, b, 8);
    memcpy(&ref->seq, b + 8, 8);
    memcpy(&ref->slot, b + 16, 4);
    memcpy(&ref->len, b + 20, 4);
    return true;
}

/* ---- paths ------------------------------------------------------------- */

static uint32_t s_fnv32(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t) *s) * 16777619u;
    return h;
}

int bn_shm_path(const char *endpoint, uint64_t swarm_id, uint32_t id, char *out, size_t cap)
{
    if (strncmp(endpoint, "ipc://", 6) != 0)
        return BN_EARG;
    char dir[BN_ENDPOINT_MAX];
    snprintf(dir, sizeof dir, "%s", endpoint + 6);
    char *slash = strrchr(dir, '/');
    if (dir[0] == '@' || !slash)            /* abstract socket, or a bare name */
        snprintf(dir, sizeof dir, "%s", dir[0] == '@' ? S_FALLBACK : ".");
    else if (slash == dir)
        dir[1] = 0;                         /* "/name": the root */
    else
        *slash = 0;
    struct statfs fs;
    if (statfs(dir, &fs) != 0 || fs.f_type != S_TMPFS)
        snprintf(dir, sizeof dir, "%s", S_FALLBACK);
    int w = snprintf(out, cap, "%s/byznode-%016llx-%u-%08x.ring", dir,
                     (unsigned long long) swarm_id, id, s_fnv32(endpoint));
    return w > 0 && (size_t) w < cap ? BN_OK : BN_EARG;
}

/* ---- whole reads and writes -------------------------------------------- */

static bool s_pwrite_all(int fd, const void *buf, size_t n, off_t off)
{
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t) w;
        off += w;
    }
    return true;
}

/* True only if all n bytes were read (a short file is not). */
static bool s_pread_all(int fd, void *buf, size_t n, off_t off)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = pread(fd, p, n, off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        p += r;
        n -= (size_t) r;
        off += r;
    }
    return true;
}

static off_t s_slot_off(const bn_shm_t *s, uint32_t slot)
{
    return (off_t) S_PAGE + (off_t) slot * (off_t) s->stride;
}

/* ---- the own ring ------------------------------------------------------ */

/* flock(LOCK_EX | LOCK_NB) on the directory, retried with sleeps of 1 ms
 * doubling to 64 ms, for about 5 s in all (another node creating or
 * sweeping holds it for a few milliseconds; 300 starting at once queue for
 * it).  Not a blocking flock: anyone who can open the directory can lock it,
 * and a node must start anyway.  -1 when it cannot be had: the caller goes on
 * without it (no sweep; its own create stays safe, see above). */
static int s_lock_dir(const char *dir)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -1;
    long waited_ms = 0;
    for (long ms = 1; waited_ms < 5000; waited_ms += ms, ms = ms < 64 ? 2 * ms : 64) {
        if (flock(dfd, LOCK_EX | LOCK_NB) == 0)
            return dfd;
        if (errno != EWOULDBLOCK && errno != EINTR)
            break;
        struct timespec ts = { 0, ms * 1000000 };
        nanosleep(&ts, NULL);
    }
    close(dfd);
    return -1;
}

/* Is `name` a ring of a dead owner that we may remove?  Only a regular
 * file of ours with this version's header, and nobody holding its lock. */
static bool s_dead_ring(int dfd, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(name, "byznode-", 8) != 0 || n < 13 || strcmp(name + n - 5, ".ring") != 0)
        return false;
    int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return false;
    struct stat st, now;
    s_file_hdr_t fh;
    bool dead = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid()
                && s_pread_all(fd, &fh, sizeof fh, 0) && fh.magic == S_MAGIC
                && fh.version == S_VERSION && flock(fd, LOCK_EX | LOCK_NB) == 0
                && fstatat(dfd, name, &now, AT_SYMLINK_NOFOLLOW) == 0
                && now.st_ino == st.st_ino && now.st_dev == st.st_dev;
    close(fd);
    return dead;
}

/* Removes the dead owners' rings in dir (the directory lock held); how many. */
static unsigned s_sweep(int dfd)
{
    int d2 = dup(dfd);
    DIR *dir = d2 >= 0 ? fdopendir(d2) : NULL;
    if (!dir) {
        if (d2 >= 0)
            close(d2);
        return 0;
    }
    unsigned removed = 0;
    for (struct dirent *e; (e = readdir(dir)) != NULL;)
        if (s_dead_ring(dfd, e->d_name) && unlinkat(dfd, e->d_name, 0) == 0) {
            removed++;
            /* and its reference FIFO (refpipe.h), if it left one */
            char fifo[NAME_MAX + 1];
            size_t n = strlen(e->d_name);
            struct stat st;
            if (n < sizeof fifo) {
                memcpy(fifo, e->d_name, n - 5);
                memcpy(fifo + n - 5, ".refs", 6);
                if (fstatat(dfd, fifo, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISFIFO(st.st_mode)
                    && st.st_uid == geteuid())
                    unlinkat(dfd, fifo, 0);
            }
        }
    closedir(dir);
    return removed;
}

static int s_create(bn_shm_t *s, char *err, size_t errlen)
{
    const char *ep = s->swarm->nodes[s->self].endpoint;
    if (bn_shm_path(ep, s->swarm->swarm_id, s->self, s->own_path, sizeof s->own_path) != BN_OK)
        return bn_fail(err, errlen, BN_EARG, "%s: not an ipc:// endpoint with a short path", ep);
    char dir[BN_SHM_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", s->own_path);
    *strrchr(dir, '/') = 0;                 /* bn_shm_path always puts a directory */
    int dfd = s_lock_dir(dir[0] ? dir : "/");
    if (dfd >= 0) {
        unsigned swept = s_sweep(dfd);
        if (swept)
            BN_INFO("same-host models: removed %u ring(s) of dead nodes in %s", swept, dir);
    }
    /* A ring a killed run of this node left goes: readers see a new generation. */
    unlink(s->own_path);
    int fd = open(s->own_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        unlink(s->own_path);
        fd = -1;
    }
    if (fd < 0) {
        int e = errno;
        if (dfd >= 0)
            close(dfd);
        return bn_fail(err, errlen, BN_EIO, "cannot create %s: %s", s->own_path, strerror(e));
    }
    off_t size = s_slot_off(s, BN_SHM_SLOTS);
    int rc = posix_fallocate(fd, 0, size);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    s->gen = bn_mix64(((uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec)
                      ^ ((uint64_t) getpid() << 32) ^ s->self) | 1u;
    s_file_hdr_t fh = { S_MAGIC, S_VERSION, BN_SHM_SLOTS, s->len, s->swarm->swarm_id, s->self, 0,
                        s->gen };
    bool ok = rc == 0 && s_pwrite_all(fd, &fh, sizeof fh, 0);
    int e = errno;
    if (!ok)
        unlink(s->own_path);
    if (dfd >= 0)
        close(dfd);                         /* drops the directory lock */
    if (!ok) {
        close(fd);
        return bn_fail(err, errlen, BN_EIO, "cannot allocate %lld bytes in %s: %s",
                       (long long) size, s->own_path, strerror(rc ? rc : e));
    }
    s->own_fd = fd;
    BN_INFO("same-host models: ring %s of %d x %zu bytes", s->own_path, BN_SHM_SLOTS, s->stride);
    return BN_OK;
}

bn_shm_t *bn_shm_new(const bn_swarm_t *swarm, uint32_t self, size_t len, bool publish,
                     char *err, size_t errlen)
{
    if (!swarm || self >= swarm->n || len == 0 || len > UINT32_MAX)
        return NULL;
    bn_shm_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->swarm = swarm;
    s->self = self;
    s->len = len;
    s->stride = (S_SLOT_HDR + len + S_PAGE - 1) / S_PAGE * S_PAGE;
    s->own_fd = -1;
    s->peers = malloc(swarm->n * sizeof *s->peers);
    if (!s->peers) {
        free(s);
        return NULL;
    }
    for (uint32_t j = 0; j < swarm->n; j++)
        s->peers[j] = (s_peer_t) { -1, 0 };
    if (err && errlen)
        err[0] = 0;
    if (publish && s_create(s, err, errlen) != BN_OK)
        BN_WARN("same-host models go through the sockets: %s", err);
    return s;
}

void bn_shm_destroy(bn_shm_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bn_shm_t *s = *self_p;
    for (uint32_t j = 0; j < s->swarm->n; j++)
        if (s->peers[j].fd >= 0)
            close(s->peers[j].fd);
    if (s->own_fd >= 0) {
        close(s->own_fd);
        unlink(s->own_path);
    }
    free(s->peers);
    free(s);
    *self_p = NULL;
}

bool bn_shm_publishing(const bn_shm_t *s)
{
    return s && s->own_fd >= 0;
}

bool bn_shm_same_host(const bn_shm_t *s, uint32_t peer)
{
    return s && peer < s->swarm->n && strncmp(s->swarm->nodes[peer].endpoint, "ipc://", 6) == 0;
}

int bn_shm_publish(bn_shm_t *s, uint32_t epoch, uint64_t round, const void *payload,
                   bn_shm_ref_t *ref)
{
    if (!bn_shm_publishing(s))
        return BN_EIO;
    uint32_t slot = (uint32_t) (s->next++ % BN_SHM_SLOTS);
    off_t off = s_slot_off(s, slot);
    uint64_t odd = s->seq[slot] + 1, even = s->seq[slot] + 2;
    s_slot_hdr_t sh = { even, round, epoch, (uint32_t) s->len };
    s->seq[slot] = even;        /* even if a write fails: never reuse a number */
    if (!s_pwrite_all(s->own_fd, &odd, sizeof odd, off))
        return BN_EIO;
    atomic_thread_fence(memory_order_seq_cst);
    if (!s_pwrite_all(s->own_fd, payload, s->len, off + S_SLOT_HDR)
        || !s_pwrite_all(s->own_fd, &sh.round, sizeof sh - sizeof sh.seq, off + sizeof sh.seq))
        return BN_EIO;
    atomic_thread_fence(memory_order_seq_cst);
    if (!s_pwrite_all(s->own_fd, &even, sizeof even, off))
        return BN_EIO;
    *ref = (bn_shm_ref_t) { s->gen, even, slot, (uint32_t) s->len };
    s->stats.published++;
    return BN_OK;
}

/* ---- reading a peer's ring --------------------------------------------- */

/* (Re)opens peer's ring.  Never blocks (O_NONBLOCK: a FIFO in its place
 * would wait for a writer), never follows a symlink in the last component,
 * reads nothing but a regular file whose header is the one peer's ring must
 * have.  True with peers[peer] set; false with it closed. */
static bool s_open_peer(bn_shm_t *s, uint32_t peer)
{
    s_peer_t *p = &s->peers[peer];
    if (p->fd >= 0)
        close(p->fd);
    *p = (s_peer_t) { -1, 0 };
    char path[BN_SHM_PATH_MAX];
    if (bn_shm_path(s->swarm->nodes[peer].endpoint, s->swarm->swarm_id, peer, path, sizeof path) != BN_OK)
        return false;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return false;
    struct stat st;
    s_file_hdr_t fh;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || !s_pread_all(fd, &fh, sizeof fh, 0)
        || fh.magic != S_MAGIC || fh.version != S_VERSION || fh.slots != BN_SHM_SLOTS
        || fh.len != s->len || fh.swarm_id != s->swarm->swarm_id || fh.id != peer) {
        close(fd);
        return false;
    }
    *p = (s_peer_t) { fd, fh.gen };
    return true;
}

static bn_drop_reason_t s_fail(uint64_t *counter)
{
    (*counter)++;
    return BN_DROP_SHM;
}

bn_drop_reason_t bn_shm_read(bn_shm_t *s, uint32_t peer, const bn_wire_header_t *h,
                             const bn_shm_ref_t *ref, bn_buf_t **out)
{
    *out = NULL;
    if (ref->len != s->len || (uint64_t) h->dim * 4u != s->len) {
        s->stats.unreadable++;
        return BN_DROP_DIM;
    }
    if (peer >= s->swarm->n || ref->slot >= BN_SHM_SLOTS || (ref->seq & 1u) || ref->seq == 0)
        return s_fail(&s->stats.unreadable);
    s_peer_t *p = &s->peers[peer];
    if ((p->fd < 0 || p->gen != ref->gen) && !s_open_peer(s, peer))
        return s_fail(&s->stats.unreadable);
    if (p->gen != ref->gen)
        return s_fail(&s->stats.stale);     /* a ring the peer no longer has */
    off_t off = s_slot_off(s, ref->slot);
    s_slot_hdr_t sh;
    if (!s_pread_all(p->fd, &sh, sizeof sh, off))
        return s_fail(&s->stats.unreadable);
    if (sh.seq != ref->seq)
        return s_fail(sh.seq & 1u ? &s->stats.torn : &s->stats.stale);
    if (sh.round != h->round || sh.epoch != h->epoch || sh.len != ref->len)
        return s_fail(&s->stats.stale);
    void *data;
    bn_buf_t *buf = bn_buf_new(s->len, &data);
    if (!buf)
        return s_fail(&s->stats.unreadable);
    atomic_thread_fence(memory_order_seq_cst);
    bool whole = s_pread_all(p->fd, data, s->len, off + S_SLOT_HDR);
    atomic_thread_fence(memory_order_seq_cst);
    if (s->hook)
        s->hook(s->hook_ctx);
    uint64_t again = 0;
    if (!whole || !s_pread_all(p->fd, &again, sizeof again, off)) {
        bn_buf_release(&buf);
        return s_fail(&s->stats.unreadable);
    }
    if (again != sh.seq) {
        bn_buf_release(&buf);
        return s_fail(&s->stats.torn);
    }
    *out = buf;
    s->stats.received++;
    return BN_DROP_NONE;
}

bn_drop_reason_t bn_shm_resolve(bn_shm_t *s, const bn_msg_t *msg, bn_msg_t **out, uint32_t *blame)
{
    *out = NULL;
    *blame = bn_msg_auth(msg);
    if (bn_msg_oversize(msg) || bn_msg_count(msg) != 2)
        return BN_DROP_NONE;
    size_t hlen, rlen;
    const void *hb = bn_msg_frame(msg, 0, &hlen);
    const void *rb = bn_msg_frame(msg, 1, &rlen);
    bn_wire_header_t h;
    if (!hb || bn_wire_decode(hb, hlen, &h) != BN_DROP_NONE || h.kind != BN_MSG_MODEL_SHM)
        return BN_DROP_NONE;
    uint32_t auth = bn_msg_auth(msg);
    if (h.sender >= s->swarm->n || h.sender == s->self || (auth != BN_AUTH_NONE && auth != h.sender))
        return BN_DROP_NONE;                /* admission drops it (kind) */
    *blame = h.sender;
    bn_shm_ref_t ref;
    if (!bn_shm_ref_decode(rb, rlen, &ref) || !bn_shm_same_host(s, h.sender))
        return s_fail(&s->stats.unreadable);
    bn_buf_t *buf = NULL;
    bn_drop_reason_t why = bn_shm_read(s, h.sender, &h, &ref, &buf);
    if (why != BN_DROP_NONE)
        return why;
    h.kind = BN_MSG_MODEL;
    uint8_t mb[BN_WIRE_HEADER_MAX];
    size_t mlen = 0;
    if (bn_wire_encode(&h, mb, sizeof mb, &mlen) != BN_OK
        || !(*out = bn_msg_wrap(mb, mlen, &buf, auth))) {
        bn_buf_release(&buf);
        s->stats.received--;
        return s_fail(&s->stats.unreadable);
    }
    return BN_DROP_NONE;
}

const bn_shm_stats_t *bn_shm_stats(const bn_shm_t *s)
{
    return &s->stats;
}

void bn_shm_set_copy_hook(bn_shm_t *s, void (*fn)(void *ctx), void *ctx)
{
    s->hook = fn;
    s->hook_ctx = ctx;
}
