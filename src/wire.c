/*  wire.c -- encoding, strict decoding and validation of byznode message headers.
 *
 *  The header is a MessagePack map of short string keys to unsigned integers
 *  (docs/protocol.md, "Header frame"):
 *
 *      "v" version   "k" kind   "s" swarm id   "f" sender (from)   "e" epoch
 *      "r" round     "t" topology fingerprint  "c" configuration fingerprint
 *      "dt" dtype    "d" dim   "o" origin
 *
 *  Invariants:
 *  - Encoding never allocates: msgpack_packer writes into the caller's buffer
 *    through a bounded write callback.
 *  - Decoding is a hand-written, non-recursive scanner.  Every read is
 *    bounds-checked against `len`; nested values under unknown keys are
 *    skipped with a counter of pending objects, never by recursion, and the
 *    counter can never exceed the bytes left (each object takes >= 1 byte).
 *  - Validation reads the payload through memcpy, so it may be unaligned, and
 *    interprets it as little-endian float32 whatever the host's byte order.
 */
#include "wire.h"
#include "clone.h"

#include <msgpack.h>
#include <string.h>

/* One row per header key: its wire name, the largest value it may hold, and
 * where the decoded value goes. */
enum { K_V, K_K, K_S, K_F, K_E, K_R, K_T, K_C, K_DT, K_D, K_O, K_COUNT };

static const struct {
    const char *name;
    uint8_t     name_len;
    uint64_t    max;
} s_keys[K_COUNT] = {
    [K_V]  = { "v",  1, UINT32_MAX },
    [K_K]  = { "k",  1, UINT32_MAX },
    [K_S]  = { "s",  1, UINT64_MAX },
    [K_F]  = { "f",  1, UINT32_MAX },
    [K_E]  = { "e",  1, UINT32_MAX },
    [K_R]  = { "r",  1, UINT64_MAX },
    [K_T]  = { "t",  1, UINT64_MAX },
    [K_C]  = { "c",  1, UINT64_MAX },
    [K_DT] = { "dt", 2, UINT32_MAX },
    [K_D]  = { "d",  1, UINT32_MAX },
    [K_O]  = { "o",  1, UINT32_MAX },
};

static const char *const s_drop_names[BN_DROP_COUNT] = {
    [BN_DROP_NONE]         = "none",
    [BN_DROP_FRAMES]       = "frames",
    [BN_DROP_HEADER]       = "header",
    [BN_DROP_VERSION]      = "version",
    [BN_DROP_KIND]         = "kind",
    [BN_DROP_SWARM]        = "swarm",
    [BN_DROP_SENDER]       = "sender",
    [BN_DROP_AUTH]         = "auth",
    [BN_DROP_DTYPE]        = "dtype",
    [BN_DROP_DIM]          = "dim",
    [BN_DROP_NONFINITE]    = "nonfinite",
    [BN_DROP_STALE]        = "stale",
    [BN_DROP_DUPLICATE]    = "duplicate",
    [BN_DROP_FUTURE]       = "future",
    [BN_DROP_NOT_NEIGHBOR] = "not_neighbor",
    [BN_DROP_TOPOLOGY]     = "topology",
    [BN_DROP_CONFIG]       = "config",
    [BN_DROP_SIZE]         = "size",
    [BN_DROP_SHM]          = "shm",
};

const char *bn_drop_reason_name(bn_drop_reason_t r)
{
    if ((unsigned) r >= BN_DROP_COUNT)
        return "unknown";
    return s_drop_names[r];
}

/* ------------------------------------------------------------------ encode */

typedef struct {
    uint8_t *buf;
    size_t   cap;
    size_t   len;
    bool     overflow;
} s_sink_t;

static int s_sink_write(void *data, const char *src, size_t n)
{
    s_sink_t *sink = data;
    if (sink->overflow || n > sink->cap - sink->len) {
        sink->overflow = true;
        return -1;
    }
    memcpy(sink->buf + sink->len, src, n);
    sink->len += n;
    return 0;
}

static int s_pack_key(msgpack_packer *pk, int key)
{
    if (msgpack_pack_str(pk, s_keys[key].name_len) != 0)
        return -1;
    return msgpack_pack_str_body(pk, s_keys[key].name, s_keys[key].name_len);
}

int bn_wire_encode(const bn_wire_header_t *h, uint8_t *buf, size_t cap, size_t *len)
{
    if (!h || !buf || !len)
        return BN_EARG;
    s_sink_t sink = { .buf = buf, .cap = cap, .len = 0, .overflow = false };
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sink, s_sink_write);

    const uint64_t values[K_COUNT] = {
        [K_V] = h->version, [K_K] = h->kind, [K_S] = h->swarm_id, [K_F] = h->sender,
        [K_E] = h->epoch, [K_R] = h->round, [K_T] = h->topology, [K_C] = h->config, [K_DT] = h->dtype,
        [K_D] = h->dim, [K_O] = h->origin,
    };
    int rc = msgpack_pack_map(&pk, K_COUNT);
    for (int k = 0; rc == 0 && k < K_COUNT; k++) {
        rc = s_pack_key(&pk, k);
        if (rc == 0)
            rc = msgpack_pack_uint64(&pk, values[k]);   /* smallest uint form */
    }
    if (rc != 0 || sink.overflow)
        return BN_EARG;
    *len = sink.len;
    return BN_OK;
}

/* ------------------------------------------------------------------ decode */

typedef struct {
    const uint8_t *p;    /* next byte                        */
    size_t         left; /* bytes from p to the end of input */
} s_cursor_t;

/* Reads an n-byte big-endian unsigned integer (n <= 8).  False if truncated. */
static bool s_read_be(s_cursor_t *c, size_t n, uint64_t *out)
{
    if (c->left < n)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | c->p[i];
    c->p += n;
    c->left -= n;
    *out = v;
    return true;
}

static bool s_skip_bytes(s_cursor_t *c, uint64_t n)
{
    if (c->left < n)
        return false;
    c->p += n;
    c->left -= (size_t) n;
    return true;
}

/* Reads one MessagePack object header.  For containers *children gets the
 * number of objects it contains (2 per map entry); for everything else the
 * object's body is consumed and *children = 0.  False if truncated or if the
 * byte is the reserved 0xc1. */
static bool s_skip_one(s_cursor_t *c, uint64_t *children)
{
    uint64_t n = 0;
    *children = 0;
    if (c->left < 1)
        return false;
    uint8_t b = *c->p++;
    c->left--;
    if (b <= 0x7f || b >= 0xe0)                  /* positive / negative fixint */
        return true;
    if (b >= 0x80 && b <= 0x8f) {                /* fixmap */
        *children = 2u * (uint64_t) (b & 0x0f);
        return true;
    }
    if (b >= 0x90 && b <= 0x9f) {                /* fixarray */
        *children = b & 0x0f;
        return true;
    }
    if (b >= 0xa0 && b <= 0xbf)                  /* fixstr */
        return s_skip_bytes(c, b & 0x1f);
    switch (b) {
    case 0xc0: case 0xc2: case 0xc3:             /* nil, false, true */
        return true;
    case 0xc4: case 0xd9:                        /* bin8, str8 */
        return s_read_be(c, 1, &n) && s_skip_bytes(c, n);
    case 0xc5: case 0xda:                        /* bin16, str16 */
        return s_read_be(c, 2, &n) && s_skip_bytes(c, n);
    case 0xc6: case 0xdb:                        /* bin32, str32 */
        return s_read_be(c, 4, &n) && s_skip_bytes(c, n);
    case 0xc7:                                   /* ext8: len, type, data */
        return s_read_be(c, 1, &n) && s_skip_bytes(c, 1 + n);
    case 0xc8:
        return s_read_be(c, 2, &n) && s_skip_bytes(c, 1 + n);
    case 0xc9:
        return s_read_be(c, 4, &n) && s_skip_bytes(c, 1 + n);
    case 0xca: case 0xce: case 0xd2:             /* float32, uint32, int32 */
        return s_skip_bytes(c, 4);
    case 0xcb: case 0xcf: case 0xd3:             /* float64, uint64, int64 */
        return s_skip_bytes(c, 8);
    case 0xcc: case 0xd0:                        /* uint8, int8 */
        return s_skip_bytes(c, 1);
    case 0xcd: case 0xd1:                        /* uint16, int16 */
        return s_skip_bytes(c, 2);
    case 0xd4: return s_skip_bytes(c, 2);        /* fixext 1: type + 1 */
    case 0xd5: return s_skip_bytes(c, 3);
    case 0xd6: return s_skip_bytes(c, 5);
    case 0xd7: return s_skip_bytes(c, 9);
    case 0xd8: return s_skip_bytes(c, 17);
    case 0xdc:                                   /* array16 */
        if (!s_read_be(c, 2, &n)) return false;
        *children = n;
        return true;
    case 0xdd:                                   /* array32 */
        if (!s_read_be(c, 4, &n)) return false;
        *children = n;
        return true;
    case 0xde:                                   /* map16 */
        if (!s_read_be(c, 2, &n)) return false;
        *children = 2 * n;
        return true;
    case 0xdf:                                   /* map32 */
        if (!s_read_be(c, 4, &n)) return false;
        *children = 2 * n;
        return true;
    default:                                     /* 0xc1: never used */
        return false;
    }
}

/* Skips one complete object, nested containers included, without recursion.
 * Every pending object needs at least one byte, so a count larger than the
 * bytes left is rejected at once (no overflow, no long loop). */
static bool s_skip_object(s_cursor_t *c)
{
    uint64_t pending = 1;
    while (pending > 0) {
        uint64_t children;
        if (!s_skip_one(c, &children))
            return false;
        pending = pending - 1 + children;
        if (pending > c->left)
            return false;
    }
    return true;
}

/* Reads a map or string length prefix.  Returns false if the next object is
 * not of that family or is truncated. */
static bool s_read_map_len(s_cursor_t *c, uint64_t *n)
{
    if (c->left < 1)
        return false;
    uint8_t b = *c->p;
    if (b >= 0x80 && b <= 0x8f) {
        c->p++; c->left--;
        *n = b & 0x0f;
        return true;
    }
    if (b == 0xde || b == 0xdf) {
        c->p++; c->left--;
        return s_read_be(c, b == 0xde ? 2 : 4, n);
    }
    return false;
}

static bool s_read_str(s_cursor_t *c, const uint8_t **s, uint64_t *n)
{
    if (c->left < 1)
        return false;
    uint8_t b = *c->p;
    bool ok;
    if (b >= 0xa0 && b <= 0xbf) {
        c->p++; c->left--;
        *n = b & 0x1f;
        ok = true;
    } else if (b == 0xd9 || b == 0xda || b == 0xdb) {
        c->p++; c->left--;
        ok = s_read_be(c, b == 0xd9 ? 1 : b == 0xda ? 2 : 4, n);
    } else {
        return false;
    }
    if (!ok || c->left < *n)
        return false;
    *s = c->p;
    c->p += *n;
    c->left -= (size_t) *n;
    return true;
}

/* Reads a non-negative integer in any MessagePack integer format (signed
 * forms are accepted when the value is >= 0, for encoders that use them).
 * Returns 1 on success, 0 if the object is of another type or negative (it is
 * then skipped), -1 if the input is truncated or malformed. */
static int s_read_uint(s_cursor_t *c, uint64_t *out)
{
    if (c->left < 1)
        return -1;
    uint8_t b = *c->p;
    uint64_t v;
    size_t width = 0;
    bool is_signed = false;
    if (b <= 0x7f) {
        c->p++; c->left--;
        *out = b;
        return 1;
    }
    switch (b) {
    case 0xcc: width = 1; break;
    case 0xcd: width = 2; break;
    case 0xce: width = 4; break;
    case 0xcf: width = 8; break;
    case 0xd0: width = 1; is_signed = true; break;
    case 0xd1: width = 2; is_signed = true; break;
    case 0xd2: width = 4; is_signed = true; break;
    case 0xd3: width = 8; is_signed = true; break;
    default:
        return s_skip_object(c) ? 0 : -1;
    }
    c->p++; c->left--;
    if (!s_read_be(c, width, &v))
        return -1;
    if (is_signed && (v >> (8 * width - 1)) & 1)
        return 0;                                /* negative */
    *out = v;
    return 1;
}

bn_drop_reason_t bn_wire_decode(const uint8_t *buf, size_t len, bn_wire_header_t *h)
{
    if (!buf || !h || len == 0 || len > BN_WIRE_HEADER_MAX)
        return BN_DROP_HEADER;
    s_cursor_t c = { .p = buf, .left = len };
    uint64_t entries;
    if (!s_read_map_len(&c, &entries))
        return BN_DROP_HEADER;
    if (entries > c.left / 2)                    /* each entry takes >= 2 bytes */
        return BN_DROP_HEADER;

    uint64_t values[K_COUNT] = { 0 };
    bool seen[K_COUNT] = { false };
    bool bad[K_COUNT] = { false };               /* wrong type or out of range */

    for (uint64_t i = 0; i < entries; i++) {
        const uint8_t *key;
        uint64_t key_len;
        if (!s_read_str(&c, &key, &key_len))
            return BN_DROP_HEADER;               /* keys must be strings */
        int k = -1;
        for (int j = 0; j < K_COUNT; j++) {
            if (key_len == s_keys[j].name_len && memcmp(key, s_keys[j].name, key_len) == 0) {
                k = j;
                break;
            }
        }
        if (k < 0) {                             /* unknown key: skip its value */
            if (!s_skip_object(&c))
                return BN_DROP_HEADER;
            continue;
        }
        if (seen[k])
            return BN_DROP_HEADER;               /* duplicate key */
        seen[k] = true;
        uint64_t v = 0;
        int got = s_read_uint(&c, &v);
        if (got < 0)
            return BN_DROP_HEADER;
        if (got == 0 || v > s_keys[k].max)
            bad[k] = true;
        else
            values[k] = v;
    }
    if (c.left != 0)
        return BN_DROP_HEADER;                   /* trailing bytes */

    /* Another version may have other keys: a well-formed map with a valid
     * "v" other than ours is a version drop, whatever its other keys. */
    if (seen[K_V] && !bad[K_V] && values[K_V] != BN_WIRE_VERSION)
        return BN_DROP_VERSION;
    for (int k = 0; k < K_COUNT; k++)
        if (!seen[k] || bad[k])
            return BN_DROP_HEADER;

    h->version  = (uint32_t) values[K_V];
    h->kind     = (uint32_t) values[K_K];
    h->swarm_id = values[K_S];
    h->sender   = (uint32_t) values[K_F];
    h->epoch    = (uint32_t) values[K_E];
    h->round    = values[K_R];
    h->topology = values[K_T];
    h->config   = values[K_C];
    h->dtype    = (uint32_t) values[K_DT];
    h->dim      = (uint32_t) values[K_D];
    h->origin   = (uint32_t) values[K_O];
    return BN_DROP_NONE;
}

/* ---------------------------------------------------------------- validate */

/* Exponent bits all ones <=> NaN or infinity: then (u & 0x7f800000) +
 * 0x00800000 carries into bit 31, and for every finite u it stays below it,
 * so one OR-accumulated word says whether any value was non-finite.  The
 * body has no branch and no compare, so it vectorises on every kernel set;
 * clone.h compiles it for AVX-512, AVX2 and the baseline and the current
 * set picks (it read 4% of a 100-node swarm's CPU time as SSE2).  memcpy
 * makes unaligned input legal. */
static inline BN_CLONE_BODY int s_nonfinite_bytes_body(const unsigned char *p, size_t n)
{
    uint32_t m = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, p + 4 * i, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        u = __builtin_bswap32(u);                /* the wire is little-endian */
#endif
        m |= (u & 0x7f800000u) + 0x00800000u;
    }
    return (int) (m >> 31);
}
BN_CLONE(int, s_nonfinite_bytes, (const unsigned char *p, size_t n), (p, n))

static bool s_all_finite_bytes(const unsigned char *p, size_t n)
{
    return BN_CLONE_PICK(s_nonfinite_bytes)(p, n) == 0;
}

/* Host order: the wire body byte-swaps on a big-endian host, which host
 * floats must not be, so there the plain loop stays. */
bool bn_all_finite(const float *x, size_t n)
{
    if (n == 0)
        return true;
    if (!x)
        return false;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        bad |= (uint32_t) ((u & 0x7f800000u) == 0x7f800000u);
    }
    return bad == 0;
#else
    return s_all_finite_bytes((const unsigned char *) x, n);
#endif
}

bn_drop_reason_t bn_wire_validate(const bn_wire_expect_t *ex, const bn_wire_header_t *h,
                                  const void *payload, size_t payload_len, bool check_finite)
{
    if (!ex || !h)
        return BN_DROP_HEADER;
    if (h->version != BN_WIRE_VERSION)
        return BN_DROP_VERSION;
    if (h->kind != BN_MSG_MODEL && h->kind != BN_MSG_REPORT && h->kind != BN_MSG_COLLUDE)
        return BN_DROP_KIND;
    if (h->swarm_id != ex->swarm_id)
        return BN_DROP_SWARM;
    if (h->sender >= ex->n || h->sender == ex->self)
        return BN_DROP_SENDER;
    if (h->kind == BN_MSG_COLLUDE) {
        if (h->origin >= ex->n)
            return BN_DROP_SENDER;
    } else if (h->origin != h->sender) {
        return BN_DROP_SENDER;
    }
    if (h->kind != BN_MSG_REPORT && h->config != ex->config)
        return BN_DROP_CONFIG;
    if (h->dtype != BN_DTYPE_F32)
        return BN_DROP_DTYPE;
    /* A REPORT may leave the model out (attackers do), and so may a COLLUDE
     * (the relay has no usable model of its origin this round): an empty
     * payload frame, with dim 0 or the model's dim. */
    if ((h->kind == BN_MSG_REPORT || h->kind == BN_MSG_COLLUDE) && payload_len == 0
        && (h->dim == 0 || h->dim == ex->dim))
        return BN_DROP_NONE;
    if (h->dim != ex->dim)
        return BN_DROP_DIM;
    if ((uint64_t) payload_len != (uint64_t) h->dim * 4u)
        return BN_DROP_DIM;
    if (payload_len > 0 && !payload)
        return BN_DROP_DIM;
    if (check_finite && !s_all_finite_bytes(payload, h->dim))
        return BN_DROP_NONFINITE;
    return BN_DROP_NONE;
}

/* ----------------------------------------------------------------- payload */

void bn_wire_payload_encode(const float *x, size_t dim, void *out)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    unsigned char *p = out;
    for (size_t i = 0; i < dim; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        u = __builtin_bswap32(u);
        memcpy(p + 4 * i, &u, 4);
    }
#else
    if (dim)
        memcpy(out, x, dim * 4);
#endif
}

void bn_wire_payload_decode(const void *in, size_t dim, float *out)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    const unsigned char *p = in;
    for (size_t i = 0; i < dim; i++) {
        uint32_t u;
        memcpy(&u, p + 4 * i, 4);
        u = __builtin_bswap32(u);
        memcpy(&out[i], &u, 4);
    }
#else
    if (dim)
        memcpy(out, in, dim * 4);
#endif
}

bool bn_wire_payload_finite(const void *in, size_t dim)
{
    return dim == 0 || s_all_finite_bytes(in, dim);
}

bool bn_wire_payload_native(void)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return false;
#else
    return true;
#endif
}
