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

#endif
