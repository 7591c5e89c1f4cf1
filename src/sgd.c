/*  sgd.c -- SGD with weight decay and momentum on a flat vector (see sgd.h).
 *
 *  Matches torch.optim.SGD with dampening 0 and nesterov off: the first step
 *  with momentum sets the velocity to the decayed gradient itself.
 */
#include "sgd.h"

#include <assert.h>
#include <math.h>
#include <string.h>

int bn_sgd_init(bn_sgd_t *self, size_t dim, float lr, float weight_decay, float momentum)
{
    if (!self)
        return BN_EARG;
    memset(self, 0, sizeof *self);
    if (dim == 0 || !isfinite(lr) || lr < 0.0f || !isfinite(weight_decay)
        || weight_decay < 0.0f || !isfinite(momentum) || momentum < 0.0f || momentum >= 1.0f)
        return BN_EARG;
    self->dim = dim;
    self->lr = lr;
    self->weight_decay = weight_decay;
    self->momentum = momentum;
    if (momentum > 0.0f) {
        self->velocity = bn_alloc_floats(dim);
        if (!self->velocity)
            return BN_ENOMEM;
    }
    return BN_OK;
}

void bn_sgd_step(bn_sgd_t *self, float *restrict params, const float *restrict grad)
{
    assert(self && params && grad);
    const size_t n = self->dim;
    const float lr = self->lr, wd = self->weight_decay, mu = self->momentum;
    if (!self->velocity) {
        for (size_t i = 0; i < n; i++)
            params[i] -= lr * (grad[i] + wd * params[i]);
        return;
    }
    float *restrict v = self->velocity;
    if (!self->started) {
        for (size_t i = 0; i < n; i++) {
            v[i] = grad[i] + wd * params[i];
            params[i] -= lr * v[i];
        }
        self->started = true;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        v[i] = mu * v[i] + grad[i] + wd * params[i];
        params[i] -= lr * v[i];
    }
}

void bn_sgd_free(bn_sgd_t *self)
{
    if (!self)
        return;
    bn_free(self->velocity);
    self->velocity = NULL;
    self->started = false;
}
