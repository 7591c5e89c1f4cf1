/*  node_setup.c -- a node's constructor, destructor and checkpoints; see
 *  node_setup.h.
 */
#include "node_setup.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "attack.h"
#include "checkpoint.h"
#include "partition.h"
#include "roles.h"

extern void openblas_set_num_threads(int);

/* The held-out auxiliary set of a rule with BN_RULE_F_HELDOUT (bygars: the
 * paper's server holds an auxiliary data set it does not train on): the
 * first A = min(--batch, 512, shard / 2) of a shuffle of the shard's indices
 * by the rng stream BN_STREAM_AUX + (id << 8) of --seed move from nd->train
 * to nd->aux, so the same images on every run with that seed, none of them
 * ever in a training batch.  The oracle (node.c) evaluates on all of aux. */
static int s_hold_out(bn_node_t *nd, char *err, size_t errlen)
{
    uint32_t n = nd->train.n, a = BN_MIN(BN_MIN(nd->opt.batch, 512u), n / 2);
    if (a == 0)
        return bn_fail(err, errlen, BN_EARG, "rule %s holds out an auxiliary set: node %u has "
                       "%u training image(s), too few", bn_rule_name(nd->opt.rule.kind), nd->id, n);
    uint32_t *idx = malloc((size_t) n * sizeof *idx);
    if (!idx)
        return bn_fail(err, errlen, BN_ENOMEM, "out of memory");
    for (uint32_t i = 0; i < n; i++)
        idx[i] = i;
    bn_rng_t rng;
    bn_rng_seed(&rng, nd->opt.seed, BN_STREAM_AUX + ((uint64_t) nd->id << 8));
    bn_rng_shuffle_u32(&rng, idx, n);
    int rc = bn_dataset_split(&nd->train, idx, a, &nd->aux);
    free(idx);
    if (rc != BN_OK)
        return bn_fail(err, errlen, rc, "cannot hold out the auxiliary set");
    BN_INFO("rule %s: %u of the shard's %u images held out as the auxiliary set",
            bn_rule_name(nd->opt.rule.kind), a, n);
    return BN_OK;
}

/* This node's shard of the training set (or its own IDX pair), minus the
 * held-out auxiliary set if the rule wants one, and, for an honest node, the
 * test set and its evaluation subset. */
static int s_load_data(bn_node_t *nd, char *err, size_t errlen)
{
    const bn_options_t *o = &nd->opt;
    int rc;
    if (o->train_images[0]) {
        rc = bn_dataset_load(&nd->train, o->train_images, o->train_labels, NULL, 0, err, errlen);
        if (rc != BN_OK)
            return rc;
    } else {
        char path[BN_PATH_MAX + 64];
        if (bn_dataset_file(path, sizeof path, o->data_dir, true, true) != BN_OK)
            return bn_fail(err, errlen, BN_EARG, "%s: data directory path too long", o->data_dir);
        uint8_t *labels = NULL;
        uint32_t total = 0, count = 0, *idx = NULL;
        rc = bn_idx_read_labels(path, &labels, &total, err, errlen);
        if (rc != BN_OK)
            return rc;
        bn_partition_opts_t po = { o->partition, o->seed, nd->n, o->shards_per_node, o->alpha };
        rc = bn_partition_node(&po, labels, total, nd->id, &idx, &count, err, errlen);
        free(labels);
        if (rc != BN_OK)
            return rc;
        if (count == 0) {
            free(idx);
            return bn_fail(err, errlen, BN_EARG, "node %u got no training images (partition %s)",
                           nd->id, bn_partition_name(o->partition));
        }
        rc = bn_dataset_load_dir(&nd->train, o->data_dir, true, idx, count, err, errlen);
        free(idx);
        if (rc != BN_OK)
            return rc;
    }
    if (bn_rule_holds_out(o->rule.kind) && (rc = s_hold_out(nd, err, errlen)) != BN_OK)
        return rc;
    /* Only the evaluation subset stays in memory; the last epoch streams the
     * whole test set (node_report.c). */
    if (nd->honest) {
        rc = bn_dataset_load_eval(&nd->test, o->data_dir, o->eval_subset, o->seed,
                                  &nd->eval_partial, err, errlen);
        if (rc != BN_OK)
            return rc;
    }
    nd->order = malloc((nd->train.n ? nd->train.n : 1) * sizeof *nd->order);
    if (!nd->order)
        return BN_ENOMEM;
    for (uint32_t i = 0; i < nd->train.n; i++)
        nd->order[i] = i;
    bn_rng_shuffle_u32(&nd->batch_rng, nd->order, nd->train.n);
    return BN_OK;
}

/* The node's id must be started in its role (docs/protocol.md 3.2): an id
 * of the Byzantine set needs an explicit --attack (none runs it honestly in
 * the attack's place: the no-attack baseline of the same honest set), an
 * honest id never attacks.  The monitor scores by the same set, so a node
 * in the wrong role would only be dropped there and marked failed. */
static int s_check_role(bn_node_t *nd, char *err, size_t errlen)
{
    const bn_options_t *opt = &nd->opt;
    bool *set = calloc(nd->n, sizeof *set);
    if (!set || bn_roles_byzantine(opt->seed, nd->n, opt->byzantine, set) != BN_OK) {
        free(set);
        return bn_fail(err, errlen, BN_ENOMEM, "out of memory");
    }
    nd->byz_id = set[nd->id];
    free(set);
    if (nd->byz_id && !opt->attack_set)
        return bn_fail(err, errlen, BN_EARG,
                       "node %u is in the swarm's Byzantine set (seed %llu, byzantine %u: byznode roles): "
                       "start it with --attack NAME (--attack none runs it honestly)",
                       nd->id, (unsigned long long) opt->seed, opt->byzantine);
    if (!nd->byz_id && !nd->honest)
        return bn_fail(err, errlen, BN_EARG,
                       "node %u is honest in this swarm (seed %llu, byzantine %u: byznode roles): "
                       "--attack %s is for the Byzantine ids only",
                       nd->id, (unsigned long long) opt->seed, opt->byzantine,
                       bn_attack_name(opt->attack.kind));
    return BN_OK;
}

/* The per-node arrays, the roles an attacker knows and the RNG streams. */
static int s_alloc_state(bn_node_t *nd, char *err, size_t errlen)
{
    const bn_options_t *opt = &nd->opt;
    nd->is_byz = calloc(nd->n, sizeof *nd->is_byz);
    nd->weight_acc = calloc(nd->n, sizeof(float));
    nd->round_w = calloc(nd->n + 1, sizeof(float));
    nd->rep.weight = calloc(nd->n, sizeof(float));
    nd->nb_ptr = calloc(nd->n, sizeof *nd->nb_ptr);
    nd->nb_id = calloc(nd->n, sizeof *nd->nb_id);
    nd->nb_seen = calloc(nd->n, sizeof *nd->nb_seen);
    nd->nb_slot = calloc(nd->n, sizeof *nd->nb_slot);
    if (!nd->is_byz || !nd->weight_acc || !nd->round_w || !nd->rep.weight || !nd->nb_ptr || !nd->nb_id
        || !nd->nb_seen || !nd->nb_slot)
        return bn_fail(err, errlen, BN_ENOMEM, "out of memory");
    if (!nd->honest) {
        /* Attackers collude: they know who their fellows are. */
        if (bn_roles_byzantine(opt->seed, nd->n, opt->byzantine, nd->is_byz) != BN_OK)
            return bn_fail(err, errlen, BN_ENOMEM, "out of memory");
        nd->is_byz[nd->id] = true;
    }
    bn_rng_seed(&nd->batch_rng, opt->seed, BN_STREAM_BATCH + ((uint64_t) nd->id << 8));
    bn_rng_seed(&nd->attack_rng, opt->seed, BN_STREAM_ATTACK + ((uint64_t) nd->id << 8));
    nd->R = bn_schedule_rounds_per_epoch(opt->train_size, nd->n, opt->batch, opt->local_steps);
    return BN_OK;
}

/* Evaluation batch (samples): the model's scratch is sized for
 * max(--batch, S_EVAL_BATCH). */
#define S_EVAL_BATCH 64u

/* Model, parameter vectors, SGD state and aggregation rule. */
static int s_build_learner(bn_node_t *nd, char *err, size_t errlen)
{
    const bn_options_t *opt = &nd->opt;
    /* Scratch for the training batch (and the oracle's, never larger) and
     * for evaluation in batches of S_EVAL_BATCH: about 38 KB a sample for
     * the CNN, so 2.4 MB at 64 where 512 took 19 MB of every node's RSS
     * (docs/performance.md, "Memory per node"). */
    uint32_t cap = BN_MAX(opt->batch, S_EVAL_BATCH);
    nd->model = bn_model_new(opt->model, cap);
    if (!nd->model)
        return bn_fail(err, errlen, BN_ENOMEM, "cannot allocate the model");
    nd->dim = bn_model_dim(nd->model);
    nd->x = bn_alloc_floats(nd->dim);
    nd->x_prev = bn_alloc_floats(nd->dim);
    nd->x_out = bn_alloc_floats(nd->dim);
    nd->grad = bn_alloc_floats(nd->dim);
    nd->craft = bn_alloc_floats(nd->dim);
    nd->bx = bn_alloc_floats((size_t) cap * 784);
    nd->by = calloc(cap, 1);
    if (!nd->x || !nd->x_prev || !nd->x_out || !nd->grad || !nd->craft || !nd->bx || !nd->by)
        return bn_fail(err, errlen, BN_ENOMEM, "out of memory");
    bn_model_init(nd->model, nd->x, opt->seed);
    if (bn_sgd_init(&nd->sgd, nd->dim, opt->lr, opt->weight_decay, opt->momentum) != BN_OK)
        return bn_fail(err, errlen, BN_ENOMEM, "out of memory");
    nd->rule = bn_rule_new(&opt->rule, nd->dim, nd->n);
    if (!nd->rule)
        return bn_fail(err, errlen, BN_EARG, "cannot create rule %s", bn_rule_name(opt->rule.kind));
    return BN_OK;
}

/* Transport (with the fault injection), graphs and inbox. */
static int s_build_network(bn_node_t *nd, char *err, size_t errlen)
{
    const bn_options_t *opt = &nd->opt;
    char key[BN_KEY_Z85_LEN + 1];
    bn_transport_opts_t to;
    bn_transport_opts_default(&to);
    /* A whole MODEL: header, payload; a REPORT's metrics frame is only sent. */
    to.max_msg_size = (int64_t) nd->dim * 4 + 4096;
    /* An honest node has at most future_rounds messages in flight per peer;
     * a colluding attacker relays up to one model per honest node in a burst. */
    to.sndhwm = (int) BN_MAX(8u, 2 * opt->future_rounds);
    to.rcvhwm = to.sndhwm;
    if (!nd->honest && opt->omniscient)
        to.sndhwm = to.rcvhwm = (int) BN_MAX((uint32_t) to.sndhwm, 2 * nd->n);
    to.fault_drop = opt->fault_drop;
    to.fault_delay_ms = opt->fault_delay_ms;
    to.fault_seed = opt->seed;
    if (opt->key_path[0]) {
        int rc = bn_key_read(opt->key_path, key, err, errlen);
        if (rc != BN_OK)
            return rc;
        to.secret_key = key;
    }
    nd->tr = bn_transport_new(&nd->swarm, nd->id, NULL, &to, err, errlen);
    if (!nd->tr)
        return BN_ENET;
    /* Same-host models by reference, except under CURVE: there the bytes
     * must come through the authenticated channel.  Reading a peer's ring
     * needs no option; --shm decides whether this node writes one. */
    if (!nd->swarm.curve && !opt->key_path[0]) {
        bool publish = opt->shm != BN_SHM_OFF
                       && strncmp(nd->swarm.nodes[nd->id].endpoint, "ipc://", 6) == 0;
        char why[BN_PATH_MAX + 128];
        nd->shm = bn_shm_new(&nd->swarm, nd->id, nd->dim * sizeof(float), publish, why, sizeof why);
        if (!nd->shm)
            return bn_fail(err, errlen, BN_ENOMEM, "out of memory");
        /* References through FIFOs too, unless faults are injected: those
         * act in bn_transport_send, which the FIFO does not pass through. */
        if (opt->shm == BN_SHM_AUTO && bn_shm_publishing(nd->shm) && opt->fault_drop == 0
            && opt->fault_delay_ms == 0) {
            nd->refs = bn_refpipe_new(&nd->swarm, nd->id, why, sizeof why);
            if (nd->refs)
                bn_transport_watch(nd->tr, bn_refpipe_fd(nd->refs));
            else
                BN_WARN("same-host references go through the sockets: %s", why);
        }
    }
    bn_graphs_opts_t go = { nd->n, nd->opt.topology_file, opt->p, opt->min_degree, opt->seed,
                            opt->time_varying };
    nd->graphs = bn_graphs_new(&go);
    bn_inbox_opts_t io = { nd->n, nd->id, (uint32_t) nd->dim, opt->future_rounds, nd->R, opt->epochs,
                           opt->byzantine, nd->swarm.swarm_id, nd->config_fp, nd->swarm.curve,
                           nd->honest ? NULL : nd->is_byz, nd->graphs };
    nd->inbox = nd->graphs ? bn_inbox_new(&io) : NULL;
    if (!nd->inbox)
        return bn_fail(err, errlen, BN_ENOMEM, "out of memory");
    return BN_OK;
}

/* Resumes from <out>/checkpoint-<id>.bin if there is a usable one (one of
 * this configuration, checkpoint.h); a finished run is left alone
 * (nd->finished).  BN_OK, or BN_EIO when the jsonl cannot be trimmed to the
 * checkpoint's epoch. */
static int s_resume(bn_node_t *nd, char *err, size_t errlen)
{
    const bn_options_t *opt = &nd->opt;
    bn_checkpoint_t ck = { 0, 0, nd->dim, nd->x, nd->sgd.velocity, false, nd->batch_rng,
                           nd->attack_rng, nd->order, nd->train.n, 0, 0 };
    int crc = bn_checkpoint_load(opt->out_dir, nd->id, nd->config_fp, opt->epochs,
                                 &ck, err, errlen);
    if ((crc == BN_OK && ck.epoch >= opt->epochs)
        || (crc == BN_EIO && bn_checkpoint_log_last(nd->jsonl_path) >= opt->epochs)) {
        BN_INFO("already finished (%s says epoch %u of %u): nothing to do",
                crc == BN_OK ? "the checkpoint" : nd->jsonl_path, opt->epochs, opt->epochs);
        nd->finished = true;
        err[0] = 0;
        return BN_OK;
    }
    if (crc == BN_OK && bn_checkpoint_trim_log(nd->jsonl_path, ck.epoch, err, errlen) != BN_OK)
        return BN_EIO;
    if (crc == BN_OK) {
        nd->first_epoch = ck.epoch;
        nd->round = ck.round;
        nd->sgd.started = ck.sgd_started;
        nd->batch_rng = ck.batch_rng;
        nd->attack_rng = ck.attack_rng;
        nd->order_pos = ck.order_pos;
        nd->rep.resumed = true;
        nd->resumed = true;
        BN_INFO("resumed from checkpoint: epoch %u, round %llu", nd->first_epoch + 1,
                (unsigned long long) nd->round);
    } else if (crc != BN_EIO) {
        BN_WARN("ignoring checkpoint (starting afresh): %s", err);
    }
    err[0] = 0;
    return BN_OK;
}

/* The out directory, the checkpoint, the jsonl. */
static int s_open_output(bn_node_t *nd, char *err, size_t errlen)
{
    const char *dir = nd->opt.out_dir;
    if (!dir[0])
        return BN_OK;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return bn_fail(err, errlen, BN_EIO, "--out %s: %s", dir, strerror(errno));
    snprintf(nd->jsonl_path, sizeof nd->jsonl_path, "%s/node-%u.jsonl", dir, nd->id);
    int rc = s_resume(nd, err, errlen);
    if (rc != BN_OK || nd->finished)
        return rc;
    nd->jsonl = fopen(nd->jsonl_path, nd->first_epoch ? "a" : "w");
    if (!nd->jsonl)
        return bn_fail(err, errlen, BN_EIO, "cannot write %s: %s", nd->jsonl_path, strerror(errno));
    return BN_OK;
}

/* Every round frees and allocates again k received models and one outgoing
 * one, d x 4 bytes each (320 KB for the CNN).  glibc serves blocks that size
 * with a fresh mmap at first and gives trimmed heap tops back, so each
 * message cost 80 page faults, zeroed pages and an munmap; kept in the
 * heap, the same pages serve every round.  The heap then stays at what the
 * busiest round held instead of falling between rounds, which raises the
 * swarm's memory at any one time (by 14% at n = 60, docs/performance.md):
 * so only while a whole neighbourhood of models, (n - 1) d 4 bytes, is at
 * most S_RETAIN_MAX (n <= 210 for the CNN). */
#define S_RETAIN_MAX (64u << 20)
#define S_MMAP_MODEL (128u << 10)

static void s_malloc_policy(const bn_node_t *nd)
{
#if defined(__GLIBC__)
    if ((uint64_t) (nd->n - 1) * nd->dim * sizeof(float) > S_RETAIN_MAX) {
        /* Above that, memory is what binds (the 300-node check): a fixed
         * threshold of S_MMAP_MODEL (glibc's own is dynamic and rises past
         * a model's size at the first free, after which models live in the
         * arenas, whose freed middle pages stay resident) gives every
         * model at least that large its own mapping, returned to the
         * system when it is freed, so a node's RSS follows the models it
         * holds (docs/performance.md, "Memory per node"). */
        if (nd->dim * sizeof(float) >= S_MMAP_MODEL)
            mallopt(M_MMAP_THRESHOLD, (int) S_MMAP_MODEL);
        return;
    }
    mallopt(M_MMAP_THRESHOLD, 16 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
#else
    (void) nd;
#endif
}

bn_node_t *bn_node_new(const bn_options_t *opt, volatile sig_atomic_t *stop, char *err, size_t errlen)
{
    bn_node_t *nd = calloc(1, sizeof *nd);
    if (!nd) {
        bn_fail(err, errlen, BN_ENOMEM, "out of memory");
        return NULL;
    }
    nd->opt = *opt;
    nd->stop = stop;
    nd->config_fp = bn_options_fingerprint(opt);
    openblas_set_num_threads((int) opt->blas_threads);
    if (bn_swarm_load(&nd->swarm, opt->swarm_path, err, errlen) != BN_OK)
        goto fail;
    nd->n = nd->swarm.n;
    nd->id = opt->id;
    if (nd->id >= nd->n) {
        bn_fail(err, errlen, BN_EARG, "--id %u: the swarm file has nodes 0..%u", nd->id, nd->n - 1);
        goto fail;
    }
    nd->honest = opt->attack.kind == BN_ATTACK_NONE;
    if (s_check_role(nd, err, errlen) != BN_OK || s_alloc_state(nd, err, errlen) != BN_OK || s_load_data(nd, err, errlen) != BN_OK
        || s_build_learner(nd, err, errlen) != BN_OK || s_build_network(nd, err, errlen) != BN_OK
        || s_open_output(nd, err, errlen) != BN_OK)
        goto fail;
    s_malloc_policy(nd);
    BN_INFO("%s node %u of %u: %u training images, d = %zu, %u rounds per epoch, rule %s",
            nd->honest ? "honest" : bn_attack_name(opt->attack.kind), nd->id, nd->n, nd->train.n,
            nd->dim, nd->R, bn_rule_name(opt->rule.kind));
    return nd;
fail:
    if (err && !err[0])
        bn_fail(err, errlen, BN_EARG, "cannot set up the node");
    bn_node_destroy(&nd);
    return NULL;
}

void bn_node_destroy(bn_node_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bn_node_t *nd = *self_p;
    bn_inbox_destroy(&nd->inbox);
    bn_graphs_destroy(&nd->graphs);
    bn_transport_destroy(&nd->tr);
    bn_refpipe_destroy(&nd->refs);
    bn_shm_destroy(&nd->shm);
    bn_model_destroy(&nd->model);
    bn_rule_destroy(&nd->rule);
    bn_sgd_free(&nd->sgd);
    bn_free(nd->x);
    bn_free(nd->x_prev);
    bn_free(nd->x_out);
    bn_free(nd->grad);
    bn_free(nd->craft);
    free(nd->pair_dist);
    bn_free(nd->bx);
    free(nd->by);
    free(nd->order);
    free(nd->is_byz);
    free(nd->weight_acc);
    free(nd->round_w);
    free(nd->rep.weight);
    free(nd->nb_ptr);
    free(nd->nb_id);
    free(nd->nb_seen);
    free(nd->nb_slot);
    bn_dataset_free(&nd->train);
    bn_dataset_free(&nd->test);
    bn_dataset_free(&nd->aux);
    if (nd->jsonl && fclose(nd->jsonl) != 0)
        BN_ERROR("cannot write %s: %s", nd->jsonl_path, strerror(errno));
    bn_swarm_free(&nd->swarm);
    free(nd);
    *self_p = NULL;
}

const bn_dataset_t *bn_node_oracle_batch(const bn_node_t *nd, uint32_t *idx, uint32_t *n)
{
    const bn_dataset_t *ds = nd->aux.n ? &nd->aux : &nd->train;
    *n = nd->aux.n ? BN_MIN(nd->aux.n, 512u) : BN_MIN(BN_MIN(nd->opt.batch, nd->train.n), 512u);
    for (uint32_t i = 0; i < *n; i++)
        idx[i] = nd->aux.n ? i : (uint32_t) ((uint64_t) i * nd->train.n / *n);
    return ds;
}

void bn_node_checkpoint(bn_node_t *nd)
{
    const bn_options_t *o = &nd->opt;
    bool last = nd->epoch + 1 == o->epochs;
    /* After the last epoch too: that checkpoint says "finished" to a rerun. */
    if (!o->out_dir[0] || !o->checkpoint_every || ((nd->epoch + 1) % o->checkpoint_every != 0 && !last))
        return;
    bn_checkpoint_t ck = { nd->epoch + 1, nd->round, nd->dim, nd->x, nd->sgd.velocity,
                           nd->sgd.started, nd->batch_rng, nd->attack_rng, nd->order,
                           nd->train.n, nd->order_pos, nd->config_fp };
    char err[256];
    if (bn_checkpoint_save(o->out_dir, nd->id, &ck, err, sizeof err) != BN_OK)
        BN_WARN("checkpoint: %s", err);
}
