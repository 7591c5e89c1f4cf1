/*  trim_simd.h -- the selection kernel of trimmed mean and median, written
 *  once over vec.h and instantiated per kernel set by trim_k512.c,
 *  trim_k256.c and trim_kbase.c (each defines BN_VEC and S_KERNEL first).
 *
 *  One call handles a group of BN_TRIM_W coordinates (BN_TRIM_W / BN_VL
 *  registers) of the n vectors v[j] + off, all in cache: a block of n x 64
 *  bytes, read from memory once.
 *    0. each value becomes its order key (vec.h) in keys[n][BN_TRIM_W]
 *       (L1), with the per-lane minimum and maximum;
 *    1. selection, not sorting: for b <= S_NET_MAX a branch-free insertion
 *       network keeps the b smallest and b largest keys of each lane (4 b n
 *       integer max / min), L and H are the last of each list; for larger b
 *       a per-lane bisection over the key range
 *       [min, max] finds the exact keys of rank b - 1 (L) and n - b (H) at
 *       once, counting keys above each midpoint; at most 32 steps of n
 *       compares, usually fewer (honest values share their high bits), and
 *       it stops when every lane has converged;
 *    2. one pass over the same cache lines sums x * inv (inv = 1 / (n - 2b))
 *       over the keys strictly between L and H in set order, and counts the
 *       keys below / equal to L and above / equal to H.
 *  The pass ends each coordinate (ties at L and H, L == H) into out[0..16).
 *  Every operation is exact or an IEEE float operation done lane by lane in
 *  set order, so all sets give the same bits.  kept[j] += the number of lanes, among the `valid` ones
 *  (bit c = lane c), in which v[j]'s value lies strictly between L and H.
 */
#ifndef BN_RULES_TRIM_SIMD_H
#define BN_RULES_TRIM_SIMD_H

#define S_G (BN_TRIM_W / BN_VL)
#define S_NET_MAX 24
/* Snap the bisection's ends to the data (s_bisect): fewer steps at 4 more
 * operations per key and step; pays with AVX-512's masked min / max. */
#ifndef S_SNAP
#define S_SNAP (BN_VEC == 512)
#endif

/* Insertion network: kl / kh = the keys of rank b - 1 and n - b per lane. */
BN_VTARGET static void s_network(const bn_vi *keys, uint32_t n, uint32_t b, bn_vi *kl, bn_vi *kh)
{
    bn_vi hi[S_NET_MAX * S_G], lo[S_NET_MAX * S_G];
    for (uint32_t l = 0; l < b * S_G; l++) {
        hi[l] = bn_iset1(INT32_MIN);
        lo[l] = bn_iset1(INT32_MAX);
    }
    /* hi[0] >= hi[1] >= ... and lo[0] <= lo[1] <= ... */
    for (uint32_t j = 0; j < n; j++) {
        bn_vi x[S_G], y[S_G];
        for (int g = 0; g < S_G; g++)
            x[g] = y[g] = keys[(size_t) j * S_G + g];
        for (uint32_t l = 0; l < b; l++)
            for (int g = 0; g < S_G; g++) {
                bn_vi t = hi[l * S_G + g], u = lo[l * S_G + g];
                hi[l * S_G + g] = bn_imax(t, x[g]);
                x[g] = bn_imin(t, x[g]);
                lo[l * S_G + g] = bn_imin(u, y[g]);
                y[g] = bn_imax(u, y[g]);
            }
    }
    for (int g = 0; g < S_G; g++) {
        kl[g] = lo[(b - 1) * S_G + g];
        kh[g] = hi[(b - 1) * S_G + g];
    }
}

BN_VTARGET static void s_keys(const float *const *v, size_t off, uint32_t n, bn_vi *keys,
                              bn_vi *mn, bn_vi *mx)
{
    for (int g = 0; g < S_G; g++) {
        mn[g] = bn_iset1(INT32_MAX);
        mx[g] = bn_iset1(INT32_MIN);
    }
    for (uint32_t j = 0; j < n; j++) {
        const float *x = v[j] + off;
        for (int g = 0; g < S_G; g++) {
            bn_vi k = bn_ikey(bn_vload(x + g * BN_VL));
            keys[(size_t) j * S_G + g] = k;
            mn[g] = bn_isel(bn_igt(mn[g], k), k, mn[g]);
            mx[g] = bn_isel(bn_igt(k, mx[g]), k, mx[g]);
        }
    }
}

/* Bisection: on return lo[] holds the keys of rank rl (first S_G) and rh
 * (last S_G) of every lane.  A lane's answer a satisfies count(key > a) <=
 * n - 1 - rank.  Each step halves [lo, hi] at mid and then moves the end
 * that changes to the nearest key of the data on its side (the largest key
 * <= mid, or the smallest > mid), so that both ends are always keys of the
 * data and a lane stops once no other key lies between them and its answer:
 * about log2(n) + 2 steps on spread-out values instead of log2 of the key
 * range (up to 32 when a lane's values change sign).  Without S_SNAP, the
 * plain bisection (hi = mid or lo = mid + 1).  Both find the same keys. */
BN_VTARGET static void s_bisect(const bn_vi *keys, uint32_t n, uint32_t rl, uint32_t rh,
                                bn_vi *lo, bn_vi *hi)
{
    bn_vi thr[2] = { bn_iset1((int32_t) (n - rl)), bn_iset1((int32_t) (n - rh)) };
    for (;;) {
        int done = 1;
        for (int g = 0; g < 2 * S_G; g++)
            done &= bn_iall_eq(lo[g], hi[g]);
        if (done)
            return;
        bn_vi mid[2 * S_G], cnt[2 * S_G], below[2 * S_G], above[2 * S_G];
        for (int g = 0; g < 2 * S_G; g++) {
            mid[g] = bn_iadd(lo[g], bn_isrl1(bn_isub(hi[g], lo[g])));
            cnt[g] = bn_iset1(0);
            below[g] = bn_iset1(INT32_MIN);
            above[g] = bn_iset1(INT32_MAX);
        }
        for (uint32_t j = 0; j < n; j++)
            for (int g = 0; g < S_G; g++) {
                bn_vi k = keys[(size_t) j * S_G + g];
                for (int h = g; h < 2 * S_G; h += S_G) {
                    bn_vm gt = bn_igt(k, mid[h]);
                    cnt[h] = bn_icount(cnt[h], gt);
#if S_SNAP
                    above[h] = bn_imin_in(above[h], gt, k);
                    below[h] = bn_imax_out(below[h], gt, k);
#endif
                }
            }
        for (int g = 0; g < 2 * S_G; g++) {
            /* count(key > mid) < n - rank: the answer is <= mid */
            bn_vm le = bn_igt(thr[g / S_G], cnt[g]);
#if S_SNAP
            hi[g] = bn_isel(le, below[g], hi[g]);
            lo[g] = bn_isel(le, lo[g], above[g]);
#else
            (void) below[g];
            (void) above[g];
            hi[g] = bn_isel(le, mid[g], hi[g]);
            lo[g] = bn_isel(le, lo[g], bn_iadd(mid[g], bn_iset1(1)));
#endif
        }
    }
}

/* Pass 2 and the end of every coordinate: out[c] for the S_W lanes. */
BN_VTARGET static void s_sum_pass(const float *const *v, size_t off, uint32_t n, uint32_t b,
                                  float inv, const bn_vi *keys, const bn_vi *kl, const bn_vi *kh,
                                  double *kept, unsigned valid, float *out)
{
    bn_vf sum[S_G], vinv = bn_vset1(inv);
    bn_vi lt[S_G], gt[S_G], eql[S_G], eqh[S_G];
    for (int g = 0; g < S_G; g++) {
        sum[g] = bn_vset1(0.0f);
        lt[g] = gt[g] = eql[g] = eqh[g] = bn_iset1(0);
    }
    for (uint32_t j = 0; j < n; j++) {
        unsigned inside = 0;
        for (int g = 0; g < S_G; g++) {
            bn_vi k = keys[(size_t) j * S_G + g];
            bn_vm mid = bn_mand(bn_igt(k, kl[g]), bn_igt(kh[g], k));
            sum[g] = bn_vaddm(sum[g], mid, bn_vmul(bn_vload(v[j] + off + g * BN_VL), vinv));
            inside |= bn_mbits(mid) << (g * BN_VL);
            lt[g] = bn_icount(lt[g], bn_igt(kl[g], k));
            gt[g] = bn_icount(gt[g], bn_igt(k, kh[g]));
            eql[g] = bn_icount(eql[g], bn_ieq(k, kl[g]));
            eqh[g] = bn_icount(eqh[g], bn_ieq(k, kh[g]));
        }
        inside &= valid;                /* popcount of 16 bits, branch-free */
        inside = inside - ((inside >> 1) & 0x5555u);
        inside = (inside & 0x3333u) + ((inside >> 2) & 0x3333u);
        inside = (inside + (inside >> 4)) & 0x0f0fu;
        kept[j] += (double) ((inside + (inside >> 8)) & 0x1fu);
    }
    /* L == H: L; else S + inv (nl L + nh H), nl = eql - (b - lt) copies of L
     * kept, nh = eqh - (b - gt) of H: the same IEEE operations on every set */
    bn_vi vb = bn_iset1((int32_t) b);
    for (int g = 0; g < S_G; g++) {
        bn_vf L = bn_vunkey(kl[g]), H = bn_vunkey(kh[g]);
        bn_vf nl = bn_vcvt(bn_isub(eql[g], bn_isub(vb, lt[g])));
        bn_vf nh = bn_vcvt(bn_isub(eqh[g], bn_isub(vb, gt[g])));
        bn_vf r = bn_vadd(sum[g], bn_vmul(vinv, bn_vadd(bn_vmul(nl, L), bn_vmul(nh, H))));
        bn_vstore(out + g * BN_VL, bn_vsel(bn_ieq(kl[g], kh[g]), L, r));
    }
}

BN_VTARGET static void s_group(const float *const *v, size_t off, uint32_t n, uint32_t b,
                               float inv, int32_t *keybuf, double *kept, unsigned valid,
                               float *out)
{
    bn_vi *keys = (bn_vi *) (void *) keybuf;
    bn_vi lo[2 * S_G], hi[2 * S_G];
    s_keys(v, off, n, keys, lo, hi);
    if (b <= S_NET_MAX) {
        s_network(keys, n, b, lo, lo + S_G);
    } else {
        for (int g = 0; g < S_G; g++) {
            lo[S_G + g] = lo[g];
            hi[S_G + g] = hi[g];
        }
        s_bisect(keys, n, b - 1, n - b, lo, hi);
    }
    s_sum_pass(v, off, n, b, inv, keys, lo, lo + S_G, kept, valid, out);
}

const bn_trim_kernel_t S_KERNEL = { .name = S_KERNEL_NAME, .group = s_group };

#undef S_G
#undef S_NET_MAX
#undef S_SNAP
#endif
