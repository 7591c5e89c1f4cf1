/*  inbox.c -- message admission, the early-message ring, liveness; see inbox.h.
 *
 *  Invariants: a full slot records a validated model for slot->round in
 *  [current, current + W) and holds its payload (host-order floats, 4-byte
 *  aligned) unless the node released it (then buf == x == NULL, and the
 *  model still counts as arrived); payloads counts the payloads held by
 *  full slots, cslots and lookahead together; ahead[j] is 0
 *  or a round >= the current round + W at the time it was seen, for which
 *  j's MODEL passed every check but the window, and lookahead[j] holds that
 *  MODEL's payload; misses[j] counts the rounds j missed in a row
 *  (saturating); back_at[j] is the round from which a given-up j is waited
 *  for again.
 */
#include "inbox.h"

#include <stdlib.h>
#include <string.h>

#define S_GIVE_UP 2        /* rounds missed in a row before a peer is given up */

typedef struct {
    bool         full;      /* a model for `round` arrived                      */
    bool         unusable;  /* (not full) a MODEL for `round` came, not finite  */
    uint64_t     round;
    bn_buf_t    *buf;       /* owned; NULL once released (bn_inbox_release)     */
    const float *x;         /* bn_buf_data(buf), or NULL                        */
} s_slot_t;

struct bn_inbox_t {
    bn_inbox_opts_t o;
    uint64_t   round;        /* the node's current round */
    uint32_t   degree;       /* in the current round's graph */
    s_slot_t  *slots;        /* W * n, MODEL by sender */
    s_slot_t  *cslots;       /* W * n, COLLUDE by origin (attackers) */
    uint8_t   *misses;       /* n */
    uint64_t  *ahead;        /* n: highest far round seen, 0 = none */
    uint64_t  *back_at;      /* n: given-up peer to restore from that round, UINT64_MAX = none */
    bn_buf_t **lookahead;    /* n: the payload of ahead[j]'s message (owned), or NULL */
    uint64_t  *seen;         /* n: 1 + the highest round of a valid MODEL of j, 0 = none */
    uint32_t  *logged;       /* n + 1 bitmasks of reasons logged (n: unknown sender) */
    uint64_t  *scratch;      /* n, for the quorum */
    uint64_t   payloads;     /* payloads held now (slots, cslots, lookahead) */
    bn_inbox_stats_t stats;
};

static void s_held(bn_inbox_t *ib, int delta)
{
    ib->payloads = (uint64_t) ((int64_t) ib->payloads + delta);
    if (ib->payloads > ib->stats.payloads_max)
        ib->stats.payloads_max = ib->payloads;
}

bn_inbox_t *bn_inbox_new(const bn_inbox_opts_t *o)
{
    bn_inbox_t *ib = calloc(1, sizeof *ib);
    if (!ib)
        return NULL;
    ib->o = *o;
    if (ib->o.window == 0)
        ib->o.window = 1;
    if (ib->o.rounds_per_epoch == 0)
        ib->o.rounds_per_epoch = 1;
    size_t ns = (size_t) ib->o.window * o->n;
    ib->slots = calloc(ns, sizeof *ib->slots);
    ib->cslots = calloc(ns, sizeof *ib->cslots);
    ib->misses = calloc(o->n, 1);
    ib->ahead = calloc(o->n, sizeof *ib->ahead);
    ib->back_at = malloc((o->n ? o->n : 1) * sizeof *ib->back_at);
    ib->lookahead = calloc(o->n ? o->n : 1, sizeof *ib->lookahead);
    ib->seen = calloc(o->n ? o->n : 1, sizeof *ib->seen);
    if (ib->back_at)
        for (uint32_t j = 0; j < o->n; j++)
            ib->back_at[j] = UINT64_MAX;
    ib->logged = calloc(o->n + 1, sizeof *ib->logged);
    ib->scratch = calloc(o->n, sizeof *ib->scratch);
    if (!ib->slots || !ib->cslots || !ib->misses || !ib->ahead || !ib->back_at || !ib->lookahead || !ib->seen || !ib->logged || !ib->scratch)
        bn_inbox_destroy(&ib);
    return ib;
}

static void s_slot_clear(bn_inbox_t *ib, s_slot_t *s)
{
    if (s->full) {
        if (s->buf)
            s_held(ib, -1);
        bn_buf_release(&s->buf);
        s->x = NULL;
        s->full = false;
    }
}

static void s_release_before(bn_inbox_t *ib, uint64_t round)
{
    size_t ns = (size_t) ib->o.window * ib->o.n;
    for (size_t i = 0; i < ns; i++) {
        if (ib->slots[i].full && ib->slots[i].round < round)
            s_slot_clear(ib, &ib->slots[i]);
        if (ib->cslots[i].full && ib->cslots[i].round < round)
            s_slot_clear(ib, &ib->cslots[i]);
    }
}

void bn_inbox_destroy(bn_inbox_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bn_inbox_t *ib = *self_p;
    if (ib->slots && ib->cslots)
        s_release_before(ib, UINT64_MAX);
    free(ib->slots);
    free(ib->cslots);
    free(ib->misses);
    free(ib->ahead);
    free(ib->back_at);
    if (ib->lookahead)
        for (uint32_t j = 0; j < ib->o.n; j++)
            bn_buf_release(&ib->lookahead[j]);
    free(ib->lookahead);
    free(ib->seen);
    free(ib->logged);
    free(ib->scratch);
    free(ib);
    *self_p = NULL;
}

static void s_restore(bn_inbox_t *ib, uint32_t peer)
{
    if (ib->misses[peer] >= S_GIVE_UP) {
        ib->stats.peers_restored++;
        BN_INFO("node %u is back: waiting for its models again from round %llu", peer,
                (unsigned long long) ib->round);
    }
    ib->misses[peer] = 0;
    ib->back_at[peer] = UINT64_MAX;
}

void bn_inbox_begin_round(bn_inbox_t *ib, uint64_t round, const bn_topology_t *g)
{
    ib->round = round;
    ib->degree = 0;
    if (g)
        (void) bn_topology_neighbors(g, ib->o.self, &ib->degree);
    s_release_before(ib, round);
    for (uint32_t j = 0; j < ib->o.n; j++)
        if (ib->back_at[j] <= round)
            s_restore(ib, j);
}

/* ---- admission --------------------------------------------------------- */

static bn_drop_reason_t s_drop(bn_inbox_t *ib, uint32_t peer, bn_drop_reason_t why)
{
    ib->stats.drops[why]++;
    uint32_t who = peer < ib->o.n ? peer : ib->o.n;
    if (!(ib->logged[who] & (1u << why))) {
        ib->logged[who] |= 1u << why;
        if (who < ib->o.n)
            BN_WARN("dropping messages from node %u: %s (logged once per peer and reason)",
                    who, bn_drop_reason_name(why));
        else
            BN_WARN("dropping messages from an unidentified sender: %s (logged once)",
                    bn_drop_reason_name(why));
    }
    return why;
}

bn_drop_reason_t bn_inbox_drop(bn_inbox_t *ib, uint32_t peer, bn_drop_reason_t why)
{
    return (unsigned) why < BN_DROP_COUNT && why != BN_DROP_NONE ? s_drop(ib, peer, why) : why;
}

static s_slot_t *s_slot(s_slot_t *ring, const bn_inbox_t *ib, uint64_t round, uint32_t peer)
{
    return &ring[(round % ib->o.window) * ib->o.n + peer];
}

/* A valid model of `peer` for `round` arrived.  A peer in step is simply
 * heard.  A given-up one is taken back from the first round of ours it can
 * still serve: its model's round if that is ours or ahead, else our next
 * one (it is behind; it will catch up, section "Liveness" of
 * docs/protocol.md).  Until then it is not waited for. */
static void s_heard(bn_inbox_t *ib, uint32_t peer, uint64_t round)
{
    if (ib->misses[peer] < S_GIVE_UP) {
        ib->misses[peer] = 0;
        return;
    }
    if (round == ib->round) {
        s_restore(ib, peer);
        return;
    }
    uint64_t from = round > ib->round ? round : ib->round + 1;
    if (from < ib->back_at[peer])
        ib->back_at[peer] = from;
}

/* Where a well-formed message stands against the node's position:
 * authentication, kind, schedule, graph, window.  Pure: it neither counts
 * nor changes anything, so a message whose payload then turns out not to be
 * finite leaves no trace but its drop and its slot (bn_inbox_admit). */
typedef struct {
    bn_drop_reason_t why;   /* BN_DROP_NONE: in the window, to be stored */
    uint32_t blame;         /* the peer the drop is counted against       */
    uint32_t key;           /* the slot's peer: the sender, or a relay's origin */
    bool in_graph;          /* passed every check up to the graph's edges:
                               the sender is a live neighbour for that round */
} s_position_t;

static s_position_t s_position(const bn_inbox_t *ib, const bn_wire_header_t *h, uint32_t auth)
{
    uint32_t from = h->sender;
    s_position_t p = { BN_DROP_NONE, from, from, false };
    if ((auth != BN_AUTH_NONE && auth != from) || (ib->o.curve && auth == BN_AUTH_NONE)) {
        p.why = BN_DROP_AUTH;
        p.blame = auth != BN_AUTH_NONE ? auth : from;
        return p;
    }
    bool collude = h->kind == BN_MSG_COLLUDE;
    if (h->kind != BN_MSG_MODEL && !(collude && ib->o.is_byz && ib->o.is_byz[from]))
        return p.why = BN_DROP_KIND, p;
    if (h->epoch != h->round / ib->o.rounds_per_epoch)
        return p.why = BN_DROP_HEADER, p;
    if (h->epoch >= ib->o.epochs)
        return p.why = BN_DROP_FUTURE, p;       /* beyond the run */
    uint64_t epoch_now = ib->round / ib->o.rounds_per_epoch;
    if (h->round < ib->round && h->epoch + 1 < epoch_now)
        return p.why = BN_DROP_STALE, p;        /* epochs ago: not worth a graph */
    const bn_topology_t *g = bn_graphs_get(ib->o.graphs, h->epoch);
    if (!g || g->fingerprint != h->topology)
        return p.why = BN_DROP_TOPOLOGY, p;
    if (collude) {
        /* A relay is only believed for an honest origin it can actually hear. */
        if (h->origin >= ib->o.n || ib->o.is_byz[h->origin] || !bn_topology_has_edge(g, from, h->origin))
            return p.why = BN_DROP_KIND, p;
        p.key = h->origin;
    } else if (!bn_topology_has_edge(g, ib->o.self, from)) {
        return p.why = BN_DROP_NOT_NEIGHBOR, p;
    }
    p.in_graph = true;
    if (h->round < ib->round)
        p.why = BN_DROP_STALE;                  /* finished, but the neighbour is alive */
    else if (h->round >= ib->round + ib->o.window)
        p.why = BN_DROP_FUTURE;                 /* beyond the window */
    return p;
}

/* Moves the payload of a validated message into *dst (host-order floats). */
static bn_buf_t *s_take_payload(bn_msg_t *msg, uint32_t dim, size_t plen)
{
    bn_buf_t *buf = bn_msg_take(msg, 1);
    if (buf && !bn_wire_payload_native()) {
        void *p;
        bn_buf_t *host = bn_buf_new(plen, &p);
        if (host)
            bn_wire_payload_decode(bn_buf_data(buf), dim, p);
        bn_buf_release(&buf);
        buf = host;
    }
    return buf;
}

/* A MODEL whose payload is not finite (a diverged or hostile neighbour)
 * came, authentic, from a neighbour of that round's graph, for a round of
 * the window: the neighbour has spoken for that round and will not send
 * another, so the round does not wait for it (bn_inbox_waits_for).  It is
 * dropped all the same (`nonfinite`), counts as missing, and does not take a
 * given-up peer back: only a valid model does.  Nothing else changes (no
 * `seen`, no restore), so a neighbour that keeps sending such models is
 * given up after S_GIVE_UP rounds as a silent one is, without a round
 * timeout each time. */
static void s_mark_unusable(bn_inbox_t *ib, const bn_wire_header_t *h)
{
    s_slot_t *s = s_slot(ib->slots, ib, h->round, h->sender);
    if (s->full && s->round == h->round)
        return;                     /* a valid one came first: it stands */
    s_slot_clear(ib, s);
    s->round = h->round;
    s->unusable = true;
}

bn_drop_reason_t bn_inbox_admit(bn_inbox_t *ib, bn_msg_t *msg)
{
    uint32_t auth = bn_msg_auth(msg);
    if (bn_msg_oversize(msg))
        return s_drop(ib, auth, BN_DROP_SIZE);
    if (bn_msg_count(msg) != 2)
        return s_drop(ib, auth, BN_DROP_FRAMES);
    size_t hlen, plen;
    const void *hb = bn_msg_frame(msg, 0, &hlen);
    const void *pb = bn_msg_frame(msg, 1, &plen);
    bn_wire_header_t h;
    bn_drop_reason_t why = bn_wire_decode(hb, hlen, &h);
    if (why != BN_DROP_NONE)
        return s_drop(ib, auth, why);
    bn_wire_expect_t ex = { ib->o.swarm_id, ib->o.n, ib->o.self, ib->o.dim, ib->o.config_fp };
    why = bn_wire_validate(&ex, &h, pb, plen, false);
    if (why != BN_DROP_NONE)
        return s_drop(ib, why == BN_DROP_SENDER ? auth : h.sender, why);
    s_position_t pos = s_position(ib, &h, auth);
    if (!bn_wire_payload_finite(pb, plen / 4)) {   /* plen = 4 dim, or 0 (a REPORT) */
        if (pos.why == BN_DROP_NONE && h.kind == BN_MSG_MODEL)
            s_mark_unusable(ib, &h);
        return s_drop(ib, h.sender, BN_DROP_NONFINITE);
    }
    bool collude = h.kind == BN_MSG_COLLUDE;
    if (pos.in_graph && !collude && h.round + 1 > ib->seen[h.sender])
        ib->seen[h.sender] = h.round + 1;
    if (pos.why == BN_DROP_STALE && pos.in_graph)
        s_heard(ib, h.sender, h.round);         /* behind, but alive */
    if (pos.why == BN_DROP_FUTURE && pos.in_graph && !collude && h.round > ib->ahead[h.sender]) {
        /* Beyond the window, but authentic, in the run and in the graph: the
         * neighbour is at least that far, and the catch-up quorum uses it.
         * Keep its newest far model: if the node skips to its round, it is
         * that round's model. */
        bn_buf_t *buf = s_take_payload(msg, h.dim, plen);
        if (buf) {
            if (ib->lookahead[h.sender])
                s_held(ib, -1);
            s_held(ib, 1);
            bn_buf_release(&ib->lookahead[h.sender]);
            ib->lookahead[h.sender] = buf;
            ib->ahead[h.sender] = h.round;
        }
    }
    if (pos.why != BN_DROP_NONE)
        return s_drop(ib, pos.blame, pos.why);
    uint32_t key = pos.key;
    s_slot_t *s = s_slot(collude ? ib->cslots : ib->slots, ib, h.round, key);
    if (s->full && s->round == h.round)
        return s_drop(ib, h.sender, BN_DROP_DUPLICATE);
    if (collude && plen == 0) {
        /* The relay has no usable model of the origin this round (it never
         * came, or was not finite): nothing to wait for. */
        s_slot_clear(ib, s);
        s->round = h.round;
        s->unusable = true;
        return BN_DROP_NONE;
    }
    bn_buf_t *buf = s_take_payload(msg, h.dim, plen);
    if (!buf)
        return s_drop(ib, h.sender, BN_DROP_FUTURE);   /* out of memory: no room for it */
    s_slot_clear(ib, s);
    s->buf = buf;
    s->x = bn_buf_data(buf);
    s->round = h.round;
    s->full = true;
    s->unusable = false;
    s_held(ib, 1);
    if (h.round > ib->round && !collude)
        ib->stats.early++;
    s_heard(ib, h.sender, h.round);
    return BN_DROP_NONE;
}

/* ---- slots ------------------------------------------------------------- */

static const s_slot_t *s_find(const bn_inbox_t *ib, const s_slot_t *ring, uint64_t round, uint32_t peer)
{
    if (peer >= ib->o.n)
        return NULL;
    const s_slot_t *s = &ring[(round % ib->o.window) * ib->o.n + peer];
    return s->full && s->round == round ? s : NULL;
}

const float *bn_inbox_model(const bn_inbox_t *ib, uint64_t round, uint32_t peer)
{
    const s_slot_t *s = s_find(ib, ib->slots, round, peer);
    return s ? s->x : NULL;
}

const bn_buf_t *bn_inbox_model_buf(const bn_inbox_t *ib, uint64_t round, uint32_t peer)
{
    const s_slot_t *s = s_find(ib, ib->slots, round, peer);
    return s ? s->buf : NULL;
}

bool bn_inbox_has(const bn_inbox_t *ib, uint64_t round, uint32_t peer)
{
    return s_find(ib, ib->slots, round, peer) != NULL;
}

void bn_inbox_release(bn_inbox_t *ib, uint64_t round, uint32_t peer)
{
    s_slot_t *s = (s_slot_t *) s_find(ib, ib->slots, round, peer);
    if (s && s->buf) {
        bn_buf_release(&s->buf);
        s->x = NULL;
        s_held(ib, -1);
    }
}

const float *bn_inbox_relay(const bn_inbox_t *ib, uint64_t round, uint32_t origin)
{
    const s_slot_t *s = s_find(ib, ib->cslots, round, origin);
    return s ? s->x : NULL;
}

bool bn_inbox_relay_settled(const bn_inbox_t *ib, uint64_t round, uint32_t origin)
{
    if (origin >= ib->o.n)
        return false;
    const s_slot_t *s = &ib->cslots[(round % ib->o.window) * ib->o.n + origin];
    return s->round == round && (s->full || s->unusable);
}

/* ---- liveness ---------------------------------------------------------- */

bool bn_inbox_waits_for(const bn_inbox_t *ib, uint32_t peer)
{
    if (!bn_inbox_live(ib, peer))
        return false;
    /* its model of this round came and was not finite: nothing more will */
    const s_slot_t *s = s_slot(ib->slots, ib, ib->round, peer);
    return !(s->unusable && s->round == ib->round);
}

bool bn_inbox_live(const bn_inbox_t *ib, uint32_t peer)
{
    if (peer >= ib->o.n || ib->misses[peer] >= S_GIVE_UP)
        return false;
    /* A peer sends its rounds in order and one connection delivers them in
     * order: a peer already heard from two rounds later will not send this
     * one any more (it was lost).  (One round later is not enough: a peer in
     * step may send round r + 1 as soon as it has ours of round r.) */
    return ib->seen[peer] <= ib->round + 2;
}

uint32_t bn_inbox_close_round(bn_inbox_t *ib, uint64_t round, const uint32_t *peers, uint32_t k)
{
    uint32_t missing = 0;
    for (uint32_t i = 0; i < k; i++) {
        uint32_t j = peers[i];
        if (j >= ib->o.n || bn_inbox_has(ib, round, j))
            continue;
        missing++;
        BN_DEBUG("round %llu: no model from node %u (misses %u)", (unsigned long long) round, j,
                 ib->misses[j]);
        if (ib->seen[j] > round + 2)
            continue;           /* lost, but the peer is alive and ahead: not a miss */
        if (ib->misses[j] < 255)
            ib->misses[j]++;
        if (ib->misses[j] == S_GIVE_UP) {
            ib->stats.peers_given_up++;
            BN_INFO("giving up on node %u after %d missed rounds (round %llu): not waiting for it "
                    "until its model arrives in time", j, S_GIVE_UP, (unsigned long long) round);
        }
    }
    return missing;
}

static int s_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? 1 : x > y ? -1 : 0;
}

uint64_t bn_inbox_catch_up(const bn_inbox_t *ib)
{
    uint32_t q = ib->o.byzantine + 1;
    if (q > ib->degree)
        q = ib->degree;
    if (q == 0)
        return UINT64_MAX;
    uint32_t m = 0;
    uint64_t far = ib->round + ib->o.window;
    for (uint32_t j = 0; j < ib->o.n; j++)
        if (ib->ahead[j] >= far)
            ib->scratch[m++] = ib->ahead[j];
    if (m < q)
        return UINT64_MAX;
    qsort(ib->scratch, m, sizeof *ib->scratch, s_desc);
    return ib->scratch[q - 1];
}

void bn_inbox_jump(bn_inbox_t *ib, uint64_t round)
{
    ib->round = round;
    s_release_before(ib, round);
    for (uint32_t j = 0; j < ib->o.n; j++) {
        uint64_t a = ib->ahead[j];
        if (a && a >= round && a < round + ib->o.window && ib->lookahead[j]) {
            s_slot_t *s = s_slot(ib->slots, ib, a, j);
            s_slot_clear(ib, s);
            s->buf = ib->lookahead[j];
            s->x = bn_buf_data(s->buf);
            s->round = a;
            s->full = true;
            ib->lookahead[j] = NULL;
        }
        if (a && a <= round)
            s_restore(ib, j);               /* it has sent nothing past our round yet */
        else if (a && a < ib->back_at[j])
            ib->back_at[j] = a;             /* its rounds before a are gone */
        if (a && a > round)
            ib->misses[j] = ib->misses[j] < S_GIVE_UP ? S_GIVE_UP : ib->misses[j];
        if (ib->lookahead[j])
            s_held(ib, -1);
        bn_buf_release(&ib->lookahead[j]);
        ib->ahead[j] = 0;
    }
}

const bn_inbox_stats_t *bn_inbox_stats(const bn_inbox_t *ib)
{
    return &ib->stats;
}
