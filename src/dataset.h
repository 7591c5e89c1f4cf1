/*  dataset.h -- labelled image sets in memory, read from standard IDX files.
 *
 *  Images stay as uint8 (one byte per pixel) so that a node holds its shard
 *  and the test set in about 9 MB; bn_dataset_batch() converts a mini-batch
 *  to normalised float32 on the fly: (pixel / 255 - BN_PIXEL_MEAN) / BN_PIXEL_STD,
 *  the usual Fashion-MNIST statistics (the training set's mean and standard
 *  deviation of pixel / 255), as torchvision's Normalize((0.2860,), (0.3530,)).  Everything read from a file is untrusted:
 *  a missing, truncated or malformed file (bad magic, wrong dimensions,
 *  image/label count mismatch, label > 9) gives BN_EFORMAT or BN_EIO and a
 *  one-line message naming the file and the fault; nothing is ever read
 *  past what the header and file size allow.
 */
#ifndef BN_DATASET_H
#define BN_DATASET_H

#include "common.h"

#define BN_NUM_CLASSES 10
#define BN_PIXEL_MEAN  0.2860f
#define BN_PIXEL_STD   0.3530f

typedef struct {
    uint32_t n;          /* number of images                          */
    uint32_t rows, cols; /* image shape (28 x 28 for Fashion-MNIST)   */
    uint8_t *images;     /* n * rows * cols pixels, row-major; owned  */
    uint8_t *labels;     /* n labels in [0, 9]; owned                 */
} bn_dataset_t;

/* Reads only the label file (magic 0x00000801).  On success *labels is a
 * malloc'd array of *n labels, owned by the caller (free()). */
int bn_idx_read_labels(const char *path, uint8_t **labels, uint32_t *n,
                       char *err, size_t errlen);

/* Loads images (magic 0x00000803) and labels from an IDX pair into ds (which
 * the caller owns and later frees with bn_dataset_free).  When subset != NULL
 * only the images subset[0..subset_n) are read, in that order (indices into
 * the file; each < file count, else BN_EARG); memory is then proportional to
 * subset_n.  When subset == NULL the whole file is read. */
int bn_dataset_load(bn_dataset_t *ds, const char *images_path, const char *labels_path,
                    const uint32_t *subset, uint32_t subset_n, char *err, size_t errlen);

/* Standard file names inside a data directory: DIR/train-images-idx3-ubyte etc.
 * `train` selects train-* or t10k-*. */
int bn_dataset_load_dir(bn_dataset_t *ds, const char *dir, bool train,
                        const uint32_t *subset, uint32_t subset_n, char *err, size_t errlen);

void bn_dataset_free(bn_dataset_t *ds);

/* Converts images idx[0..batch) of ds into x (batch * rows * cols floats,
 * (pixel / 255 - BN_PIXEL_MEAN) / BN_PIXEL_STD) and y (batch labels).
 * Indices must be < ds->n. */
void bn_dataset_batch(const bn_dataset_t *ds, const uint32_t *idx, uint32_t batch,
                      float *x, uint8_t *y);

#endif
