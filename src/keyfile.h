/*  keyfile.h -- writing CURVE key pair files, the way a secret should be written.
 *
 *  A key file holds two lines, "public-key <Z85>" and "secret-key <Z85>"
 *  (transport.c reads the secret one).  It is created with mode 0600 whatever
 *  the umask, and an existing file is never overwritten: a key that a swarm
 *  file already lists must not silently change, nor a secret be clobbered.
 */
#ifndef BN_KEYFILE_H
#define BN_KEYFILE_H

#include "common.h"

/* Makes a fresh pair (Z85, 40 characters + NUL each).  BN_ENET when libzmq
 * has no CURVE support. */
int bn_keyfile_pair(char pub[41], char sec[41], char *err, size_t errlen);

/* Creates path (O_EXCL, mode 0600) and writes the pair.  BN_EIO with a message
 * naming the path when it exists already or cannot be written; a partly
 * written file is removed. */
int bn_keyfile_write(const char *path, const char *pub, const char *sec, char *err, size_t errlen);

/* Creates directory path with mode 0700 if it does not exist (not its
 * parents).  BN_EIO when it cannot, or when path exists and is not a directory. */
int bn_keyfile_mkdir(const char *path, char *err, size_t errlen);

#endif
