/*  fuzz_wire.c -- libFuzzer target for the header decoder and the frame validator.
 *
 *  Input layout (docs/fuzzing.md):
 *      byte 0..1   little-endian u16 L: the header frame is the next
 *                  min(L, remaining) bytes
 *      rest        the payload frame
 *  Both frames are handed over in place, so the payload is usually unaligned
 *  and ends exactly at the end of the fuzzer's buffer: any overread is an
 *  AddressSanitizer report.  A decoded header must survive encode -> decode
 *  unchanged, and bn_wire_validate() must agree with bn_all_finite().
 */
#include <stdlib.h>
#include <string.h>

#include "wire.h"

static void s_check(bool ok)
{
    if (!ok)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t hlen = (size_t) data[0] | ((size_t) data[1] << 8);
    const uint8_t *hdr = data + 2;
    size_t rest = size - 2;
    if (hlen > rest)
        hlen = rest;
    const uint8_t *payload = hdr + hlen;
    size_t plen = rest - hlen;

    bn_wire_header_t h;
    memset(&h, 0, sizeof h);
    bn_drop_reason_t why = bn_wire_decode(hdr, hlen, &h);
    s_check(why == BN_DROP_NONE || why == BN_DROP_HEADER || why == BN_DROP_VERSION);
    s_check(hlen <= BN_WIRE_HEADER_MAX || why == BN_DROP_HEADER);
    if (why != BN_DROP_NONE)
        return 0;

    /* round trip: what we accept we can say again, identically */
    uint8_t buf[BN_WIRE_HEADER_ENCODED_MAX];
    size_t len = 0;
    s_check(bn_wire_encode(&h, buf, sizeof buf, &len) == BN_OK);
    bn_wire_header_t h2;
    s_check(bn_wire_decode(buf, len, &h2) == BN_DROP_NONE);
    s_check(h.version == h2.version && h.kind == h2.kind && h.swarm_id == h2.swarm_id
            && h.sender == h2.sender && h.epoch == h2.epoch && h.round == h2.round
            && h.topology == h2.topology && h.config == h2.config && h.dtype == h2.dtype && h.dim == h2.dim
            && h.origin == h2.origin);

    /* validate against an expectation the header meets (to reach the payload
     * checks) and against a fixed one (to reach the rejections) */
    uint32_t top = h.sender > h.origin ? h.sender : h.origin;
    bn_wire_expect_t ex = {
        .swarm_id = h.swarm_id,
        .n = top == UINT32_MAX ? UINT32_MAX : top + 1,
        .self = h.sender == 0 ? 1 : 0,
        .dim = h.dim,
        .config = h.config,
    };
    bn_drop_reason_t v = bn_wire_validate(&ex, &h, payload, plen, true);
    s_check(v < BN_DROP_COUNT);
    if (v == BN_DROP_NONE && plen > 0) {
        s_check(plen == (size_t) h.dim * 4);
        /* an aligned copy must give the same verdict through bn_all_finite */
        float *copy = malloc(plen);
        if (copy) {
            memcpy(copy, payload, plen);
            s_check(bn_all_finite(copy, h.dim));
            free(copy);
        }
    }
    bn_drop_reason_t nf = bn_wire_validate(&ex, &h, payload, plen, false);
    s_check(v == nf || (v == BN_DROP_NONFINITE && nf == BN_DROP_NONE));

    bn_wire_expect_t fixed = { .swarm_id = 1, .n = 8, .self = 0, .dim = 4 };
    s_check(bn_wire_validate(&fixed, &h, payload, plen, true) < BN_DROP_COUNT);
    return 0;
}
