/*  hostfile.h -- the hosts of a multi-host swarm, and which node ids each runs.
 *
 *  A hostfile lists one host per line, in Slurm's and MPI's conventions:
 *      # comment
 *      host                 no slot count: as many nodes as it is given
 *      host 8               at most 8 nodes
 *      host slots=8         the same (Open MPI); max_slots=K is accepted and ignored
 *      host:8               the same (MPICH)
 *      host addr=10.0.0.5   the address written in this host's endpoints
 *                           (default: the name itself)
 *  A host named on several lines is one host: its slots add up, and there a
 *  line without a count is one slot (SLURM_HOSTFILE repeats a host per task).
 *
 *  Placement spreads n nodes over the hosts as evenly as their slots allow
 *  (one more to each host with room, in turn), then numbers them in blocks
 *  in host order: host 0 runs ids 0..c0-1, host 1 the next c1, and so on.
 *  When the slots add up to exactly n this is Slurm's block distribution of
 *  n tasks, so task SLURM_PROCID runs where node SLURM_PROCID's endpoint is.
 */
#ifndef BN_HOSTFILE_H
#define BN_HOSTFILE_H

#include "common.h"

#define BN_HOST_NAME_MAX 128

typedef struct {
    char     name[BN_HOST_NAME_MAX];   /* as written: what ssh or Slurm calls the host */
    char     addr[BN_HOST_NAME_MAX];   /* host part of its endpoints                   */
    uint32_t slots;                    /* capacity; 0 = no limit given                 */
    uint32_t first;                    /* after placement: its first node id           */
    uint32_t count;                    /* after placement: how many nodes it runs      */
} bn_host_t;

typedef struct {
    uint32_t   n_hosts;
    bn_host_t *hosts;                  /* n_hosts entries in file order; owned */
} bn_hostfile_t;

/* Reads a hostfile.  BN_EIO / BN_EFORMAT / BN_ENOMEM with a one-line message
 * naming the file, the line and the bad field.  On success the caller owns hf
 * and frees it with bn_hostfile_free (safe on a zeroed or freed hostfile). */
int  bn_hostfile_load(bn_hostfile_t *hf, const char *path, char *err, size_t errlen);
void bn_hostfile_free(bn_hostfile_t *hf);

/* Fills first/count of every host for n nodes (see the banner).  BN_EARG when
 * n exceeds the slots of all hosts together, or n is 0. */
int bn_hostfile_place(bn_hostfile_t *hf, uint32_t n, char *err, size_t errlen);

/* Parses a node id list: "7", "0-29", "0-4,10,12-13" (each id < limit, no id
 * twice).  On success *ids is a malloc'd array of *count ids in the order
 * written (caller frees); BN_EARG with a message naming the bad part. */
int bn_ids_parse(const char *spec, uint32_t limit, uint32_t **ids, uint32_t *count,
                 char *err, size_t errlen);

#endif
