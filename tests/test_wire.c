/*  test_wire.c -- header round trips, strict decoding and payload validation of wire.c.
 *
 *  Malformed headers are built byte by byte with a tiny MessagePack writer
 *  below (s_mp_*), so every rejection is tested on exactly the bytes a peer
 *  could send.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "layers.h"
#include "wire.h"

/* ----------------------------------------------------------- helpers */

typedef struct {
    uint8_t b[1024];
    size_t  n;
} s_mp_t;

static void s_mp_byte(s_mp_t *m, uint8_t x) { assert_true(m->n < sizeof m->b); m->b[m->n++] = x; }
static void s_mp_raw(s_mp_t *m, const void *p, size_t n)
{
    assert_true(m->n + n <= sizeof m->b);
    memcpy(m->b + m->n, p, n);
    m->n += n;
}
static void s_mp_be(s_mp_t *m, uint64_t v, int width)
{
    for (int i = width - 1; i >= 0; i--)
        s_mp_byte(m, (uint8_t) (v >> (8 * i)));
}
static void s_mp_str(s_mp_t *m, const char *s)
{
    size_t n = strlen(s);
    assert_true(n < 32);
    s_mp_byte(m, (uint8_t) (0xa0 | n));
    s_mp_raw(m, s, n);
}
/* uint64 always in its 9-byte form (legal, if not the smallest). */
static void s_mp_u64(s_mp_t *m, uint64_t v) { s_mp_byte(m, 0xcf); s_mp_be(m, v, 8); }

#define S_KEYS 11
static const char *const s_key_names[S_KEYS] = { "v", "k", "s", "f", "e", "r", "t", "c", "dt", "d", "o" };

static bn_wire_header_t s_sample(void)
{
    bn_wire_header_t h = {
        .version = BN_WIRE_VERSION, .kind = BN_MSG_MODEL, .swarm_id = 0xfeedfacecafebeefull,
        .sender = 3, .epoch = 2, .round = 41, .topology = 0x0123456789abcdefull,
        .config = 0x5eed5eed00c0ffeeull, .dtype = BN_DTYPE_F32, .dim = 6, .origin = 3,
    };
    return h;
}

static uint64_t s_field(const bn_wire_header_t *h, int k)
{
    const uint64_t v[S_KEYS] = { h->version, h->kind, h->swarm_id, h->sender, h->epoch, h->round,
                             h->topology, h->config, h->dtype, h->dim, h->origin };
    return v[k];
}

/* Writes the sample header as a map with key `skip` left out (-1: none) and
 * `extra` additional entries appended by the caller afterwards. */
static void s_mp_sample(s_mp_t *m, int skip, int extra)
{
    bn_wire_header_t h = s_sample();
    int entries = S_KEYS - (skip >= 0) + extra;
    m->n = 0;
    s_mp_byte(m, (uint8_t) (0x80 | entries));
    for (int k = 0; k < S_KEYS; k++) {
        if (k == skip)
            continue;
        s_mp_str(m, s_key_names[k]);
        s_mp_u64(m, s_field(&h, k));
    }
}

static void s_assert_header_equal(const bn_wire_header_t *a, const bn_wire_header_t *b)
{
    for (int k = 0; k < S_KEYS; k++)
        assert_true(s_field(a, k) == s_field(b, k));
}

static bn_wire_expect_t s_expect(void)
{
    bn_wire_expect_t ex = { .swarm_id = 0xfeedfacecafebeefull, .n = 10, .self = 0, .dim = 6,
                            .config = 0x5eed5eed00c0ffeeull };
    return ex;
}

/* ------------------------------------------------------ round trips */

static void test_round_trip_all_kinds(void **state)
{
    (void) state;
    const uint32_t kinds[3] = { BN_MSG_MODEL, BN_MSG_REPORT, BN_MSG_COLLUDE };
    for (int i = 0; i < 3; i++) {
        bn_wire_header_t h = s_sample(), d;
        h.kind = kinds[i];
        if (h.kind == BN_MSG_COLLUDE)
            h.origin = 7;
        uint8_t buf[BN_WIRE_HEADER_MAX];
        size_t len = 0;
        assert_int_equal(bn_wire_encode(&h, buf, sizeof buf, &len), BN_OK);
        assert_true(len > 0 && len <= BN_WIRE_HEADER_ENCODED_MAX);
        memset(&d, 0xab, sizeof d);
        assert_int_equal(bn_wire_decode(buf, len, &d), BN_DROP_NONE);
        s_assert_header_equal(&h, &d);
    }
}

static void test_round_trip_extremes(void **state)
{
    (void) state;
    /* every integer width boundary of MessagePack: 0, fixint max, uint8..uint64 max */
    const uint64_t edges[] = { 0, 1, 127, 128, 255, 256, 65535, 65536, UINT32_MAX,
                               (uint64_t) UINT32_MAX + 1, UINT64_MAX };
    for (size_t i = 0; i < BN_ARRAY_LEN(edges); i++) {
        uint64_t v64 = edges[i];
        uint32_t v32 = v64 > UINT32_MAX ? UINT32_MAX : (uint32_t) v64;
        bn_wire_header_t h = {
            .version = BN_WIRE_VERSION, .kind = v32, .swarm_id = v64, .sender = v32,
            .epoch = v32, .round = v64, .topology = v64, .config = v64, .dtype = v32, .dim = v32, .origin = v32,
        }, d;
        uint8_t buf[BN_WIRE_HEADER_ENCODED_MAX];
        size_t len = 0;
        assert_int_equal(bn_wire_encode(&h, buf, sizeof buf, &len), BN_OK);
        assert_int_equal(bn_wire_decode(buf, len, &d), BN_DROP_NONE);
        s_assert_header_equal(&h, &d);
        if (v64 == UINT64_MAX) {
            assert_int_equal(len, BN_WIRE_HEADER_ENCODED_MAX - 4);  /* "v" 2 is one byte */
            h.version = UINT32_MAX;                                 /* the bound is tight */
            assert_int_equal(bn_wire_encode(&h, buf, sizeof buf, &len), BN_OK);
            assert_int_equal(len, BN_WIRE_HEADER_ENCODED_MAX);
        }
    }
}

static void test_encode_pinned_bytes(void **state)
{
    (void) state;
    bn_wire_header_t h = {
        .version = 2, .kind = 1, .swarm_id = 7, .sender = 3, .epoch = 0, .round = 5,
        .topology = 9, .config = 4, .dtype = 1, .dim = 10, .origin = 3,
    };
    /* fixmap(11), then "v" 2 "k" 1 "s" 7 "f" 3 "e" 0 "r" 5 "t" 9 "c" 4 "dt" 1 "d" 10 "o" 3 */
    const uint8_t want[] = {
        0x8b, 0xa1, 'v', 0x02, 0xa1, 'k', 0x01, 0xa1, 's', 0x07, 0xa1, 'f', 0x03,
        0xa1, 'e', 0x00, 0xa1, 'r', 0x05, 0xa1, 't', 0x09, 0xa1, 'c', 0x04, 0xa2, 'd', 't', 0x01,
        0xa1, 'd', 0x0a, 0xa1, 'o', 0x03,
    };
    uint8_t buf[64];
    size_t len = 0;
    assert_int_equal(bn_wire_encode(&h, buf, sizeof buf, &len), BN_OK);
    assert_int_equal(len, sizeof want);
    assert_memory_equal(buf, want, sizeof want);

    /* 300 needs uint16 (0xcd 01 2c), 2^32 needs uint64 */
    h.dim = 300;
    h.round = (uint64_t) 1 << 32;
    assert_int_equal(bn_wire_encode(&h, buf, sizeof buf, &len), BN_OK);
    const uint8_t r_want[] = { 0xa1, 'r', 0xcf, 0, 0, 0, 1, 0, 0, 0, 0 };
    const uint8_t d_want[] = { 0xa1, 'd', 0xcd, 0x01, 0x2c };
    assert_non_null(memmem(buf, len, r_want, sizeof r_want));
    assert_non_null(memmem(buf, len, d_want, sizeof d_want));
}

static void test_encode_small_buffer(void **state)
{
    (void) state;
    bn_wire_header_t h = s_sample();
    uint8_t buf[BN_WIRE_HEADER_MAX];
    size_t full = 0, len = 12345;
    assert_int_equal(bn_wire_encode(&h, buf, sizeof buf, &full), BN_OK);
    for (size_t cap = 0; cap < full; cap++) {
        len = 12345;
        memset(buf, 0x5a, sizeof buf);
        assert_int_equal(bn_wire_encode(&h, buf, cap, &len), BN_EARG);
        assert_int_equal(len, 12345);              /* untouched on failure */
        assert_int_equal(buf[cap], 0x5a);          /* nothing written past cap */
    }
    assert_int_equal(bn_wire_encode(&h, buf, full, &len), BN_OK);
    assert_int_equal(len, full);
    assert_int_equal(bn_wire_encode(NULL, buf, full, &len), BN_EARG);
}

/* The header is plain MessagePack: msgpack-c's own unpacker reads it. */
static void test_interop_with_msgpack_c(void **state)
{
    (void) state;
    bn_wire_header_t h = s_sample();
    uint8_t buf[BN_WIRE_HEADER_MAX];
    size_t len = 0;
    assert_int_equal(bn_wire_encode(&h, buf, sizeof buf, &len), BN_OK);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, (const char *) buf, len, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, len);
    assert_int_equal(u.data.type, MSGPACK_OBJECT_MAP);
    assert_int_equal(u.data.via.map.size, S_KEYS);
    for (uint32_t i = 0; i < S_KEYS; i++) {
        const msgpack_object_kv *kv = &u.data.via.map.ptr[i];
        assert_int_equal(kv->key.type, MSGPACK_OBJECT_STR);
        assert_int_equal(kv->val.type, MSGPACK_OBJECT_POSITIVE_INTEGER);
        int k = -1;
        for (int j = 0; j < S_KEYS; j++)
            if (strlen(s_key_names[j]) == kv->key.via.str.size
                && memcmp(s_key_names[j], kv->key.via.str.ptr, kv->key.via.str.size) == 0)
                k = j;
        assert_true(k >= 0);
        assert_true(kv->val.via.u64 == s_field(&h, k));
    }
    msgpack_unpacked_destroy(&u);

    /* and the other way: a header packed by msgpack-c in another key order */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, S_KEYS);
    for (int k = S_KEYS - 1; k >= 0; k--) {
        msgpack_pack_str(&pk, strlen(s_key_names[k]));
        msgpack_pack_str_body(&pk, s_key_names[k], strlen(s_key_names[k]));
        msgpack_pack_uint64(&pk, s_field(&h, k));
    }
    bn_wire_header_t d;
    assert_int_equal(bn_wire_decode((const uint8_t *) sb.data, sb.size, &d), BN_DROP_NONE);
    s_assert_header_equal(&h, &d);
    msgpack_sbuffer_destroy(&sb);
}

/* ------------------------------------------------------ rejections */

static void test_decode_valid_builder(void **state)
{
    (void) state;
    s_mp_t m;
    bn_wire_header_t h = s_sample(), d;
    s_mp_sample(&m, -1, 0);
    assert_int_equal(bn_wire_decode(m.b, m.n, &d), BN_DROP_NONE);
    s_assert_header_equal(&h, &d);
}

static void test_decode_truncated(void **state)
{
    (void) state;
    bn_wire_header_t h = s_sample(), d;
    uint8_t buf[BN_WIRE_HEADER_MAX];
    size_t len = 0;
    assert_int_equal(bn_wire_encode(&h, buf, sizeof buf, &len), BN_OK);
    for (size_t n = 0; n < len; n++) {
        /* copy the prefix to an exact-size heap block so ASan sees any overread */
        uint8_t *p = malloc(n ? n : 1);
        assert_non_null(p);
        memcpy(p, buf, n);
        assert_int_equal(bn_wire_decode(p, n, &d), BN_DROP_HEADER);
        free(p);
    }
    assert_int_equal(bn_wire_decode(NULL, 10, &d), BN_DROP_HEADER);
    assert_int_equal(bn_wire_decode(buf, len, NULL), BN_DROP_HEADER);
}

static void test_decode_garbage(void **state)
{
    (void) state;
    bn_wire_header_t d;
    const uint8_t not_map[][4] = {
        { 0xc1 },                 /* reserved byte */
        { 0x93, 1, 2, 3 },        /* array */
        { 0x01 },                 /* integer */
        { 0xa1, 'v' },            /* string */
        { 0xc0 },                 /* nil */
    };
    const size_t not_map_len[] = { 1, 4, 1, 2, 1 };
    for (size_t i = 0; i < BN_ARRAY_LEN(not_map); i++)
        assert_int_equal(bn_wire_decode(not_map[i], not_map_len[i], &d), BN_DROP_HEADER);

    /* the empty map */
    const uint8_t empty_map[] = { 0x80 };
    assert_int_equal(bn_wire_decode(empty_map, 1, &d), BN_DROP_HEADER);

    /* map32 claiming 4 billion entries: rejected at once */
    const uint8_t huge[] = { 0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'v', 0x01 };
    assert_int_equal(bn_wire_decode(huge, sizeof huge, &d), BN_DROP_HEADER);

    /* random bytes never decode, and never crash */
    bn_rng_t r;
    bn_rng_seed(&r, 99, 1);
    uint8_t buf[BN_WIRE_HEADER_MAX];
    for (int it = 0; it < 20000; it++) {
        size_t n = 1 + bn_rng_below(&r, sizeof buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t) bn_rng_next(&r);
        assert_int_not_equal(bn_wire_decode(buf, n, &d), BN_DROP_NONE);
    }
}

static void test_decode_wrong_types(void **state)
{
    (void) state;
    /* each value in a type other than a non-negative integer */
    const uint8_t bad_values[][5] = {
        { 0xa1, '1' },                   /* string          */
        { 0xff },                        /* -1 fixint       */
        { 0xd0, 0x80 },                  /* int8 -128       */
        { 0xd3, 0xff, 0xff, 0xff, 0xff },/* int64 negative (prefix; rest added below) */
        { 0xca, 0x3f, 0x80, 0x00, 0x00 },/* float32 1.0     */
        { 0xc0 },                        /* nil             */
        { 0xc3 },                        /* true            */
        { 0x91, 0x01 },                  /* [1]             */
        { 0x81, 0xa1, 'x', 0x01 },       /* {"x": 1}        */
    };
    const size_t bad_len[] = { 2, 1, 2, 5, 5, 1, 1, 2, 4 };
    bn_wire_header_t d;
    for (int k = 0; k < S_KEYS; k++) {
        for (size_t i = 0; i < BN_ARRAY_LEN(bad_values); i++) {
            s_mp_t m;
            s_mp_sample(&m, k, 1);
            s_mp_str(&m, s_key_names[k]);
            s_mp_raw(&m, bad_values[i], bad_len[i]);
            if (i == 3) {                /* complete the int64 */
                uint8_t rest[4] = { 0xff, 0xff, 0xff, 0xfe };
                s_mp_raw(&m, rest, 4);
            }
            assert_int_equal(bn_wire_decode(m.b, m.n, &d), BN_DROP_HEADER);
        }
    }
    /* keys must be strings */
    s_mp_t m;
    s_mp_sample(&m, -1, 1);
    s_mp_byte(&m, 0x01);
    s_mp_byte(&m, 0x01);
    assert_int_equal(bn_wire_decode(m.b, m.n, &d), BN_DROP_HEADER);
}

static void test_decode_signed_nonnegative_accepted(void **state)
{
    (void) state;
    /* non-negative values in signed formats are accepted (some encoders use them) */
    s_mp_t m;
    bn_wire_header_t d;
    s_mp_sample(&m, 9, 1);               /* without "d" */
    s_mp_str(&m, "d");
    s_mp_byte(&m, 0xd1);                 /* int16 6 */
    s_mp_be(&m, 6, 2);
    assert_int_equal(bn_wire_decode(m.b, m.n, &d), BN_DROP_NONE);
    assert_int_equal(d.dim, 6);
}

static void test_decode_missing_and_duplicate(void **state)
{
    (void) state;
    bn_wire_header_t d;
    for (int k = 0; k < S_KEYS; k++) {
        s_mp_t m;
        s_mp_sample(&m, k, 0);
        assert_int_equal(bn_wire_decode(m.b, m.n, &d), BN_DROP_HEADER);
        /* missing, replaced by an unknown key */
        s_mp_sample(&m, k, 1);
        s_mp_str(&m, "zz");
        s_mp_byte(&m, 0x01);
        assert_int_equal(bn_wire_decode(m.b, m.n, &d), BN_DROP_HEADER);
        /* duplicate, even with the same value */
        s_mp_sample(&m, -1, 1);
        s_mp_str(&m, s_key_names[k]);
        bn_wire_header_t same = s_sample();
        s_mp_u64(&m, s_field(&same, k));
        assert_int_equal(bn_wire_decode(m.b, m.n, &d), BN_DROP_HEADER);
    }
}

static void test_decode_out_of_range(void **state)
{
    (void) state;
    bn_wire_header_t d;
    const int narrow[] = { 1, 3, 4, 8, 9, 10 };  /* 32-bit fields other than "v" */
    for (size_t i = 0; i < BN_ARRAY_LEN(narrow); i++) {
        s_mp_t m;
        s_mp_sample(&m, narrow[i], 1);
        s_mp_str(&m, s_key_names[narrow[i]]);
        s_mp_u64(&m, (uint64_t) UINT32_MAX + 1);
        assert_int_equal(bn_wire_decode(m.b, m.n, &d), BN_DROP_HEADER);
    }
    /* 64-bit fields take the full range */
    const int wide[] = { 2, 5, 6, 7 };
    for (size_t i = 0; i < BN_ARRAY_LEN(wide); i++) {
        s_mp_t m;
        s_mp_sample(&m, wide[i], 1);
        s_mp_str(&m, s_key_names[wide[i]]);
        s_mp_u64(&m, UINT64_MAX);
        assert_int_equal(bn_wire_decode(m.b, m.n, &d), BN_DROP_NONE);
    }
}

static void test_decode_unknown_keys_skipped(void **state)
{
    (void) state;
    bn_wire_header_t d, h = s_sample();
    s_mp_t m;
    s_mp_sample(&m, -1, 4);
    s_mp_str(&m, "note");
    s_mp_str(&m, "hello");
    s_mp_str(&m, "nest");                 /* {"a": [1, [2, {"b": nil}], 3.0]} */
    const uint8_t nest[] = { 0x81, 0xa1, 'a', 0x93, 0x01, 0x92, 0x02, 0x81, 0xa1, 'b', 0xc0,
                             0xcb, 0x40, 0x08, 0, 0, 0, 0, 0, 0 };
    s_mp_raw(&m, nest, sizeof nest);
    s_mp_str(&m, "bin");
    const uint8_t bin[] = { 0xc4, 0x03, 1, 2, 3 };
    s_mp_raw(&m, bin, sizeof bin);
    s_mp_str(&m, "ext");
    const uint8_t ext[] = { 0xd6, 0x05, 1, 2, 3, 4 };
    s_mp_raw(&m, ext, sizeof ext);
    assert_int_equal(bn_wire_decode(m.b, m.n, &d), BN_DROP_NONE);
    s_assert_header_equal(&h, &d);

    /* deep nesting (no recursion, so no stack limit): 115 nested arrays */
    s_mp_sample(&m, -1, 1);
    s_mp_str(&m, "deep");
    for (int i = 0; i < 115; i++)
        s_mp_byte(&m, 0x91);
    s_mp_byte(&m, 0x00);
    assert_true(m.n <= BN_WIRE_HEADER_MAX);
    assert_int_equal(bn_wire_decode(m.b, m.n, &d), BN_DROP_NONE);
    /* the same with the innermost element missing: truncated */
    assert_int_equal(bn_wire_decode(m.b, m.n - 1, &d), BN_DROP_HEADER);

    /* an unknown value claiming more elements than there are bytes */
    s_mp_sample(&m, -1, 1);
    s_mp_str(&m, "x");
    const uint8_t arr[] = { 0xdd, 0x7f, 0xff, 0xff, 0xff, 0x00 };
    s_mp_raw(&m, arr, sizeof arr);
    assert_int_equal(bn_wire_decode(m.b, m.n, &d), BN_DROP_HEADER);
}

static void test_decode_oversize_and_trailing(void **state)
{
    (void) state;
    bn_wire_header_t d;
    s_mp_t m;
    /* a valid map padded by an unknown string to exactly the limit is fine ... */
    s_mp_sample(&m, -1, 1);
    s_mp_str(&m, "p");
    size_t pad = BN_WIRE_HEADER_MAX - m.n - 2;
    s_mp_byte(&m, 0xd9);
    s_mp_byte(&m, (uint8_t) pad);
    for (size_t i = 0; i < pad; i++)
        s_mp_byte(&m, 'x');
    assert_int_equal(m.n, BN_WIRE_HEADER_MAX);
    assert_int_equal(bn_wire_decode(m.b, m.n, &d), BN_DROP_NONE);
    /* ... one byte more is not */
    m.n = 0;
    s_mp_sample(&m, -1, 1);
    s_mp_str(&m, "p");
    s_mp_byte(&m, 0xd9);
    s_mp_byte(&m, (uint8_t) (pad + 1));
    for (size_t i = 0; i < pad + 1; i++)
        s_mp_byte(&m, 'x');
    assert_int_equal(m.n, BN_WIRE_HEADER_MAX + 1);
    assert_int_equal(bn_wire_decode(m.b, m.n, &d), BN_DROP_HEADER);

    /* trailing bytes after the map */
    s_mp_sample(&m, -1, 0);
    s_mp_byte(&m, 0xc0);
    assert_int_equal(bn_wire_decode(m.b, m.n, &d), BN_DROP_HEADER);
}

static void test_decode_version(void **state)
{
    (void) state;
    bn_wire_header_t h = s_sample(), d;
    uint8_t buf[BN_WIRE_HEADER_MAX];
    size_t len;
    const uint32_t versions[] = { 0, 1, 3, 255, UINT32_MAX };
    for (size_t i = 0; i < BN_ARRAY_LEN(versions); i++) {
        h.version = versions[i];
        assert_int_equal(bn_wire_encode(&h, buf, sizeof buf, &len), BN_OK);
        assert_int_equal(bn_wire_decode(buf, len, &d), BN_DROP_VERSION);
    }
    /* a future version with other keys is still a version drop */
    const uint8_t v2[] = { 0x82, 0xa1, 'v', 0x03, 0xa4, 'b', 'o', 'd', 'y', 0xc0 };
    assert_int_equal(bn_wire_decode(v2, sizeof v2, &d), BN_DROP_VERSION);
    /* but a "v" that is not an integer is a header drop */
    s_mp_t m;
    s_mp_sample(&m, 0, 1);
    s_mp_str(&m, "v");
    s_mp_str(&m, "1");
    assert_int_equal(bn_wire_decode(m.b, m.n, &d), BN_DROP_HEADER);
}

/* ------------------------------------------------------ validation */

static void test_validate_header_fields(void **state)
{
    (void) state;
    bn_wire_expect_t ex = s_expect();
    float payload[6] = { 1, 2, 3, 4, 5, 6 };
    bn_wire_header_t h = s_sample();
    assert_int_equal(bn_wire_validate(&ex, &h, payload, sizeof payload, true), BN_DROP_NONE);

    h = s_sample(); h.version = 1;     /* version 1 had no configuration fingerprint */
    assert_int_equal(bn_wire_validate(&ex, &h, payload, sizeof payload, true), BN_DROP_VERSION);
    h = s_sample(); h.config ^= 1;
    assert_int_equal(bn_wire_validate(&ex, &h, payload, sizeof payload, true), BN_DROP_CONFIG);
    h = s_sample(); h.kind = BN_MSG_COLLUDE; h.config ^= 1;
    assert_int_equal(bn_wire_validate(&ex, &h, payload, sizeof payload, true), BN_DROP_CONFIG);
    h = s_sample(); h.kind = BN_MSG_REPORT; h.config ^= 1;   /* the monitor's to judge */
    assert_int_equal(bn_wire_validate(&ex, &h, payload, sizeof payload, true), BN_DROP_NONE);
    h = s_sample(); h.kind = 0;
    assert_int_equal(bn_wire_validate(&ex, &h, payload, sizeof payload, true), BN_DROP_KIND);
    h = s_sample(); h.kind = 4;
    assert_int_equal(bn_wire_validate(&ex, &h, payload, sizeof payload, true), BN_DROP_KIND);
    h = s_sample(); h.swarm_id ^= 1;
    assert_int_equal(bn_wire_validate(&ex, &h, payload, sizeof payload, true), BN_DROP_SWARM);
    h = s_sample(); h.sender = 10; h.origin = 10;           /* == n */
    assert_int_equal(bn_wire_validate(&ex, &h, payload, sizeof payload, true), BN_DROP_SENDER);
    h = s_sample(); h.sender = UINT32_MAX; h.origin = UINT32_MAX;
    assert_int_equal(bn_wire_validate(&ex, &h, payload, sizeof payload, true), BN_DROP_SENDER);
    h = s_sample(); h.sender = 0; h.origin = 0;             /* == self */
    assert_int_equal(bn_wire_validate(&ex, &h, payload, sizeof payload, true), BN_DROP_SENDER);
    h = s_sample(); h.sender = 9; h.origin = 9;             /* n - 1 is fine */
    assert_int_equal(bn_wire_validate(&ex, &h, payload, sizeof payload, true), BN_DROP_NONE);
    h = s_sample(); h.origin = 4;                           /* MODEL: origin must be sender */
    assert_int_equal(bn_wire_validate(&ex, &h, payload, sizeof payload, true), BN_DROP_SENDER);
    h = s_sample(); h.kind = BN_MSG_COLLUDE; h.origin = 9;  /* COLLUDE: any node */
    assert_int_equal(bn_wire_validate(&ex, &h, payload, sizeof payload, true), BN_DROP_NONE);
    h = s_sample(); h.kind = BN_MSG_COLLUDE; h.origin = 0;  /* even ours: it is what they heard */
    assert_int_equal(bn_wire_validate(&ex, &h, payload, sizeof payload, true), BN_DROP_NONE);
    h = s_sample(); h.kind = BN_MSG_COLLUDE; h.origin = 10;
    assert_int_equal(bn_wire_validate(&ex, &h, payload, sizeof payload, true), BN_DROP_SENDER);
    h = s_sample(); h.dtype = 2;
    assert_int_equal(bn_wire_validate(&ex, &h, payload, sizeof payload, true), BN_DROP_DTYPE);
    h = s_sample(); h.dtype = 0;
    assert_int_equal(bn_wire_validate(&ex, &h, payload, sizeof payload, true), BN_DROP_DTYPE);
    h = s_sample(); h.dim = 5;
    assert_int_equal(bn_wire_validate(&ex, &h, payload, 20, true), BN_DROP_DIM);
    h = s_sample(); h.dim = 7;
    assert_int_equal(bn_wire_validate(&ex, &h, payload, 28, true), BN_DROP_DIM);
    assert_int_equal(bn_wire_validate(NULL, &h, payload, 24, true), BN_DROP_HEADER);
    assert_int_equal(bn_wire_validate(&ex, NULL, payload, 24, true), BN_DROP_HEADER);
}

static void test_validate_payload_length(void **state)
{
    (void) state;
    bn_wire_expect_t ex = s_expect();
    float payload[8] = { 0 };
    bn_wire_header_t h = s_sample();
    const size_t lens[] = { 0, 1, 4, 20, 23, 25, 28, 32 };
    for (size_t i = 0; i < BN_ARRAY_LEN(lens); i++)
        assert_int_equal(bn_wire_validate(&ex, &h, payload, lens[i], true), BN_DROP_DIM);
    assert_int_equal(bn_wire_validate(&ex, &h, payload, 24, true), BN_DROP_NONE);
    assert_int_equal(bn_wire_validate(&ex, &h, NULL, 24, true), BN_DROP_DIM);
    /* REPORT may carry an empty model frame, or a full one, nothing between */
    h.kind = BN_MSG_REPORT;
    assert_int_equal(bn_wire_validate(&ex, &h, NULL, 0, true), BN_DROP_NONE);
    assert_int_equal(bn_wire_validate(&ex, &h, payload, 24, true), BN_DROP_NONE);
    assert_int_equal(bn_wire_validate(&ex, &h, payload, 12, true), BN_DROP_DIM);
    h.dim = 0;                                   /* "no model": dim 0, empty frame */
    assert_int_equal(bn_wire_validate(&ex, &h, NULL, 0, true), BN_DROP_NONE);
    assert_int_equal(bn_wire_validate(&ex, &h, payload, 24, true), BN_DROP_DIM);
    h.dim = 5;
    assert_int_equal(bn_wire_validate(&ex, &h, NULL, 0, true), BN_DROP_DIM);
    h.kind = BN_MSG_COLLUDE;                     /* "the relay has none": the same rule */
    h.origin = 9;
    assert_int_equal(bn_wire_validate(&ex, &h, NULL, 0, true), BN_DROP_DIM);   /* dim 5 */
    h.dim = 0;
    assert_int_equal(bn_wire_validate(&ex, &h, NULL, 0, true), BN_DROP_NONE);
    assert_int_equal(bn_wire_validate(&ex, &h, payload, 24, true), BN_DROP_DIM);
    h.dim = ex.dim;
    assert_int_equal(bn_wire_validate(&ex, &h, NULL, 0, true), BN_DROP_NONE);
    h.kind = BN_MSG_MODEL;                       /* a MODEL always carries its model */
    h.origin = h.sender;
    h.dim = 0;
    assert_int_equal(bn_wire_validate(&ex, &h, NULL, 0, true), BN_DROP_DIM);
    h.dim = ex.dim;
    assert_int_equal(bn_wire_validate(&ex, &h, NULL, 0, true), BN_DROP_DIM);
    /* dim 0 models: an empty frame */
    ex.dim = 0;
    h = s_sample();
    h.dim = 0;
    assert_int_equal(bn_wire_validate(&ex, &h, NULL, 0, true), BN_DROP_NONE);
    /* the largest dim: length must still match, no overflow */
    ex.dim = UINT32_MAX;
    h.dim = UINT32_MAX;
    assert_int_equal(bn_wire_validate(&ex, &h, payload, (size_t) UINT32_MAX * 4u - 4u, true),
                     BN_DROP_DIM);
}

static void test_validate_nonfinite_everywhere(void **state)
{
    (void) state;
    const float bad[3] = { NAN, INFINITY, -INFINITY };
    enum { DIM = 37 };
    bn_wire_expect_t ex = s_expect();
    ex.dim = DIM;
    bn_wire_header_t h = s_sample();
    h.dim = DIM;
    /* one extra byte at the front so that payload can be misaligned by 1, 2 or 3 */
    unsigned char raw[DIM * 4 + 4];
    for (int shift = 0; shift < 4; shift++) {
        unsigned char *p = raw + shift;
        for (int b = 0; b < 3; b++) {
            for (int pos = 0; pos < DIM; pos++) {
                for (int i = 0; i < DIM; i++) {
                    float v = (float) i - 18.5f;
                    memcpy(p + 4 * i, &v, 4);
                }
                assert_int_equal(bn_wire_validate(&ex, &h, p, DIM * 4, true), BN_DROP_NONE);
                memcpy(p + 4 * pos, &bad[b], 4);
                assert_int_equal(bn_wire_validate(&ex, &h, p, DIM * 4, true), BN_DROP_NONFINITE);
                /* without the check the frame is accepted */
                assert_int_equal(bn_wire_validate(&ex, &h, p, DIM * 4, false), BN_DROP_NONE);
            }
        }
    }
}

static void test_validate_wire_bytes_little_endian(void **state)
{
    (void) state;
    /* explicit little-endian bytes: 1.0f, then +inf, as they come off the wire */
    const unsigned char one_inf[8] = { 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x80, 0x7f };
    const unsigned char one_nan[8] = { 0x00, 0x00, 0x80, 0x3f, 0x01, 0x00, 0x80, 0xff };
    const unsigned char one_big[8] = { 0x00, 0x00, 0x80, 0x3f, 0xff, 0xff, 0x7f, 0x7f };
    bn_wire_expect_t ex = s_expect();
    ex.dim = 2;
    bn_wire_header_t h = s_sample();
    h.dim = 2;
    assert_int_equal(bn_wire_validate(&ex, &h, one_inf, 8, true), BN_DROP_NONFINITE);
    assert_int_equal(bn_wire_validate(&ex, &h, one_nan, 8, true), BN_DROP_NONFINITE);
    assert_int_equal(bn_wire_validate(&ex, &h, one_big, 8, true), BN_DROP_NONE);   /* FLT_MAX */
}

static void test_all_finite(void **state)
{
    (void) state;
    const float finite[] = { 0.0f, -0.0f, 1e-45f /* subnormal */, 3.4028235e38f, -3.4028235e38f };
    for (size_t i = 0; i < BN_ARRAY_LEN(finite); i++)
        assert_true(bn_all_finite(&finite[i], 1));
    assert_true(bn_all_finite(NULL, 0));
    float *x = bn_alloc_floats(1031);
    assert_non_null(x);
    for (size_t n = 1; n <= 1031; n += (n < 40 ? 1 : 97)) {
        for (size_t i = 0; i < n; i++)
            x[i] = (float) i * 0.25f;
        assert_true(bn_all_finite(x, n));
        size_t where[3] = { 0, n / 2, n - 1 };
        for (int w = 0; w < 3; w++) {
            x[where[w]] = w == 0 ? NAN : w == 1 ? INFINITY : -INFINITY;
            assert_false(bn_all_finite(x, n));
            x[where[w]] = 1.0f;
        }
        /* negative NaN with payload bits */
        uint32_t neg_nan = 0xffc00001u;
        memcpy(&x[n - 1], &neg_nan, 4);
        assert_false(bn_all_finite(x, n));
    }
    bn_free(x);
}

/* The finiteness checks (wire.c through clone.h: one body per kernel set)
 * on every kernel set this CPU runs: every sign and exponent, with mantissas
 * that touch the carry's edges, against isfinite(), at every position of
 * lengths that leave every vector tail, read through a misaligned pointer
 * too. */
static void test_finite_every_kernel_set(void **state)
{
    (void) state;
    enum { NMAX = 70 };
    const uint32_t mant[] = { 0u, 1u, 0x400000u, 0x7fffffu };
    unsigned char raw[NMAX * 4 + 1];
    float x[NMAX];
    int sets = 0;
    for (int k = 0; k < BN_KERNELS_COUNT; k++) {
        if (!bn_kernels_supported((bn_kernels_t) k))
            continue;
        assert_int_equal(bn_kernels_select((bn_kernels_t) k), BN_OK);
        sets++;
        for (uint32_t se = 0; se < 512; se++) {           /* sign and exponent */
            for (size_t m = 0; m < BN_ARRAY_LEN(mant); m++) {
                uint32_t bits = (se << 23) | mant[m];
                float v;
                memcpy(&v, &bits, 4);
                bool want = isfinite(v);
                size_t n = 1 + (se * 4 + m) % NMAX;           /* every length */
                size_t pos = (se * 7 + m * 13) % n;           /* many places */
                for (size_t i = 0; i < n; i++)
                    x[i] = (float) i - 3.5f;
                x[pos] = v;
                assert_int_equal(bn_all_finite(x, n), want);
                memcpy(raw + 1, x, n * 4);
                assert_int_equal(bn_wire_payload_finite(raw + 1, n), want);
            }
        }
    }
    assert_true(sets >= 1);
    assert_int_equal(bn_kernels_select(bn_kernels_best()), BN_OK);
}

static void test_drop_reason_names(void **state)
{
    (void) state;
    for (int i = 0; i < BN_DROP_COUNT; i++) {
        const char *a = bn_drop_reason_name((bn_drop_reason_t) i);
        assert_non_null(a);
        assert_true(strlen(a) > 0);
        assert_string_not_equal(a, "unknown");
        for (int j = 0; j < i; j++)
            assert_string_not_equal(a, bn_drop_reason_name((bn_drop_reason_t) j));
    }
    assert_string_equal(bn_drop_reason_name(BN_DROP_STALE), "stale");
    assert_string_equal(bn_drop_reason_name(BN_DROP_NONFINITE), "nonfinite");
    assert_string_equal(bn_drop_reason_name(BN_DROP_COUNT), "unknown");
    assert_string_equal(bn_drop_reason_name((bn_drop_reason_t) -1), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_all_kinds),
        cmocka_unit_test(test_round_trip_extremes),
        cmocka_unit_test(test_encode_pinned_bytes),
        cmocka_unit_test(test_encode_small_buffer),
        cmocka_unit_test(test_interop_with_msgpack_c),
        cmocka_unit_test(test_decode_valid_builder),
        cmocka_unit_test(test_decode_truncated),
        cmocka_unit_test(test_decode_garbage),
        cmocka_unit_test(test_decode_wrong_types),
        cmocka_unit_test(test_decode_signed_nonnegative_accepted),
        cmocka_unit_test(test_decode_missing_and_duplicate),
        cmocka_unit_test(test_decode_out_of_range),
        cmocka_unit_test(test_decode_unknown_keys_skipped),
        cmocka_unit_test(test_decode_oversize_and_trailing),
        cmocka_unit_test(test_decode_version),
        cmocka_unit_test(test_validate_header_fields),
        cmocka_unit_test(test_validate_payload_length),
        cmocka_unit_test(test_validate_nonfinite_everywhere),
        cmocka_unit_test(test_validate_wire_bytes_little_endian),
        cmocka_unit_test(test_all_finite),
        cmocka_unit_test(test_finite_every_kernel_set),
        cmocka_unit_test(test_drop_reason_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
