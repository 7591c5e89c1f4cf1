/*  outfile.h -- result files that are replaced whole or not at all.
 *
 *  A bottom-layer module (C library and common.h only).  bn_outfile_open()
 *  creates a temporary file beside the target (same directory, so the final
 *  rename is atomic); the caller writes through bn_outfile_stream();
 *  bn_outfile_commit() flushes, fsyncs and closes it, checking every step
 *  and the stream's error indicator (so a failed fprintf or fwrite anywhere
 *  in between is caught), and only then renames it over the target.  On any
 *  failure the temporary file is removed and the previous target -- the last
 *  good version -- is left exactly as it was.  Disk full (ENOSPC), a quota, a
 *  file-size limit or an I/O error therefore never leave a truncated or
 *  empty result behind.
 *
 *  Used for summary.json and epochs.csv (monitor.c); meant for any file that
 *  is rewritten as a whole (checkpoints, reports).
 */
#ifndef BN_OUTFILE_H
#define BN_OUTFILE_H

#include <stdio.h>

#include "common.h"

typedef struct bn_outfile_t bn_outfile_t;

/* Starts a replacement of `path` (copied).  The new file gets mode 0644.
 * NULL on failure with a one-line reason in err (the
 * directory does not exist or is not writable, no space for the inode). */
bn_outfile_t *bn_outfile_open(const char *path, char *err, size_t errlen);

/* The stream to write the new content to; borrowed, valid until commit or
 * abort.  Never NULL for an open outfile. */
FILE *bn_outfile_stream(bn_outfile_t *self);

/* Finishes the replacement: fflush, ferror, fsync, fclose, rename, then an
 * fsync of the directory.  BN_OK, or BN_EIO with "PATH: reason" in err (the
 * target untouched, the temporary file removed).  Always frees the outfile
 * and sets *self_p to NULL; safe with *self_p == NULL (returns BN_EARG). */
int bn_outfile_commit(bn_outfile_t **self_p, char *err, size_t errlen);

/* Abandons the replacement: closes and removes the temporary file.  Safe
 * twice and with NULL. */
void bn_outfile_abort(bn_outfile_t **self_p);

#ifdef BN_OUTFILE_MEMORY
/* Fuzz builds only (-DBN_OUTFILE_MEMORY, tests/fuzz/meson.build): commits
 * go to memory instead of files (outfile.c says what differs).  The last
 * committed content of path, NULL if none; and forgetting all of them. */
const char *bn_outfile_memory(const char *path, size_t *len);
void bn_outfile_memory_clear(void);
#endif

#endif
