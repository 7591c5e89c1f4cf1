/*  fuzz_monitor_swarm.h -- the swarm fuzz_monitor and its seed writer share.
 *
 *  4 nodes (one Byzantine, drawn from seed 7), logreg (7,850 floats),
 *  3 epochs of R = 15 rounds, round timeout 1 s.  s_fuzz_swarm_write()
 *  writes DIR/swarm.txt and returns its path in a static buffer.
 */
#ifndef BN_FUZZ_MONITOR_SWARM_H
#define BN_FUZZ_MONITOR_SWARM_H

#include <stdio.h>

#define S_FUZZ_N      4
#define S_FUZZ_E      3
#define S_FUZZ_GRACE  5.0
#define S_FUZZ_T0     1000.0

static inline const char *s_fuzz_swarm_write(const char *dir)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/swarm.txt", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return NULL;
    fprintf(f, "swarm fuzz-monitor\nmonitor ipc://%s/m\n"
               "option model logreg\noption epochs %d\noption byzantine 1\noption seed 7\n"
               "option round-timeout 1000\noption train-size 6000\noption batch 100\n",
            dir, S_FUZZ_E);
    for (int i = 0; i < S_FUZZ_N; i++)
        fprintf(f, "node %d ipc://%s/%d\n", i, dir, i);
    return fclose(f) == 0 ? path : NULL;
}

#endif
