/*  gen_corpus.c -- writes the seed corpus of fuzz_wire: valid messages of every
 *  kind (plus a few near misses) in the fuzzer's input layout
 *  [u16 LE header length][header][payload].
 *
 *  Usage: gen_corpus DIR   (DIR must exist; files seed-NN are overwritten)
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "wire.h"

static int s_write(const char *dir, int idx, const bn_wire_header_t *h,
                   const float *payload, size_t n)
{
    uint8_t hdr[BN_WIRE_HEADER_ENCODED_MAX];
    size_t hlen = 0;
    if (bn_wire_encode(h, hdr, sizeof hdr, &hlen) != BN_OK)
        return -1;
    char path[4096];
    snprintf(path, sizeof path, "%s/seed-%02d", dir, idx);
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    uint8_t l[2] = { (uint8_t) (hlen & 0xff), (uint8_t) (hlen >> 8) };
    int ok = fwrite(l, 1, 2, f) == 2 && fwrite(hdr, 1, hlen, f) == hlen
          && (n == 0 || fwrite(payload, sizeof *payload, n, f) == n);
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    float x[16];
    for (int i = 0; i < 16; i++)
        x[i] = (float) i * 0.5f - 3.0f;
    bn_wire_header_t base = {
        .version = BN_WIRE_VERSION, .kind = BN_MSG_MODEL, .swarm_id = 0x9e3779b97f4a7c15ull,
        .sender = 3, .epoch = 1, .round = 17, .topology = 0x0123456789abcdefull,
        .dtype = BN_DTYPE_F32, .dim = 4, .origin = 3,
    };
    int idx = 0, rc = 0;
    bn_wire_header_t h = base;
    rc |= s_write(dir, idx++, &h, x, 4);                       /* MODEL */
    h.kind = BN_MSG_COLLUDE; h.origin = 5;
    rc |= s_write(dir, idx++, &h, x, 4);                       /* COLLUDE */
    h = base; h.kind = BN_MSG_REPORT;
    rc |= s_write(dir, idx++, &h, x, 4);                       /* REPORT with model */
    h.dim = 0;
    rc |= s_write(dir, idx++, &h, NULL, 0);                    /* REPORT without */
    h = base; h.dim = 16;
    rc |= s_write(dir, idx++, &h, x, 16);
    h = base; h.swarm_id = UINT64_MAX; h.round = UINT64_MAX; h.topology = UINT64_MAX;
    h.sender = UINT32_MAX - 1; h.origin = h.sender; h.epoch = UINT32_MAX;
    rc |= s_write(dir, idx++, &h, x, 4);                       /* extremes */
    h = base; h.sender = 0; h.origin = 0; h.dim = 1;
    rc |= s_write(dir, idx++, &h, x, 1);
    float bad[4] = { 1.0f, NAN, 2.0f, INFINITY };
    h = base;
    rc |= s_write(dir, idx++, &h, bad, 4);                     /* non-finite */
    h.version = BN_WIRE_VERSION + 1;
    rc |= s_write(dir, idx++, &h, x, 4);                       /* other version */
    h = base; h.dtype = 2;
    rc |= s_write(dir, idx++, &h, x, 3);                       /* dtype, short payload */
    if (rc != 0) {
        fprintf(stderr, "gen_corpus: could not write into %s\n", dir);
        return 1;
    }
    printf("wrote %d seeds into %s\n", idx, dir);
    return 0;
}
