/*  model.h -- the models a node trains, over ONE flat float32 parameter vector.
 *
 *  All parameters of a model live in one contiguous vector of bn_model_dim()
 *  floats and gradients use the same layout; gossip, aggregation and SGD all
 *  work on that vector and never see layers.  The model object owns only
 *  scratch space (activations for up to max_batch samples), never parameters,
 *  so one model object can evaluate any vector (for example a neighbour's).
 *
 *  Models (input 1 x 28 x 28, 10 classes, softmax cross-entropy):
 *    cnn    -- the paper's CNN: conv 5x5 1->16, ReLU, max-pool 2; conv 5x5
 *              16->32, ReLU, max-pool 2; fc 512->128, ReLU; fc 128->10.
 *    mlp    -- fc 784->200, ReLU; fc 200->10.
 *    logreg -- multinomial logistic regression, fc 784->10.
 *  The fully connected layers go through OpenBLAS; the convolutions through
 *  layers.h's kernel sets (direct convolutions, or im2col + sgemm with the
 *  portable set).
 */
#ifndef BN_MODEL_H
#define BN_MODEL_H

#include "common.h"
#include "dataset.h"

typedef enum { BN_MODEL_CNN, BN_MODEL_MLP, BN_MODEL_LOGREG } bn_model_kind_t;

typedef struct bn_model_t bn_model_t;

int bn_model_parse(const char *name, bn_model_kind_t *kind);
const char *bn_model_name(bn_model_kind_t kind);

/* New model of `kind` with scratch for batches of up to max_batch samples.
 * Caller owns it; NULL on allocation failure. */
bn_model_t *bn_model_new(bn_model_kind_t kind, uint32_t max_batch);
/* Frees *self_p and sets it to NULL; safe on NULL and twice. */
void bn_model_destroy(bn_model_t **self_p);

/* Number of parameters d (length of the flat vector). */
size_t bn_model_dim(const bn_model_t *self);

/* Writes the initial parameters, a deterministic function of seed only
 * (PyTorch-style uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) weights and biases). */
void bn_model_init(const bn_model_t *self, float *params, uint64_t seed);

/* Forward and backward on x[batch][784], labels y[batch]: returns the mean
 * cross-entropy loss and overwrites grad (d floats) with its gradient.  If
 * correct != NULL, adds the number of correct predictions to *correct.
 * batch <= max_batch. */
float bn_model_loss_grad(bn_model_t *self, const float *params, const float *x,
                         const uint8_t *y, uint32_t batch, float *grad, uint32_t *correct);

/* Forward only: mean loss, and adds correct predictions to *correct if non-NULL. */
float bn_model_loss(bn_model_t *self, const float *params, const float *x,
                    const uint8_t *y, uint32_t batch, uint32_t *correct);

/* Accuracy (fraction) and mean loss of params over images idx[0..n) of ds
 * (idx == NULL: the first n images), in batches of max_batch. */
void bn_model_evaluate(bn_model_t *self, const float *params, const bn_dataset_t *ds,
                       const uint32_t *idx, uint32_t n, double *accuracy, double *loss);

#endif
