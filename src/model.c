/*  model.c -- cnn, mlp and logreg over one flat float32 parameter vector.
 *
 *  The flat vector is exactly PyTorch's parameters_to_vector() of the same
 *  nn.Module: tensors in definition order (weight then bias per layer), each
 *  in PyTorch's memory layout (conv [OC][C][K][K], linear [OUT][IN]), and the
 *  CNN flattens its 32 x 4 x 4 feature map in (C, H, W) order.  Gradients use
 *  the same layout.
 *
 *  Internally the CNN runs channels-last (see layers.h).  conv1 (one input
 *  channel, 25 taps) is a direct convolution fused with bias, ReLU and
 *  max-pool, and its backward computes only the weight gradient, straight
 *  from the pooled gradient.  conv2 is a Winograd F(4x4, 5x5) convolution
 *  (forward, weight and input gradients; its 8x8 output is 2x2 tiles) with
 *  every SIMD kernel set (avx512, avx2, sse4, neon: see layers.h), which falls
 *  back to their register-blocked direct kernels for a shape it does not
 *  take, or, with the portable set, im2col + sgemm in chunks of CONV2_CHUNK
 *  samples; its bias + ReLU + max-pool are fused into one pass that records
 *  argmax.
 *  Scratch for max_batch samples is allocated once in bn_model_new; buffers
 *  are reused across phases where lifetimes allow (conv2's output holds its
 *  own gradient in backward, the logits buffer holds dlogits).
 *  Not thread-safe: one model object per thread.
 */
#include "model.h"

#include "layers.h"
#include "rng.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define IMG      28
#define NPIX     (IMG * IMG)
#define NCLS     BN_NUM_CLASSES

/* CNN geometry. */
#define C1_OC    16
#define C1_K     5
#define P1_H     ((IMG - C1_K + 1) / 2)  /* 12 */
#define C2_OC    32
#define C2_K     5
#define C2_OH    (P1_H - C2_K + 1)       /* 8 */
#define P2_H     (C2_OH / 2)             /* 4 */
#define FLAT     (C2_OC * P2_H * P2_H)   /* 512 */
#define FC1_OUT  128
#define MLP_HID  200
/* With the portable kernel set, conv2 falls back to im2col + sgemm in
 * chunks of this many samples (bounded scratch, im2col recomputed in
 * backward). */
#define CONV2_CHUNK 16

/* One parameter tensor: offset into the flat vector, element count, fan-in. */
typedef struct {
    size_t off, n;
    int fan_in;
} s_tensor_t;

enum { MAX_TENSORS = 8 };

struct bn_model_t {
    bn_model_kind_t kind;
    uint32_t max_batch;
    size_t dim;                      /* length of the flat vector              */
    int ntensors;
    s_tensor_t t[MAX_TENSORS];       /* weight, bias, weight, bias, ...        */

    /* Scratch, sized for max_batch; all owned.  NULL when the kind has no use for it. */
    float *x;                        /* [B][784] input batch for evaluate       */
    uint8_t *y;                      /* [B] labels for evaluate                 */
    float *p1;                       /* [B][12][12][16] pool1 out               */
    uint8_t *am1;                    /* argmax of pool1                         */
    float *dp1;                      /* gradient of p1                          */
    float *a2;                       /* [B][8][8][32] conv2 out; then its grad  */
    float *p2;                       /* [B][4][4][32] pool2 out (NHWC)          */
    uint8_t *am2;                    /* argmax of pool2                         */
    float *flat;                     /* [B][512] p2 in NCHW order; then grad    */
    float *col2;                     /* [chunk*8*8][400] im2col (portable path) */
    float *w2;                       /* [32][5][5][16] conv2 weight, OHWI       */
    float *w2h;                      /* [5][5][16][32] conv2 weight, HWIO       */
    float *dw2;                      /* its gradient, OHWI                      */
    float *wino;                     /* conv2's Winograd scratch (layers.h)     */
    float *h;                        /* [B][hidden] fc1 out after ReLU          */
    float *dh;                       /* its gradient                            */
    float *logits;                   /* [B][10]; then dlogits                   */
};

int bn_model_parse(const char *name, bn_model_kind_t *kind)
{
    if (!name || !kind)
        return BN_EARG;
    if (strcmp(name, "cnn") == 0)
        *kind = BN_MODEL_CNN;
    else if (strcmp(name, "mlp") == 0)
        *kind = BN_MODEL_MLP;
    else if (strcmp(name, "logreg") == 0)
        *kind = BN_MODEL_LOGREG;
    else
        return BN_EARG;
    return BN_OK;
}

const char *bn_model_name(bn_model_kind_t kind)
{
    switch (kind) {
    case BN_MODEL_CNN:    return "cnn";
    case BN_MODEL_MLP:    return "mlp";
    case BN_MODEL_LOGREG: return "logreg";
    default:              return "unknown";
    }
}

/* Appends a weight tensor of n_w elements and its bias of n_b elements. */
static void s_add_layer(bn_model_t *self, size_t n_w, size_t n_b, int fan_in)
{
    assert(self->ntensors + 2 <= MAX_TENSORS);
    s_tensor_t *w = &self->t[self->ntensors++];
    w->off = self->dim;
    w->n = n_w;
    w->fan_in = fan_in;
    self->dim += n_w;
    s_tensor_t *b = &self->t[self->ntensors++];
    b->off = self->dim;
    b->n = n_b;
    b->fan_in = fan_in;
    self->dim += n_b;
}

bn_model_t *bn_model_new(bn_model_kind_t kind, uint32_t max_batch)
{
    if (max_batch == 0 || max_batch > (1u << 20))
        return NULL;
    bn_model_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->kind = kind;
    self->max_batch = max_batch;
    const size_t B = max_batch;
    size_t hidden = 0;
    switch (kind) {
    case BN_MODEL_CNN:
        s_add_layer(self, C1_OC * 1 * C1_K * C1_K, C1_OC, 1 * C1_K * C1_K);
        s_add_layer(self, C2_OC * C1_OC * C2_K * C2_K, C2_OC, C1_OC * C2_K * C2_K);
        s_add_layer(self, (size_t) FC1_OUT * FLAT, FC1_OUT, FLAT);
        s_add_layer(self, NCLS * FC1_OUT, NCLS, FC1_OUT);
        hidden = FC1_OUT;
        self->p1   = bn_alloc_floats(B * P1_H * P1_H * C1_OC);
        self->am1  = bn_alloc_aligned(B * P1_H * P1_H * C1_OC);
        self->dp1  = bn_alloc_floats(B * P1_H * P1_H * C1_OC);
        self->a2   = bn_alloc_floats(B * C2_OH * C2_OH * C2_OC);
        self->p2   = bn_alloc_floats(B * FLAT);
        self->am2  = bn_alloc_aligned(B * FLAT);
        self->flat = bn_alloc_floats(B * FLAT);
        self->w2   = bn_alloc_floats(C2_OC * C1_OC * C2_K * C2_K);
        self->w2h  = bn_alloc_floats(C2_OC * C1_OC * C2_K * C2_K);
        self->col2 = bn_alloc_floats((size_t) BN_MIN(B, CONV2_CHUNK) * C2_OH * C2_OH
                                     * C2_K * C2_K * C1_OC);
        self->dw2  = bn_alloc_floats(2 * C2_OC * C1_OC * C2_K * C2_K);   /* + a chunk's */
        self->wino = bn_alloc_floats(bn_conv2d_winograd_scratch(C1_OC, C2_OC));   /* 0.5 MB */
        if (!self->p1 || !self->am1 || !self->dp1
            || !self->w2h || !self->col2 || !self->a2 || !self->p2 || !self->am2 || !self->flat
            || !self->w2 || !self->dw2 || !self->wino)
            goto fail;
        break;
    case BN_MODEL_MLP:
        s_add_layer(self, (size_t) MLP_HID * NPIX, MLP_HID, NPIX);
        s_add_layer(self, NCLS * MLP_HID, NCLS, MLP_HID);
        hidden = MLP_HID;
        break;
    case BN_MODEL_LOGREG:
        s_add_layer(self, NCLS * NPIX, NCLS, NPIX);
        break;
    default:
        goto fail;
    }
    if (hidden) {
        self->h  = bn_alloc_floats(B * hidden);
        self->dh = bn_alloc_floats(B * hidden);
        if (!self->h || !self->dh)
            goto fail;
    }
    self->x = bn_alloc_floats(B * NPIX);
    self->y = bn_alloc_aligned(B);
    self->logits = bn_alloc_floats(B * NCLS);
    if (!self->x || !self->y || !self->logits)
        goto fail;
    return self;
fail:
    bn_model_destroy(&self);
    return NULL;
}

void bn_model_destroy(bn_model_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bn_model_t *self = *self_p;
    bn_free(self->x);
    bn_free(self->y);
    bn_free(self->p1);
    bn_free(self->am1);
    bn_free(self->dp1);
    bn_free(self->a2);
    bn_free(self->p2);
    bn_free(self->am2);
    bn_free(self->flat);
    bn_free(self->w2);
    bn_free(self->w2h);
    bn_free(self->col2);
    bn_free(self->dw2);
    bn_free(self->wino);
    bn_free(self->h);
    bn_free(self->dh);
    bn_free(self->logits);
    free(self);
    *self_p = NULL;
}

size_t bn_model_dim(const bn_model_t *self)
{
    return self ? self->dim : 0;
}

void bn_model_init(const bn_model_t *self, float *params, uint64_t seed)
{
    bn_rng_t rng;
    bn_rng_seed(&rng, seed, BN_STREAM_INIT);
    for (int i = 0; i < self->ntensors; i++) {
        const s_tensor_t *t = &self->t[i];
        /* kaiming_uniform(a = sqrt(5)) and PyTorch's bias init both give
         * uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
        double bound = 1.0 / sqrt((double) t->fan_in);
        for (size_t j = 0; j < t->n; j++)
            params[t->off + j] = (float) ((2.0 * bn_rng_uniform(&rng) - 1.0) * bound);
    }
}

/* ---- CNN ---------------------------------------------------------------- */

static float s_cnn_forward(bn_model_t *self, const float *params, const float *x,
                           const uint8_t *y, int B, float *dlogits, uint32_t *correct)
{
    const s_tensor_t *t = self->t;
    const float *w1 = params + t[0].off, *b1 = params + t[1].off;
    const float *b2 = params + t[3].off;
    const float *w3 = params + t[4].off, *b3 = params + t[5].off;
    const float *w4 = params + t[6].off, *b4 = params + t[7].off;

    /* conv1 + bias + ReLU + pool in one pass (single input channel) */
    bn_conv1ch_relu_pool_forward(self->p1, self->am1, x, w1, b1, B, IMG, IMG, C1_OC, C1_K);
    /* conv2: Winograd (else direct, register-blocked) with a SIMD kernel
     * set, else im2col + sgemm by chunks; backward wants OHWI weights either way */
    bn_conv_weight_to_ohwi(self->w2, params + t[2].off, C2_OC, C1_OC, C2_K);
    if (bn_kernels_current() != BN_KERNELS_PORTABLE) {
        bn_conv_weight_to_hwio(self->w2h, params + t[2].off, C2_OC, C1_OC, C2_K);
        bn_conv2d_forward_winograd(self->a2, self->wino, self->p1, self->w2h,
                                   B, P1_H, P1_H, C1_OC, C2_OC, C2_K);
    } else {
        for (int c0 = 0; c0 < B; c0 += CONV2_CHUNK) {
            int n = BN_MIN(B - c0, CONV2_CHUNK);
            bn_conv2d_forward(self->a2 + (size_t) c0 * C2_OH * C2_OH * C2_OC, self->col2,
                              self->p1 + (size_t) c0 * P1_H * P1_H * C1_OC, self->w2, NULL,
                              n, P1_H, P1_H, C1_OC, C2_OC, C2_K);
        }
    }
    bn_bias_relu_maxpool2_forward(self->p2, self->am2, self->a2, b2, B, C2_OH, C2_OH, C2_OC);
    /* flatten in PyTorch's (C, H, W) order, fc1 + ReLU, fc2, loss */
    bn_nhwc_to_nchw(self->flat, self->p2, B, P2_H, P2_H, C2_OC);
    bn_fc_forward(self->h, self->flat, w3, b3, B, FLAT, FC1_OUT);
    bn_relu_forward(self->h, self->h, (size_t) B * FC1_OUT);
    bn_fc_forward(self->logits, self->h, w4, b4, B, FC1_OUT, NCLS);
    return bn_softmax_xent(dlogits, self->logits, y, B, NCLS, correct);
}

static void s_cnn_backward(bn_model_t *self, const float *params, const float *x, int B,
                           float *grad)
{
    const s_tensor_t *t = self->t;
    const float *w3 = params + t[4].off, *w4 = params + t[6].off;

    /* fc2, ReLU, fc1 */
    bn_fc_backward(self->dh, grad + t[6].off, grad + t[7].off, self->logits, self->h, w4,
                   B, FC1_OUT, NCLS);
    bn_relu_backward(self->dh, self->dh, self->h, (size_t) B * FC1_OUT);
    /* dflat overwrites flat in place (bn_fc_backward reads its input first). */
    bn_fc_backward(self->flat, grad + t[4].off, grad + t[5].off, self->dh, self->flat, w3,
                   B, FLAT, FC1_OUT);
    /* pool2/ReLU/bias backward needs the forward p2 as the ReLU mask, so the
     * NHWC gradient goes to dp1's buffer first (it is free until conv2 backward). */
    float *dp2 = self->dp1;
    bn_nchw_to_nhwc(dp2, self->flat, B, P2_H, P2_H, C2_OC);
    bn_bias_relu_maxpool2_backward(self->a2, grad + t[3].off, dp2, self->p2, self->am2,
                                   B, C2_OH, C2_OH, C2_OC);
    /* conv2: dW2 (OHWI, then to PyTorch layout) and dp1 */
    if (bn_kernels_current() != BN_KERNELS_PORTABLE) {
        bn_conv2d_backward_winograd(self->dp1, self->dw2, self->wino, self->a2, self->p1,
                                    self->w2, B, P1_H, P1_H, C1_OC, C2_OC, C2_K);
    } else {
        const size_t nw2 = C2_OC * C1_OC * C2_K * C2_K;
        float *dw_chunk = self->dw2 + nw2;
        for (int c0 = 0; c0 < B; c0 += CONV2_CHUNK) {
            int n = BN_MIN(B - c0, CONV2_CHUNK);
            const float *p1 = self->p1 + (size_t) c0 * P1_H * P1_H * C1_OC;
            bn_im2col_nhwc(self->col2, p1, n, P1_H, P1_H, C1_OC, C2_K);
            bn_conv2d_backward(self->dp1 + (size_t) c0 * P1_H * P1_H * C1_OC, self->col2,
                               c0 ? dw_chunk : self->dw2, NULL,
                               self->a2 + (size_t) c0 * C2_OH * C2_OH * C2_OC, self->col2,
                               self->w2, n, P1_H, P1_H, C1_OC, C2_OC, C2_K);
            if (c0)
                for (size_t i = 0; i < nw2; i++)
                    self->dw2[i] += dw_chunk[i];
        }
    }
    bn_conv_weight_to_oihw(grad + t[2].off, self->dw2, C2_OC, C1_OC, C2_K);
    /* pool1/ReLU/bias and conv1's weight gradient (no input gradient) in one pass */
    bn_conv1ch_relu_pool_backward(grad + t[0].off, grad + t[1].off, self->dp1, self->p1,
                                  self->am1, x, B, IMG, IMG, C1_OC, C1_K);
}

/* ---- MLP and logreg --------------------------------------------------- */

static float s_mlp_forward(bn_model_t *self, const float *params, const float *x,
                           const uint8_t *y, int B, float *dlogits, uint32_t *correct)
{
    const s_tensor_t *t = self->t;
    bn_fc_forward(self->h, x, params + t[0].off, params + t[1].off, B, NPIX, MLP_HID);
    bn_relu_forward(self->h, self->h, (size_t) B * MLP_HID);
    bn_fc_forward(self->logits, self->h, params + t[2].off, params + t[3].off, B, MLP_HID, NCLS);
    return bn_softmax_xent(dlogits, self->logits, y, B, NCLS, correct);
}

static void s_mlp_backward(bn_model_t *self, const float *params, const float *x, int B,
                           float *grad)
{
    const s_tensor_t *t = self->t;
    bn_fc_backward(self->dh, grad + t[2].off, grad + t[3].off, self->logits, self->h,
                   params + t[2].off, B, MLP_HID, NCLS);
    bn_relu_backward(self->dh, self->dh, self->h, (size_t) B * MLP_HID);
    bn_fc_backward(NULL, grad + t[0].off, grad + t[1].off, self->dh, x, params + t[0].off,
                   B, NPIX, MLP_HID);
}

static float s_logreg_forward(bn_model_t *self, const float *params, const float *x,
                              const uint8_t *y, int B, float *dlogits, uint32_t *correct)
{
    const s_tensor_t *t = self->t;
    bn_fc_forward(self->logits, x, params + t[0].off, params + t[1].off, B, NPIX, NCLS);
    return bn_softmax_xent(dlogits, self->logits, y, B, NCLS, correct);
}

/* ---- public entry points ------------------------------------------------ */

static float s_forward(bn_model_t *self, const float *params, const float *x,
                       const uint8_t *y, int B, bool want_grad, uint32_t *correct)
{
    /* dlogits overwrite the logits in place: nothing reads the logits later. */
    float *dlogits = want_grad ? self->logits : NULL;
    switch (self->kind) {
    case BN_MODEL_CNN:    return s_cnn_forward(self, params, x, y, B, dlogits, correct);
    case BN_MODEL_MLP:    return s_mlp_forward(self, params, x, y, B, dlogits, correct);
    case BN_MODEL_LOGREG: return s_logreg_forward(self, params, x, y, B, dlogits, correct);
    }
    return NAN;
}

float bn_model_loss_grad(bn_model_t *self, const float *params, const float *x,
                         const uint8_t *y, uint32_t batch, float *grad, uint32_t *correct)
{
    assert(self && params && x && y && grad);
    assert(batch >= 1 && batch <= self->max_batch);
    const int B = (int) batch;
    float loss = s_forward(self, params, x, y, B, true, correct);
    const s_tensor_t *t = self->t;
    switch (self->kind) {
    case BN_MODEL_CNN:
        s_cnn_backward(self, params, x, B, grad);
        break;
    case BN_MODEL_MLP:
        s_mlp_backward(self, params, x, B, grad);
        break;
    case BN_MODEL_LOGREG:
        bn_fc_backward(NULL, grad + t[0].off, grad + t[1].off, self->logits, x,
                       params + t[0].off, B, NPIX, NCLS);
        break;
    }
    return loss;
}

float bn_model_loss(bn_model_t *self, const float *params, const float *x,
                    const uint8_t *y, uint32_t batch, uint32_t *correct)
{
    assert(self && params && x && y);
    assert(batch >= 1 && batch <= self->max_batch);
    return s_forward(self, params, x, y, (int) batch, false, correct);
}

void bn_model_evaluate(bn_model_t *self, const float *params, const bn_dataset_t *ds,
                       const uint32_t *idx, uint32_t n, double *accuracy, double *loss)
{
    uint32_t correct = 0;
    double total = 0.0;
    uint32_t seq[256];
    for (uint32_t start = 0; start < n; ) {
        uint32_t b = BN_MIN(n - start, self->max_batch);
        const uint32_t *bidx;
        if (idx) {
            bidx = idx + start;
        } else {
            /* The first n images: indices made in chunks of at most 256. */
            b = BN_MIN(b, (uint32_t) BN_ARRAY_LEN(seq));
            for (uint32_t i = 0; i < b; i++)
                seq[i] = start + i;
            bidx = seq;
        }
        bn_dataset_batch(ds, bidx, b, self->x, self->y);
        total += (double) bn_model_loss(self, params, self->x, self->y, b, &correct) * b;
        start += b;
    }
    if (accuracy)
        *accuracy = n ? (double) correct / n : 0.0;
    if (loss)
        *loss = n ? total / n : 0.0;
}
