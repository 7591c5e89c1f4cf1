/*  cmd_nodes.c -- `byznode node --ids LIST` / `--ids-from-env`: one command
 *  per host (or per launcher task) that runs many nodes.
 *
 *  Every node is still its own process with its own model: this command
 *  checks the arguments once, then forks and execs this same binary as
 *  `byznode node ... --id K` per id (a fresh process image: its own libzmq
 *  context, its own BLAS state; OPENBLAS_NUM_THREADS=1 and OMP_NUM_THREADS=1
 *  are set for it), and reaps them.  SIGINT, SIGTERM and SIGHUP received by
 *  this command are forwarded to every live child as SIGTERM (a node then
 *  finishes its round and exits cleanly); on Linux a child also gets SIGTERM
 *  if this command dies without forwarding (PR_SET_PDEATHSIG).  The exit code
 *  is 0 when every child exited 0, 1 when any failed (each failure is named
 *  on stderr), 128 + signal when a signal stopped the run.
 *
 *  Options only this command knows (the rest go to every node unchanged):
 *      --ids LIST            0-29, 3,5,9-12 (src/hostfile.h: bn_ids_parse)
 *      --ids-from-env        one id: SLURM_PROCID, OMPI_COMM_WORLD_RANK or
 *                            PMI_RANK, the first that is set
 *      --key-dir DIR         node K uses DIR/node-K.key (swarm-file --curve)
 *      --log-dir DIR         node K's stdout and stderr go to DIR/node-K.log
 *      --byzantine-attack A  nodes in the swarm's Byzantine set (bn_roles)
 *                            get --attack A
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "cmd.h"
#include "hostfile.h"
#include "options.h"
#include "roles.h"
#include "swarmfile.h"

static volatile sig_atomic_t s_signal = 0;

static void s_on_signal(int sig)
{
    s_signal = sig;
}

/* The value of --name (as "--name V" or "--name=V"), removing it from args. */
static const char *s_take(char **args, int *nargs, const char *name, bool has_value, bool *present)
{
    size_t len = strlen(name);
    const char *value = NULL;
    for (int i = 0; i < *nargs; i++) {
        int drop = 0;
        if (!strcmp(args[i], name)) {
            drop = 1;
            if (has_value && i + 1 < *nargs) {
                value = args[i + 1];
                drop = 2;
            }
        } else if (has_value && !strncmp(args[i], name, len) && args[i][len] == '=') {
            value = args[i] + len + 1;
            drop = 1;
        }
        if (drop) {
            if (present)
                *present = true;
            memmove(&args[i], &args[i + drop], (size_t) (*nargs - i - drop + 1) * sizeof *args);
            *nargs -= drop;
            i--;
        }
    }
    return value;
}

static bool s_has(char **args, int nargs, const char *name)
{
    size_t len = strlen(name);
    for (int i = 0; i < nargs; i++)
        if (!strcmp(args[i], name) || (!strncmp(args[i], name, len) && args[i][len] == '='))
            return true;
    return false;
}

int bn_cmd_nodes(const char *self, int argc, char **argv)
{
    char err[512];
    int rc = 2;
    uint32_t *ids = NULL, n_ids = 0;
    pid_t *pids = NULL;
    bool *is_byz = NULL;
    /* args: argv[1..argc) plus room for the per-child additions and NULL. */
    char **args = calloc((size_t) argc + 8, sizeof *args);
    if (!args)
        return 1;
    int nargs = 0;
    for (int i = 1; i < argc; i++)
        args[nargs++] = argv[i];
    args[nargs] = NULL;

    bool have_ids = false, from_env = false, have_key_dir = false, have_log_dir = false, have_attack = false;
    const char *ids_spec = s_take(args, &nargs, "--ids", true, &have_ids);
    s_take(args, &nargs, "--ids-from-env", false, &from_env);
    const char *key_dir = s_take(args, &nargs, "--key-dir", true, &have_key_dir);
    const char *log_dir = s_take(args, &nargs, "--log-dir", true, &have_log_dir);
    const char *attack = s_take(args, &nargs, "--byzantine-attack", true, &have_attack);
    if ((have_ids && !ids_spec) || (have_key_dir && !key_dir) || (have_log_dir && !log_dir)
        || (have_attack && !attack)) {
        fprintf(stderr, "byznode node: --ids, --key-dir, --log-dir and --byzantine-attack need a value\n");
        goto done;
    }
    if (have_ids == from_env) {
        fprintf(stderr, "byznode node: give either --ids LIST or --ids-from-env\n");
        goto done;
    }
    if (s_has(args, nargs, "--id")) {
        fprintf(stderr, "byznode node: --id and --ids/--ids-from-env exclude each other\n");
        goto done;
    }
    if (key_dir && s_has(args, nargs, "--key")) {
        fprintf(stderr, "byznode node: --key and --key-dir exclude each other\n");
        goto done;
    }

    /* Check the configuration once, as every node will (swarm file first,
     * then the command line), so that a typo gives one error, not thirty. */
    const char *swarm_path = NULL;
    for (int i = 0; i + 1 < nargs; i++)
        if (!strcmp(args[i], "--swarm"))
            swarm_path = args[i + 1];
    for (int i = 0; i < nargs; i++)
        if (!strncmp(args[i], "--swarm=", 8))
            swarm_path = args[i] + 8;
    if (!swarm_path) {
        fprintf(stderr, "byznode node: --swarm FILE is required\n");
        goto done;
    }
    bn_swarm_t swarm;
    if (bn_swarm_load(&swarm, swarm_path, err, sizeof err) != BN_OK) {
        fprintf(stderr, "byznode node: %s\n", err);
        goto done;
    }
    bn_options_t o;
    int orc = bn_options_load(&o, &swarm, nargs, args, 0, err, sizeof err);
    uint32_t n = swarm.n;
    bool curve = swarm.curve;
    bn_swarm_free(&swarm);
    if (orc != BN_OK) {
        fprintf(stderr, "byznode node: %s\n", err);
        goto done;
    }

    if (from_env) {
        static const char *vars[] = { "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK" };
        const char *var = NULL, *val = NULL;
        for (size_t i = 0; i < BN_ARRAY_LEN(vars) && !val; i++)
            if ((val = getenv(vars[i])) && *val)
                var = vars[i];
            else
                val = NULL;
        if (!val) {
            fprintf(stderr, "byznode node: --ids-from-env: none of SLURM_PROCID, OMPI_COMM_WORLD_RANK, "
                    "PMI_RANK is set\n");
            goto done;
        }
        if (bn_ids_parse(val, n, &ids, &n_ids, err, sizeof err) != BN_OK || n_ids != 1) {
            fprintf(stderr, "byznode node: %s=%s: not a node id of this %u-node swarm\n", var, val, n);
            goto done;
        }
    } else if (bn_ids_parse(ids_spec, n, &ids, &n_ids, err, sizeof err) != BN_OK) {
        fprintf(stderr, "byznode node: %s\n", err);
        goto done;
    }
    if (n_ids > 1 && s_has(args, nargs, "--key")) {
        fprintf(stderr, "byznode node: one --key cannot serve %u nodes: use --key-dir DIR (DIR/node-K.key)\n",
                n_ids);
        goto done;
    }
    if (curve && !key_dir && !s_has(args, nargs, "--key")) {
        fprintf(stderr, "byznode node: the swarm file lists CURVE keys: give --key-dir DIR (DIR/node-K.key)\n");
        goto done;
    }
    if (attack) {
        if (s_has(args, nargs, "--attack")) {
            fprintf(stderr, "byznode node: --attack and --byzantine-attack exclude each other\n");
            goto done;
        }
        is_byz = calloc(n, sizeof *is_byz);
        if (!is_byz)
            goto done;
        bn_roles_byzantine(o.seed, n, o.byzantine, is_byz);
    }

    char exe[4096];
    ssize_t el = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (el > 0)
        exe[el] = '\0';
    else
        snprintf(exe, sizeof exe, "%s", self);
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    setenv("OMP_NUM_THREADS", "1", 1);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    pids = calloc(n_ids, sizeof *pids);
    if (!pids)
        goto done;
    pid_t parent = getpid();
    int failed = 0, started = 0;
    for (uint32_t k = 0; k < n_ids && !s_signal; k++) {
        char id_text[16], key_path[4096] = "";
        snprintf(id_text, sizeof id_text, "%u", ids[k]);
        if (key_dir)
            snprintf(key_path, sizeof key_path, "%s/node-%u.key", key_dir, ids[k]);
        int na = 0;
        char **cargs = calloc((size_t) nargs + 10, sizeof *cargs);
        if (!cargs) {
            failed++;
            break;
        }
        cargs[na++] = exe;
        cargs[na++] = "node";
        for (int i = 0; i < nargs; i++)
            cargs[na++] = args[i];
        cargs[na++] = "--id";
        cargs[na++] = id_text;
        if (key_dir) {
            cargs[na++] = "--key";
            cargs[na++] = key_path;
        }
        if (is_byz && is_byz[ids[k]]) {
            cargs[na++] = "--attack";
            cargs[na++] = (char *) attack;
        }
        cargs[na] = NULL;
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
#ifdef __linux__
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (getppid() != parent)
                _exit(1);
#endif
            signal(SIGINT, SIG_DFL);
            signal(SIGTERM, SIG_DFL);
            signal(SIGHUP, SIG_DFL);
            signal(SIGPIPE, SIG_DFL);
            if (log_dir) {
                char log_path[4096];
                snprintf(log_path, sizeof log_path, "%s/node-%u.log", log_dir, ids[k]);
                int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
                if (fd < 0) {
                    fprintf(stderr, "byznode node: %s: %s\n", log_path, strerror(errno));
                    _exit(1);
                }
                dup2(fd, 1);
                dup2(fd, 2);
                close(fd);
            }
            execv(exe, cargs);
            fprintf(stderr, "byznode node: cannot run %s: %s\n", exe, strerror(errno));
            _exit(127);
        }
        free(cargs);
        if (pid < 0) {
            fprintf(stderr, "byznode node: fork for node %u: %s\n", ids[k], strerror(errno));
            failed++;
            break;
        }
        pids[k] = pid;
        started++;
    }

    /* Reap; forward each signal once to every live child. */
    int alive = started, forwarded = 0;
    if (s_signal || failed)
        for (int k = 0; k < started; k++)
            kill(pids[k], SIGTERM);
    forwarded = s_signal;
    while (alive > 0) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid > 0) {
            for (int k = 0; k < started; k++)
                if (pids[k] == pid) {
                    pids[k] = 0;
                    alive--;
                    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                        break;
                    failed++;
                    if (WIFSIGNALED(status))
                        fprintf(stderr, "byznode node: node %u was killed by signal %d\n", ids[k],
                                WTERMSIG(status));
                    else if (log_dir)
                        fprintf(stderr, "byznode node: node %u exited with status %d (see %s/node-%u.log)\n",
                                ids[k], WEXITSTATUS(status), log_dir, ids[k]);
                    else
                        fprintf(stderr, "byznode node: node %u exited with status %d\n", ids[k],
                                WEXITSTATUS(status));
                    break;
                }
            continue;
        }
        if (pid < 0 && errno != EINTR)
            break;
        if (s_signal && s_signal != forwarded) {
            forwarded = s_signal;
            for (int k = 0; k < started; k++)
                if (pids[k] > 0)
                    kill(pids[k], SIGTERM);
        }
        struct timespec ts = { 0, 50 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    if (s_signal)
        rc = 128 + s_signal;
    else
        rc = failed ? 1 : 0;
    if (failed)
        fprintf(stderr, "byznode node: %d of %u node(s) failed\n", failed, n_ids);
done:
    free(is_byz);
    free(pids);
    free(ids);
    free(args);
    return rc;
}
