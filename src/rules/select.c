/*  select.c -- selection helpers shared by the rules: k-th smallest
 *  (quickselect with median-of-three and an insertion-sort tail), median,
 *  the m smallest keys, block transposition and the finiteness check.
 *  No allocation; inputs are finite where stated.
 */
#include "rules.h"
#include "../clone.h"

#include <math.h>
#include <string.h>

static inline void s_swap(float *a, uint32_t i, uint32_t j)
{
    float t = a[i];
    a[i] = a[j];
    a[j] = t;
}

float bn_select_kth(float *a, uint32_t n, uint32_t k)
{
    uint32_t lo = 0, hi = n - 1;
    while (hi - lo > 16) {
        uint32_t mid = lo + (hi - lo) / 2;
        /* median of three into a[lo] as pivot; a[mid] <= a[lo] <= a[hi] */
        if (a[mid] > a[hi]) s_swap(a, mid, hi);
        if (a[lo] > a[hi])  s_swap(a, lo, hi);
        if (a[mid] > a[lo]) s_swap(a, mid, lo);
        float pivot = a[lo];
        uint32_t i = lo, j = hi;
        /* Hoare partition: a[lo+1..] scanned; sentinels a[mid] <= pivot <= a[hi] */
        for (;;) {
            do i++; while (a[i] < pivot);
            do j--; while (a[j] > pivot);
            if (i >= j)
                break;
            s_swap(a, i, j);
        }
        s_swap(a, lo, j);           /* pivot to its final place j */
        if (j == k)
            return a[k];
        if (k < j)
            hi = j - 1;
        else
            lo = j + 1;
    }
    /* insertion sort of the short tail */
    for (uint32_t i = lo + 1; i <= hi; i++) {
        float x = a[i];
        uint32_t j = i;
        while (j > lo && a[j - 1] > x) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = x;
    }
    return a[k];
}

float bn_select_median(float *a, uint32_t n)
{
    uint32_t h = n / 2;
    float upper = bn_select_kth(a, n, h);
    if (n & 1)
        return upper;
    /* even: the lower middle is the largest of a[0..h) */
    float lower = a[0];
    for (uint32_t i = 1; i < h; i++)
        lower = a[i] > lower ? a[i] : lower;
    return 0.5f * lower + 0.5f * upper;
}

void bn_select_smallest(const double *key, uint32_t n, uint32_t m, uint32_t *idx)
{
    /* insertion into a sorted prefix of length <= m */
    uint32_t len = 0;
    if (m == 0)
        return;
    for (uint32_t i = 0; i < n; i++) {
        if (len == m && !(key[i] < key[idx[len - 1]]))
            continue;
        uint32_t j = len < m ? len++ : len - 1;
        while (j > 0 && key[i] < key[idx[j - 1]]) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = i;
    }
}

void bn_select_transpose(const float *const *v, uint32_t n, size_t c0, size_t len, float *t)
{
    for (uint32_t j = 0; j < n; j++) {
        const float *src = v[j] + c0;
        for (size_t c = 0; c < len; c++)
            t[c * n + j] = src[c];
    }
}

static inline BN_CLONE_BODY int s_finite_body(const float *x, size_t dim)
{
    /* the exponent field is all ones exactly for NaN and infinity, and then
     * adding 1 to it carries into bit 31; AND, ADD and OR vectorise on
     * every set (SSE2 has no unsigned max) */
    uint32_t m = 0;
    for (size_t i = 0; i < dim; i++) {
        uint32_t u;
        memcpy(&u, x + i, sizeof u);
        m |= (u & 0x7f800000u) + 0x00800000u;
    }
    return !(m & 0x80000000u);
}
BN_CLONE(int, s_finite, (const float *x, size_t dim), (x, dim))

int bn_select_finite(const float *x, size_t dim)
{
    return BN_CLONE_PICK(s_finite)(x, dim);
}

#define S_LANES 32
#define S_CHUNK 2048

/* Float partials over one chunk; 0 if they overflowed (caller redoes in double). */
static inline BN_CLONE_BODY int s_stats_float_body(const float *restrict x,
                                                   const float *restrict base,
                                                   const float *restrict ref, size_t len,
                                                   double *dot, double *nrm)
{
    float fd[S_LANES] = { 0 }, fn[S_LANES] = { 0 };
    size_t c = 0;
    if (ref) {
        for (; c + S_LANES <= len; c += S_LANES)
            for (int l = 0; l < S_LANES; l++) {
                float d = x[c + l] - base[c + l];
                fd[l] += d * ref[c + l];
                fn[l] += d * d;
            }
        for (; c < len; c++) {
            float d = x[c] - base[c];
            fd[0] += d * ref[c];
            fn[0] += d * d;
        }
    } else {
        for (; c + S_LANES <= len; c += S_LANES)
            for (int l = 0; l < S_LANES; l++) {
                float d = x[c + l] - base[c + l];
                fn[l] += d * d;
            }
        for (; c < len; c++) {
            float d = x[c] - base[c];
            fn[0] += d * d;
        }
    }
    float sd = 0.0f, sn = 0.0f;
    for (int l = 0; l < S_LANES; l++) {
        sd += fd[l];
        sn += fn[l];
    }
    if (!isfinite(sd) || !isfinite(sn))
        return 0;
    *dot += sd;
    *nrm += sn;
    return 1;
}

BN_CLONE(int, s_stats_float, (const float *restrict x, const float *restrict base,
                              const float *restrict ref, size_t len, double *dot, double *nrm),
         (x, base, ref, len, dot, nrm))

void bn_select_diff_stats(const float *x, const float *base, const float *ref, size_t dim,
                          double *dot, double *nrm)
{
    *dot = 0.0;
    *nrm = 0.0;
    for (size_t c0 = 0; c0 < dim; c0 += S_CHUNK) {
        size_t len = BN_MIN((size_t) S_CHUNK, dim - c0);
        const float *r = ref ? ref + c0 : NULL;
        if (BN_CLONE_PICK(s_stats_float)(x + c0, base + c0, r, len, dot, nrm))
            continue;
        double sd = 0.0, sn = 0.0;
        for (size_t c = 0; c < len; c++) {
            double d = (double) x[c0 + c] - (double) base[c0 + c];
            sd += r ? d * r[c] : 0.0;
            sn += d * d;
        }
        *dot += sd;
        *nrm += sn;
    }
}

static inline BN_CLONE_BODY int s_axpy_body(float *restrict y, float a, const float *restrict x,
                                            size_t n)
{
    for (size_t c = 0; c < n; c++)
        y[c] += a * x[c];
    return 0;
}
BN_CLONE(int, s_axpy, (float *restrict y, float a, const float *restrict x, size_t n), (y, a, x, n))

static inline BN_CLONE_BODY int s_scale_body(float *restrict y, float a, const float *restrict x,
                                             size_t n)
{
    for (size_t c = 0; c < n; c++)
        y[c] = a * x[c];
    return 0;
}
BN_CLONE(int, s_scale, (float *restrict y, float a, const float *restrict x, size_t n), (y, a, x, n))

/* Kept out of line on purpose: inlined into a loop over vectors, GCC
 * vectorises the outer loop with gathers, which is several times slower. */
__attribute__((noinline))
void bn_select_axpy(float *restrict y, float a, const float *restrict x, size_t n)
{
    BN_CLONE_PICK(s_axpy)(y, a, x, n);
}

__attribute__((noinline))
void bn_select_scale(float *restrict y, float a, const float *restrict x, size_t n)
{
    BN_CLONE_PICK(s_scale)(y, a, x, n);
}
