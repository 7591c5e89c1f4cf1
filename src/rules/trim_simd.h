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
 *       a per-lane search (s_search) finds the exact keys of rank b - 1 (L)
 *       and n - b (H) at once: steps of one count of the keys above a
 *       threshold, interpolated (halving where that stalls), until the
 *       counts alone tell each answer (about 9 steps on model-like values,
 *       at most 256), then one pass (s_snap) reads them;
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
/* S_STATS (tuning only): an array of two longs that counts the search's
 * steps and its tie snaps. */

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

BN_VTARGET static void s_keys(const float *const *v, size_t off, uint32_t n, bn_vi *keys)
{
    for (uint32_t j = 0; j < n; j++)
        for (int g = 0; g < S_G; g++)
            keys[(size_t) j * S_G + g] = bn_ikey(bn_vload(v[j] + off + g * BN_VL));
}

/* The per-lane minimum and maximum key; asks for the group `ahead` bytes
 * further on (the next group of the streamed store). */
BN_VTARGET static void s_minmax(const bn_vi *keys, uint32_t n, size_t ahead, bn_vi *mn, bn_vi *mx)
{
    for (int g = 0; g < S_G; g++) {
        mn[g] = bn_iset1(INT32_MAX);
        mx[g] = bn_iset1(INT32_MIN);
    }
    for (uint32_t j = 0; j < n; j++) {
        if (ahead)
            __builtin_prefetch((const char *) (keys + (size_t) j * S_G) + ahead, 0, 3);
        for (int g = 0; g < S_G; g++) {
            bn_vi k = keys[(size_t) j * S_G + g];
            mn[g] = bn_imin(mn[g], k);
            mx[g] = bn_imax(mx[g], k);
        }
    }
}

/* Both ends of every lane moved onto the data: lo = (the smallest key > lo)
 * - 1 and hi = the largest key <= hi, which keeps count(key <= lo) and
 * count(key <= hi); one pass (unsigned order of key - threshold: the keys at
 * or above the threshold come first, in order). */
BN_VTARGET static void s_snap(const bn_vi *keys, uint32_t n, bn_vi *lo, bn_vi *hi)
{
    bn_vi tl[2 * S_G], th[2 * S_G], mn[2 * S_G], mx[2 * S_G], one = bn_iset1(1);
    for (int g = 0; g < 2 * S_G; g++) {
        tl[g] = bn_iadd(lo[g], one);
        th[g] = bn_iadd(hi[g], one);
        mn[g] = bn_iset1(-1);
        mx[g] = bn_iset1(0);
    }
    for (uint32_t j = 0; j < n; j++)
        for (int g = 0; g < S_G; g++) {
            bn_vi k = keys[(size_t) j * S_G + g];
            for (int h = g; h < 2 * S_G; h += S_G) {
                mn[h] = bn_iminu(mn[h], bn_isub(k, tl[h]));
                mx[h] = bn_imaxu(mx[h], bn_isub(k, th[h]));
            }
        }
    for (int g = 0; g < 2 * S_G; g++) {
        lo[g] = bn_iadd(mn[g], lo[g]);
        hi[g] = bn_iadd(mx[g], th[g]);
    }
}

/* Selection: on return lo[] holds the keys of rank rl (first S_G vectors)
 * and rh (last S_G) of every lane; on entry lo = the lane's minimum - 1 and
 * hi = its maximum.  Invariant: cl = count(key <= lo) <= rank < ch =
 * count(key <= hi).  Each step counts the keys above one threshold mid in
 * [lo + 1, hi - 1] and moves the end on its side; a lane stops once its
 * answer is known without another count: cl == rank (the answer is the
 * smallest key > lo), ch == rank + 1 (the largest key <= hi) or hi == lo +
 * 1 (hi).  A step interpolates in value space (mid at the rank's share of
 * [L, H], aiming between rank and rank + 1, where both stops lie; value,
 * not key, space so that a bracket across zero, whose keys lie at both ends
 * of the int32 range, is cut where the values are), except that it halves
 * the key range in a lane whose last two steps moved the same end (the
 * interpolation stalls on skewed data: far outliers) and in every lane at
 * every 8th step, so no lane takes more than 8 x 32 steps; on model-like
 * values about 9 (the slowest of a group's lanes).  A step in which no
 * lane's count moved (ties: a bracket holding copies of one value) is
 * followed by s_snap, after which a bracket of equal keys has hi == lo + 1;
 * a last s_snap makes the answers lo + 1 or hi.  Exact whatever the values:
 * only the stops decide.  Also returns cl, ch and take_lo (the answer is
 * lo + 1, the smallest key > lo, else hi) for s_sum_pass. */
BN_VTARGET static void s_search(const bn_vi *keys, uint32_t n, uint32_t rl, uint32_t rh,
                                bn_vi *lo, bn_vi *hi, bn_vi *cl, bn_vi *ch, bn_vm *take_lo)
{
    bn_vi rank[2] = { bn_iset1((int32_t) rl), bn_iset1((int32_t) rh) };
    bn_vi vn = bn_iset1((int32_t) n), one = bn_iset1(1);
    bn_vm done[2 * S_G];
    for (int g = 0; g < 2 * S_G; g++) {
        cl[g] = bn_iset1(0);
        ch[g] = vn;
    }
    int snapped = 0;
    bn_vm last_hi[2 * S_G], halve[2 * S_G];
    for (int g = 0; g < 2 * S_G; g++)
        last_hi[g] = halve[g] = bn_igt(one, one);          /* no lane */
    for (unsigned step = 1;; step++) {
        int all = 1;
        for (int g = 0; g < 2 * S_G; g++) {
            bn_vi r = rank[g / S_G];
            take_lo[g] = bn_ieq(cl[g], r);
            done[g] = bn_mor(bn_mor(take_lo[g], bn_ieq(ch[g], bn_iadd(r, one))),
                             bn_ieq(bn_isub(hi[g], lo[g]), one));
            all &= bn_mall(done[g]);
        }
        if (all)
            break;
#ifdef S_STATS
        S_STATS[0]++;
#endif
        bn_vi mid[2 * S_G], cnt[2 * S_G];
        for (int g = 0; g < 2 * S_G; g++) {
            /* interpolation in value space: mid = key(L + f (H - L)), f =
             * (rank + 1/2 - cl) / (ch - cl) in (0, 1), aiming between rank
             * and rank + 1 where both stops lie; the float only steers (an
             * overflow or NaN too), the clamps keep [lo + 1, hi - 1].  A
             * lane whose last two steps moved the same end halves the key
             * range instead (interpolation stalls on skewed data). */
            bn_vf f = bn_vdiv(bn_vadd(bn_vcvt(bn_isub(rank[g / S_G], cl[g])), bn_vset1(0.5f)),
                              bn_vcvt(bn_isub(ch[g], cl[g])));
            bn_vf L = bn_vunkey(lo[g]), H = bn_vunkey(hi[g]);
            bn_vi m = bn_ikey(bn_vadd(L, bn_vmul(f, bn_vsub(H, L))));
            m = bn_imax(bn_imin(m, bn_isub(hi[g], one)), bn_iadd(lo[g], one));
            bn_vi half = bn_iadd(lo[g], bn_isrl1(bn_isub(hi[g], lo[g])));
            mid[g] = step % 8 == 0 ? half : bn_isel(halve[g], half, m);
            cnt[g] = bn_iset1(0);
        }
        for (uint32_t j = 0; j < n; j++)
            for (int g = 0; g < S_G; g++) {
                bn_vi k = keys[(size_t) j * S_G + g];
                for (int h = g; h < 2 * S_G; h += S_G)
                    cnt[h] = bn_icount(cnt[h], bn_igt(k, mid[h]));
            }
        int moved = 0;
        for (int g = 0; g < 2 * S_G; g++) {
            bn_vi le = bn_isub(vn, cnt[g]);                      /* count(key <= mid) */
            bn_vm below = bn_igt(le, rank[g / S_G]);             /* the answer is <= mid */
            bn_vm mv_hi = bn_mandn(below, done[g]);
            bn_vm mv_lo = bn_mandn(bn_igt(bn_iadd(rank[g / S_G], one), le), done[g]);
            moved |= bn_many(bn_mor(bn_mand(mv_hi, bn_igt(ch[g], le)),
                                    bn_mand(mv_lo, bn_igt(le, cl[g]))));
            hi[g] = bn_isel(mv_hi, mid[g], hi[g]);
            ch[g] = bn_isel(mv_hi, le, ch[g]);
            lo[g] = bn_isel(mv_lo, mid[g], lo[g]);
            cl[g] = bn_isel(mv_lo, le, cl[g]);
            /* same end twice (below == last_hi) and not just halved: halve */
            halve[g] = bn_mnor(bn_mxor(below, last_hi[g]), halve[g]);
            last_hi[g] = below;
        }
        snapped = !moved;
#ifdef S_STATS
        S_STATS[1] += snapped;
#endif
        if (snapped)
            s_snap(keys, n, lo, hi);
    }
    if (!snapped)
        s_snap(keys, n, lo, hi);
    for (int g = 0; g < 2 * S_G; g++)
        lo[g] = bn_isel(take_lo[g], bn_iadd(lo[g], one), hi[g]);
}

/* Pass 2 and the end of every coordinate: out[c] for the S_W lanes.  After
 * s_search (cl != NULL) the counts below L and above H follow from its
 * counts and the ties at L / H: L is the smallest key > lo (take) or the
 * largest key <= hi, likewise H; after the network they are counted. */
BN_VTARGET static inline void s_sum_pass(uint32_t n, uint32_t b, float inv, const bn_vi *keys,
                                         const bn_vi *kl, const bn_vi *kh, uint32_t *kept,
                                         unsigned valid, float *out, const bn_vi *cl,
                                         const bn_vi *ch, const bn_vm *take)
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
            sum[g] = bn_vaddm(sum[g], mid, bn_vmul(bn_vunkey(k), vinv));
            inside |= bn_mbits(mid) << (g * BN_VL);
            if (!cl) {
                lt[g] = bn_icount(lt[g], bn_igt(kl[g], k));
                gt[g] = bn_icount(gt[g], bn_igt(k, kh[g]));
            }
            eql[g] = bn_icount(eql[g], bn_ieq(k, kl[g]));
            eqh[g] = bn_icount(eqh[g], bn_ieq(k, kh[g]));
        }
        kept[j] += bn_popcnt16(inside & valid);
    }
    if (cl) {
        bn_vi vn = bn_iset1((int32_t) n);
        for (int g = 0; g < S_G; g++) {
            int h = S_G + g;
            lt[g] = bn_isel(take[g], cl[g], bn_isub(ch[g], eql[g]));
            gt[g] = bn_isel(take[h], bn_isub(bn_isub(vn, cl[h]), eqh[g]), bn_isub(vn, ch[h]));
        }
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

/* The kernel on keys already made: n rows of BN_TRIM_W keys (a group of the
 * streamed store, or s_keys' copy); `ahead` as in s_minmax. */
BN_VTARGET static void s_group_keys(const int32_t *keybuf, uint32_t n, uint32_t b, float inv,
                                    uint32_t *kept, unsigned valid, float *out, size_t ahead)
{
    const bn_vi *keys = (const bn_vi *) (const void *) keybuf;
    bn_vi lo[2 * S_G], hi[2 * S_G], cl[2 * S_G], ch[2 * S_G];
    bn_vm take[2 * S_G];
    if (b <= S_NET_MAX) {
        s_network(keys, n, b, lo, lo + S_G);
        s_sum_pass(n, b, inv, keys, lo, lo + S_G, kept, valid, out, NULL, NULL, NULL);
    } else {
        s_minmax(keys, n, ahead, lo, hi);
        for (int g = 0; g < S_G; g++) {
            lo[g] = bn_isub(lo[g], bn_iset1(1));
            lo[S_G + g] = lo[g];
            hi[S_G + g] = hi[g];
        }
        s_search(keys, n, b - 1, n - b, lo, hi, cl, ch, take);
        s_sum_pass(n, b, inv, keys, lo, lo + S_G, kept, valid, out, cl, ch, take);
    }
}

BN_VTARGET static void s_group(const float *const *v, size_t off, uint32_t n, uint32_t b,
                               float inv, int32_t *keybuf, uint32_t *kept, unsigned valid,
                               float *out)
{
    s_keys(v, off, n, (bn_vi *) (void *) keybuf);
    s_group_keys(keybuf, n, b, inv, kept, valid, out, 0);
}

/* The order keys of x[0..dim) into row `row` of every group of a store:
 * group g's row at kb + g * gstride + row * BN_TRIM_W (64-byte aligned),
 * the last group's tail padded with the key of +0; `stream`: bypass the
 * caches (a store larger than they are, read only at the aggregate). */
BN_VTARGET static void s_store(const float *x, size_t dim, int32_t *kb, size_t gstride,
                               uint32_t row, int stream)
{
    int32_t *dst = kb + (size_t) row * BN_TRIM_W;
    size_t c = 0;
    if (stream) {
        for (; c + BN_TRIM_W <= dim; c += BN_TRIM_W, dst += gstride)
            for (int g = 0; g < S_G; g++)
                bn_istream(dst + g * BN_VL, bn_ikey(bn_vload(x + c + g * BN_VL)));
        bn_sfence();
    } else {
        for (; c + BN_TRIM_W <= dim; c += BN_TRIM_W, dst += gstride)
            for (int g = 0; g < S_G; g++)
                bn_istore(dst + g * BN_VL, bn_ikey(bn_vload(x + c + g * BN_VL)));
    }
    if (c < dim) {
        float tail[BN_TRIM_W] = { 0 };
        memcpy(tail, x + c, (dim - c) * sizeof *tail);
        for (int g = 0; g < S_G; g++)
            bn_istore(dst + g * BN_VL, bn_ikey(bn_vload(tail + g * BN_VL)));
    }
}

const bn_trim_kernel_t S_KERNEL = { .name = S_KERNEL_NAME, .group = s_group,
                                    .group_keys = s_group_keys, .store = s_store };

#undef S_G
#undef S_NET_MAX
#endif
