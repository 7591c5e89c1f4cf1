/*  sgd.h -- SGD with weight decay and momentum on a flat vector.
 *
 *  PyTorch's torch.optim.SGD semantics: g = grad + weight_decay * x;
 *  v = momentum * v + g (v = g on the first step); x -= lr * v.
 */
#ifndef BN_SGD_H
#define BN_SGD_H

#include "common.h"

typedef struct {
    size_t dim;
    float  lr, weight_decay, momentum;
    float *velocity;   /* dim floats when momentum > 0, else NULL; owned */
    bool   started;
} bn_sgd_t;

int  bn_sgd_init(bn_sgd_t *self, size_t dim, float lr, float weight_decay, float momentum);
void bn_sgd_step(bn_sgd_t *self, float *params, const float *grad);
void bn_sgd_free(bn_sgd_t *self);

#endif
