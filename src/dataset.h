/*  dataset.h -- labelled image sets in memory, read from standard IDX files,
 *  plain or gzip-compressed (the form Debian's dataset-fashion-mnist ships).
 *
 *  Images stay as uint8 (one byte per pixel); bn_dataset_batch() converts a
 *  mini-batch to normalised float32 on the fly: (pixel / 255 - BN_PIXEL_MEAN)
 *  / BN_PIXEL_STD, the usual Fashion-MNIST statistics (the training set's mean
 *  and standard deviation of pixel / 255), as torchvision's
 *  Normalize((0.2860,), (0.3530,)).
 *
 *  Memory: a subset load keeps only the requested images (n_subset * 784
 *  bytes plus n_subset labels); a gzip file is inflated as a stream through a
 *  fixed 64 KiB buffer, never held whole.
 *
 *  Everything read from a file is untrusted: a missing, truncated or
 *  malformed file (bad magic, images that are not BN_IMAGE_ROWS x
 *  BN_IMAGE_COLS, zero images, image/label count mismatch, label > 9,
 *  trailing bytes, a gzip stream that is corrupt or fails its CRC) gives
 *  BN_EFORMAT or BN_EIO and a one-line message naming the file and the fault;
 *  nothing is allocated beyond what the file could hold (for gzip: 1032 times
 *  its compressed size, deflate's largest ratio).
 */
#ifndef BN_DATASET_H
#define BN_DATASET_H

#include "common.h"

#define BN_NUM_CLASSES 10
#define BN_IMAGE_ROWS  28      /* the only image shape the built-in models take */
#define BN_IMAGE_COLS  28
#define BN_PIXEL_MEAN  0.2860f
#define BN_PIXEL_STD   0.3530f

/* Where byznode looks for the data when --data is not given: Debian's
 * dataset-fashion-mnist package (the official 60,000 / 10,000 split). */
#define BN_DATA_DIR_DEFAULT "/usr/share/datasets/fashion-mnist"

typedef struct {
    uint32_t n;          /* number of images (>= 1 after a load)      */
    uint32_t rows, cols; /* image shape: always 28 x 28               */
    uint8_t *images;     /* n * rows * cols pixels, row-major; owned  */
    uint8_t *labels;     /* n labels in [0, 9]; owned                 */
} bn_dataset_t;

/* Reads only the label file (magic 0x00000801), plain or gzip.  On success
 * *labels is a malloc'd array of *n >= 1 labels, owned by the caller (free()). */
int bn_idx_read_labels(const char *path, uint8_t **labels, uint32_t *n,
                       char *err, size_t errlen);

/* Loads images (magic 0x00000803, 28 x 28) and labels from an IDX pair, each
 * plain or gzip, into ds (which the caller owns and later frees with
 * bn_dataset_free).  When subset != NULL only the images subset[0..subset_n)
 * are kept, in that order (indices into the file, each < file count, else
 * BN_EARG; subset_n >= 1, repeats allowed); memory is then proportional to
 * subset_n.  When subset == NULL the whole file is read.  A file with zero
 * images is refused (BN_EFORMAT).  On failure ds is zeroed. */
int bn_dataset_load(bn_dataset_t *ds, const char *images_path, const char *labels_path,
                    const uint32_t *subset, uint32_t subset_n, char *err, size_t errlen);

/* The path of a standard file inside a data directory: DIR/train-images-idx3-ubyte
 * (train, images), DIR/t10k-labels-idx1-ubyte, ...; the plain name when that
 * file exists, else the name with ".gz" when that exists, else the plain name
 * (so that the open error names it).  BN_EARG when it does not fit in len. */
int bn_dataset_file(char *out, size_t len, const char *dir, bool train, bool labels);

/* bn_dataset_load on the standard file names inside a data directory (see
 * bn_dataset_file).  `train` selects train-* or t10k-*. */
int bn_dataset_load_dir(bn_dataset_t *ds, const char *dir, bool train,
                        const uint32_t *subset, uint32_t subset_n, char *err, size_t errlen);

/* The test images a node evaluates on every epoch but the last: DIR's whole
 * t10k set when subset is 0 or >= its size (*partial = false), else the
 * first `subset` indices of a shuffle of 0..N-1 by bn_rng stream
 * BN_STREAM_EVAL of `seed` (the same images on every node), in that order
 * (*partial = true).  Only those images are kept in memory; the last epoch's
 * evaluation over the whole set then goes through bn_dataset_scan_dir. */
int bn_dataset_load_eval(bn_dataset_t *ds, const char *dir, uint32_t subset, uint64_t seed,
                         bool *partial, char *err, size_t errlen);

/* Visits every image of DIR's train (train) or t10k set in file order, in
 * chunks of at most `chunk` (>= 1) images: fn(view, ctx) once per chunk,
 * `view` borrowed for that call only.  Memory: one chunk (chunk * 785 bytes)
 * plus the reader, whatever the set's size.  Errors as bn_dataset_load;
 * chunks already visited stay visited. */
typedef void (*bn_dataset_chunk_fn)(const bn_dataset_t *view, void *ctx);
int bn_dataset_scan_dir(const char *dir, bool train, uint32_t chunk, bn_dataset_chunk_fn fn,
                        void *ctx, char *err, size_t errlen);

/* Moves images idx[0..m) of ds (distinct, each < ds->n, 0 < m < ds->n) into
 * out, in that order; ds keeps the other images in their order.  out must be
 * zeroed (or freed).  BN_EARG on a bad index list (ds unchanged), BN_ENOMEM. */
int bn_dataset_split(bn_dataset_t *ds, const uint32_t *idx, uint32_t m, bn_dataset_t *out);

/* Frees what ds owns and zeroes it; safe on a zeroed ds and twice. */
void bn_dataset_free(bn_dataset_t *ds);

/* Converts images idx[0..batch) of ds into x (batch * rows * cols floats,
 * (pixel / 255 - BN_PIXEL_MEAN) / BN_PIXEL_STD) and y (batch labels).
 * Indices must be < ds->n. */
void bn_dataset_batch(const bn_dataset_t *ds, const uint32_t *idx, uint32_t batch,
                      float *x, uint8_t *y);

#endif
