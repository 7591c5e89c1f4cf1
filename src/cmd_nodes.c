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

/* One `byznode node --ids` run: this command's own options, the swarm's
 * size, the ids to run and their child processes. */
typedef struct {
    char      **args;        /* the nodes' shared arguments, NULL-terminated (array owned) */
    int         nargs;
    const char *ids_spec;    /* --ids, or NULL                                     */
    bool        from_env;    /* --ids-from-env                                     */
    const char *key_dir, *log_dir, *attack;   /* or NULL                           */
    uint32_t    n;           /* nodes in the swarm                                 */
    bool        curve;       /* the swarm file lists CURVE keys                    */
    uint64_t    seed;        /* the run's seed and Byzantine count (bn_roles)      */
    uint32_t    byzantine;
    uint32_t   *ids, n_ids;  /* the ids to run (owned)                             */
    bool       *is_byz;      /* n entries with --byzantine-attack, else NULL (owned) */
    char        exe[4096];   /* the binary each child execs                        */
    pid_t      *pids;        /* n_ids entries; 0 once reaped (owned)               */
    int         started, failed;
} s_run_t;

/* Removes this command's own options from r->args into r.  false (with a
 * message) when one lacks its value or two exclude each other. */
static bool s_own_options(s_run_t *r)
{
    bool have_ids = false, have_key_dir = false, have_log_dir = false, have_attack = false;
    r->ids_spec = s_take(r->args, &r->nargs, "--ids", true, &have_ids);
    s_take(r->args, &r->nargs, "--ids-from-env", false, &r->from_env);
    r->key_dir = s_take(r->args, &r->nargs, "--key-dir", true, &have_key_dir);
    r->log_dir = s_take(r->args, &r->nargs, "--log-dir", true, &have_log_dir);
    r->attack = s_take(r->args, &r->nargs, "--byzantine-attack", true, &have_attack);
    const char *why = NULL;
    if ((have_ids && !r->ids_spec) || (have_key_dir && !r->key_dir) || (have_log_dir && !r->log_dir)
        || (have_attack && !r->attack))
        why = "--ids, --key-dir, --log-dir and --byzantine-attack need a value";
    else if (have_ids == r->from_env)
        why = "give either --ids LIST or --ids-from-env";
    else if (s_has(r->args, r->nargs, "--id"))
        why = "--id and --ids/--ids-from-env exclude each other";
    else if (r->key_dir && s_has(r->args, r->nargs, "--key"))
        why = "--key and --key-dir exclude each other";
    if (why)
        fprintf(stderr, "byznode node: %s\n", why);
    return why == NULL;
}

/* Checks the configuration once, as every node will (swarm file first, then
 * the command line), so that a typo gives one error, not thirty.  Takes the
 * swarm's size, CURVE flag, seed and Byzantine count. */
static bool s_check_config(s_run_t *r)
{
    const char *swarm_path = NULL;
    for (int i = 0; i + 1 < r->nargs; i++)
        if (!strcmp(r->args[i], "--swarm"))
            swarm_path = r->args[i + 1];
    for (int i = 0; i < r->nargs; i++)
        if (!strncmp(r->args[i], "--swarm=", 8))
            swarm_path = r->args[i] + 8;
    if (!swarm_path) {
        fprintf(stderr, "byznode node: --swarm FILE is required\n");
        return false;
    }
    char err[512];
    bn_swarm_t swarm;
    if (bn_swarm_load(&swarm, swarm_path, err, sizeof err) != BN_OK) {
        fprintf(stderr, "byznode node: %s\n", err);
        return false;
    }
    bn_options_t o;
    int orc = bn_options_load(&o, &swarm, r->nargs, r->args, 0, err, sizeof err);
    r->n = swarm.n;
    r->curve = swarm.curve;
    bn_swarm_free(&swarm);
    if (orc != BN_OK) {
        fprintf(stderr, "byznode node: %s\n", err);
        return false;
    }
    r->seed = o.seed;
    r->byzantine = o.byzantine;
    return true;
}

/* The one id of --ids-from-env: the first of the launchers' rank variables
 * that is set. */
static bool s_ids_from_env(s_run_t *r)
{
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
        return false;
    }
    char err[512];
    if (bn_ids_parse(val, r->n, &r->ids, &r->n_ids, err, sizeof err) != BN_OK || r->n_ids != 1) {
        fprintf(stderr, "byznode node: %s=%s: not a node id of this %u-node swarm\n", var, val, r->n);
        return false;
    }
    return true;
}

/* The ids to run, the keys they use and which of them attack. */
static bool s_resolve_ids(s_run_t *r)
{
    char err[512];
    if (r->from_env) {
        if (!s_ids_from_env(r))
            return false;
    } else if (bn_ids_parse(r->ids_spec, r->n, &r->ids, &r->n_ids, err, sizeof err) != BN_OK) {
        fprintf(stderr, "byznode node: %s\n", err);
        return false;
    }
    if (r->n_ids > 1 && s_has(r->args, r->nargs, "--key")) {
        fprintf(stderr, "byznode node: one --key cannot serve %u nodes: use --key-dir DIR (DIR/node-K.key)\n",
                r->n_ids);
        return false;
    }
    if (r->curve && !r->key_dir && !s_has(r->args, r->nargs, "--key")) {
        fprintf(stderr, "byznode node: the swarm file lists CURVE keys: give --key-dir DIR (DIR/node-K.key)\n");
        return false;
    }
    if (r->attack) {
        if (s_has(r->args, r->nargs, "--attack")) {
            fprintf(stderr, "byznode node: --attack and --byzantine-attack exclude each other\n");
            return false;
        }
        r->is_byz = calloc(r->n, sizeof *r->is_byz);
        if (!r->is_byz)
            return false;
        bn_roles_byzantine(r->seed, r->n, r->byzantine, r->is_byz);
    }
    return true;
}

/* The binary to exec (this one), one BLAS thread per child, and the signals
 * this command forwards. */
static void s_prepare(s_run_t *r, const char *self)
{
    ssize_t el = readlink("/proc/self/exe", r->exe, sizeof r->exe - 1);
    if (el > 0)
        r->exe[el] = '\0';
    else
        snprintf(r->exe, sizeof r->exe, "%s", self);
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    setenv("OMP_NUM_THREADS", "1", 1);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* The child's argv: `EXE node ARGS --id K [--key DIR/node-K.key] [--attack A]`
 * (malloc'd array; the strings are borrowed, id_text and key_path included). */
static char **s_child_argv(const s_run_t *r, uint32_t id, char *id_text, char *key_path)
{
    char **cargs = calloc((size_t) r->nargs + 10, sizeof *cargs);
    if (!cargs)
        return NULL;
    int na = 0;
    cargs[na++] = (char *) r->exe;
    cargs[na++] = "node";
    for (int i = 0; i < r->nargs; i++)
        cargs[na++] = r->args[i];
    cargs[na++] = "--id";
    cargs[na++] = id_text;
    if (r->key_dir) {
        cargs[na++] = "--key";
        cargs[na++] = key_path;
    }
    if (r->is_byz && r->is_byz[id]) {
        cargs[na++] = "--attack";
        cargs[na++] = (char *) r->attack;
    }
    cargs[na] = NULL;
    return cargs;
}

/* In the forked child of node id: dies with the parent, default signals,
 * output to --log-dir's file, then execs.  Never returns. */
static void s_child_exec(const s_run_t *r, uint32_t id, pid_t parent, char **cargs)
{
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        _exit(1);
#else
    (void) parent;
#endif
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    if (r->log_dir) {
        char log_path[4096];
        snprintf(log_path, sizeof log_path, "%s/node-%u.log", r->log_dir, id);
        int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) {
            fprintf(stderr, "byznode node: %s: %s\n", log_path, strerror(errno));
            _exit(1);
        }
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
    }
    execv(r->exe, cargs);
    fprintf(stderr, "byznode node: cannot run %s: %s\n", r->exe, strerror(errno));
    _exit(127);
}

/* Forks one child per id, in order, until a signal arrives or a fork fails. */
static void s_start_all(s_run_t *r)
{
    pid_t parent = getpid();
    for (uint32_t k = 0; k < r->n_ids && !s_signal; k++) {
        char id_text[16], key_path[4096] = "";
        snprintf(id_text, sizeof id_text, "%u", r->ids[k]);
        if (r->key_dir)
            snprintf(key_path, sizeof key_path, "%s/node-%u.key", r->key_dir, r->ids[k]);
        char **cargs = s_child_argv(r, r->ids[k], id_text, key_path);
        if (!cargs) {
            r->failed++;
            break;
        }
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0)
            s_child_exec(r, r->ids[k], parent, cargs);
        free(cargs);
        if (pid < 0) {
            fprintf(stderr, "byznode node: fork for node %u: %s\n", r->ids[k], strerror(errno));
            r->failed++;
            break;
        }
        r->pids[k] = pid;
        r->started++;
    }
}

/* Child k has exited with status: a failure is counted and named. */
static void s_reaped(s_run_t *r, int k, int status)
{
    r->pids[k] = 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return;
    r->failed++;
    uint32_t id = r->ids[k];
    if (WIFSIGNALED(status))
        fprintf(stderr, "byznode node: node %u was killed by signal %d\n", id, WTERMSIG(status));
    else if (r->log_dir)
        fprintf(stderr, "byznode node: node %u exited with status %d (see %s/node-%u.log)\n",
                id, WEXITSTATUS(status), r->log_dir, id);
    else
        fprintf(stderr, "byznode node: node %u exited with status %d\n", id, WEXITSTATUS(status));
}

/* SIGTERM to every child not reaped yet. */
static void s_stop_children(const s_run_t *r)
{
    for (int k = 0; k < r->started; k++)
        if (r->pids[k] > 0)
            kill(r->pids[k], SIGTERM);
}

/* Reaps every child; forwards each signal once to every live child (at once
 * if one came, or a start failed, before the children were all started). */
static void s_reap_all(s_run_t *r)
{
    int alive = r->started;
    if (s_signal || r->failed)
        s_stop_children(r);
    int forwarded = s_signal;
    while (alive > 0) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid > 0) {
            for (int k = 0; k < r->started; k++)
                if (r->pids[k] == pid) {
                    alive--;
                    s_reaped(r, k, status);
                    break;
                }
            continue;
        }
        if (pid < 0 && errno != EINTR)
            break;
        if (s_signal && s_signal != forwarded) {
            forwarded = s_signal;
            s_stop_children(r);
        }
        struct timespec ts = { 0, 50 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
}

int bn_cmd_nodes(const char *self, int argc, char **argv)
{
    s_run_t r = { .nargs = 0 };
    /* args: argv[1..argc) plus room for the per-child additions and NULL. */
    r.args = calloc((size_t) argc + 8, sizeof *r.args);
    if (!r.args)
        return 1;
    for (int i = 1; i < argc; i++)
        r.args[r.nargs++] = argv[i];
    r.args[r.nargs] = NULL;

    int rc = 2;
    if (!s_own_options(&r) || !s_check_config(&r) || !s_resolve_ids(&r))
        goto done;
    s_prepare(&r, self);
    r.pids = calloc(r.n_ids, sizeof *r.pids);
    if (!r.pids)
        goto done;
    s_start_all(&r);
    s_reap_all(&r);
    if (s_signal)
        rc = 128 + s_signal;
    else
        rc = r.failed ? 1 : 0;
    if (r.failed)
        fprintf(stderr, "byznode node: %d of %u node(s) failed\n", r.failed, r.n_ids);
done:
    free(r.is_byz);
    free(r.pids);
    free(r.ids);
    free(r.args);
    return rc;
}
