/*  swarmfile.h -- the one file that nodes on different hosts share.
 *
 *  Format (text, '#' starts a comment, fields separated by blanks):
 *      swarm   <name>                       id of the swarm (hashed into messages)
 *      monitor <endpoint> [<public-key>]    optional metrics collector
 *      option  <name> <value>               a run option every node applies
 *                                           (same names as the command line)
 *      node    <id> <endpoint> [<public-key>]
 *  Node ids are 0..n-1, each exactly once.  Endpoints are tcp://host:port or
 *  ipc://path; keys are 40-character Z85 CURVE public keys (all or none of
 *  the nodes have one).  Errors name the line and the bad value.
 */
#ifndef BN_SWARMFILE_H
#define BN_SWARMFILE_H

#include "common.h"

#define BN_ENDPOINT_MAX 256
#define BN_KEY_Z85_LEN 40

typedef struct {
    char endpoint[BN_ENDPOINT_MAX];
    char public_key[BN_KEY_Z85_LEN + 1];  /* "" when the swarm runs without CURVE */
} bn_swarm_peer_t;

typedef struct {
    char name[128];
    uint64_t swarm_id;                   /* 64-bit hash of name */
    uint32_t n;
    bn_swarm_peer_t *nodes;              /* n entries, indexed by id; owned */
    bn_swarm_peer_t monitor;             /* endpoint "" when absent */
    uint32_t n_options;
    char (*option_names)[64];            /* owned */
    char (*option_values)[256];          /* owned */
    bool curve;                          /* every node has a key */
} bn_swarm_t;

int  bn_swarm_load(bn_swarm_t *s, const char *path, char *err, size_t errlen);
void bn_swarm_free(bn_swarm_t *s);

#endif
