/*  cmd.h -- the byznode command-line subcommands.
 *
 *  Each subcommand is a function with main()'s signature: argv[0] is the
 *  subcommand's name (for example "topology"), options follow.  It prints its
 *  results on stdout and its errors on stderr, and returns the process exit
 *  code: 0 on success, 2 on a usage error or a failure.
 */
#ifndef BN_CMD_H
#define BN_CMD_H

/* byznode topology --nodes N --p P --min-degree D --seed S [--epoch E]
 *                  [--file EDGES] [--out FILE] [--json]
 * Draws (or with --file loads) a topology, prints n, edges, min/mean/max
 * degree, connectivity, diameter, draws and the fingerprint (16 hex digits),
 * and with --out writes the edge list.  Uses getopt_long (resets optind). */
int bn_cmd_topology(int argc, char **argv);

/* byznode swarm-file --hosts HOSTFILE --nodes N --out SWARMFILE [--curve KEYDIR]
 *                    [--port-base P] [--name NAME] [--option "NAME VALUE"]...
 * Writes the swarm file (and with --curve one key pair per node and for the
 * monitor, KEYDIR/<host>/, 0600) for N nodes over the hostfile's hosts
 * (src/hostfile.h); refuses what cannot run with a one-line error, before
 * writing anything (src/cmd_swarmfile.c). */
int bn_cmd_swarmfile(int argc, char **argv);

/* byznode node --swarm FILE (--ids LIST | --ids-from-env) [--key-dir DIR]
 *              [--log-dir DIR] [--byzantine-attack NAME] [node options]
 * Runs one process per id (fork + exec of this binary, `self` is argv[0] as
 * a fallback for /proc/self/exe), forwards SIGINT/SIGTERM/SIGHUP as SIGTERM,
 * reaps them; non-zero when any failed (src/cmd_nodes.c). */
int bn_cmd_nodes(const char *self, int argc, char **argv);

/* byznode keygen [--out FILE]: a CURVE key pair, to FILE (0600, an existing
 * file is never overwritten) or stdout.
 * byznode version: "byznode V", "protocol P", "igraph V", "zmq V curve yes|no",
 * "kernels K", one per line: what hosts of one swarm must agree on. */
int bn_cmd_keygen(int argc, char **argv);
int bn_cmd_version(int argc, char **argv);

#endif
