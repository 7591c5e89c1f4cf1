/*  topology.c -- Erdos-Renyi draws with igraph, edge-list files, CSR graphs;
 *  see topology.h.
 *
 *  Invariants of a bn_topology_t built here: simple undirected graph on
 *  0..n-1; offsets[0] = 0, offsets[n] = 2 * edges; every adjacency list is
 *  sorted ascending with no duplicates and no self-loop; adj is symmetric.
 *
 *  Seeds: draw d (0-based) of (seed, epoch) seeds igraph's default RNG with
 *      base   = mix(mix(seed) ^ mix((BN_STREAM_TOPOLOGY << 32) | epoch))
 *      seed_d = mix(base + d * 0x9e3779b97f4a7c15)
 *  where mix = bn_mix64.  Fingerprint (documented in docs/topology.md):
 *      h = mix(n ^ 0x746f706f6c6f6779);  for each edge (u < v) in
 *      lexicographic order: h = mix(h ^ (u << 32 | v)).
 */
#include "topology.h"
#include "rng.h"

#include <errno.h>
#include <igraph/igraph.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_MAX_NODES      1000000u      /* bound on n from files and arguments */
#define S_MAX_LINE       4096          /* bound on an edge-list line, '\n' included */
#define S_MAX_ER_EDGES   50000000.0    /* bound on the expected size of a draw */
#define S_FP_SALT        0x746f706f6c6f6779ULL   /* "topology" */

typedef struct {
    uint32_t u, v;     /* u < v            */
    uint32_t line;     /* source line, or 0 */
} s_edge_t;

static int s_edge_cmp(const void *a, const void *b)
{
    const s_edge_t *x = a, *y = b;
    if (x->u != y->u)
        return x->u < y->u ? -1 : 1;
    if (x->v != y->v)
        return x->v < y->v ? -1 : 1;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return 0;
}

static int s_u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
    return x < y ? -1 : x > y;
}

/* Fingerprint of n and the CSR graph (edges u < v visited in lexicographic order). */
static uint64_t s_fingerprint(const bn_topology_t *t)
{
    uint64_t h = bn_mix64((uint64_t) t->n ^ S_FP_SALT);
    for (uint32_t u = 0; u < t->n; u++)
        for (uint32_t k = t->offsets[u]; k < t->offsets[u + 1]; k++)
            if (t->adj[k] > u)
                h = bn_mix64(h ^ ((uint64_t) u << 32 | t->adj[k]));
    return h;
}

/* Builds the CSR graph from m distinct edges (u < v, all < n). */
static int s_build(bn_topology_t *t, uint32_t n, const s_edge_t *e, size_t m,
                   char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    t->n = n;
    t->offsets = calloc((size_t) n + 1, sizeof *t->offsets);
    t->adj = malloc((2 * m > 0 ? 2 * m : 1) * sizeof *t->adj);
    uint32_t *fill = calloc((size_t) n + 1, sizeof *fill);
    if (!t->offsets || !t->adj || !fill) {
        free(fill);
        bn_topology_free(t);
        return bn_fail(err, errlen, BN_ENOMEM, "topology: out of memory for %zu edges", m);
    }
    for (size_t i = 0; i < m; i++) {
        t->offsets[e[i].u + 1]++;
        t->offsets[e[i].v + 1]++;
    }
    for (uint32_t i = 0; i < n; i++)
        t->offsets[i + 1] += t->offsets[i];
    for (size_t i = 0; i < m; i++) {
        t->adj[t->offsets[e[i].u] + fill[e[i].u]++] = e[i].v;
        t->adj[t->offsets[e[i].v] + fill[e[i].v]++] = e[i].u;
    }
    free(fill);
    for (uint32_t i = 0; i < n; i++)
        qsort(t->adj + t->offsets[i], t->offsets[i + 1] - t->offsets[i], sizeof *t->adj, s_u32_cmp);
    t->fingerprint = s_fingerprint(t);
    return BN_OK;
}

/* BFS from src; dist[] gets hop counts (UINT32_MAX unreachable); returns the
 * eccentricity of src and *reached the number of nodes reached.  queue and
 * dist hold n entries. */
static uint32_t s_bfs(const bn_topology_t *t, uint32_t src, uint32_t *dist, uint32_t *queue,
                      uint32_t *reached)
{
    for (uint32_t i = 0; i < t->n; i++)
        dist[i] = UINT32_MAX;
    uint32_t head = 0, tail = 0, ecc = 0;
    dist[src] = 0;
    queue[tail++] = src;
    while (head < tail) {
        uint32_t u = queue[head++];
        for (uint32_t k = t->offsets[u]; k < t->offsets[u + 1]; k++) {
            uint32_t v = t->adj[k];
            if (dist[v] == UINT32_MAX) {
                dist[v] = dist[u] + 1;
                ecc = dist[v];
                queue[tail++] = v;
            }
        }
    }
    *reached = tail;
    return ecc;
}

/* Connected and every degree >= min_degree?  Fills *why on failure. */
static bool s_qualifies(const bn_topology_t *t, uint32_t min_degree, uint32_t *dist,
                        uint32_t *queue, const char **why)
{
    for (uint32_t i = 0; i < t->n; i++) {
        if (t->offsets[i + 1] - t->offsets[i] < min_degree) {
            *why = "minimum degree";
            return false;
        }
    }
    uint32_t reached = 0;
    s_bfs(t, 0, dist, queue, &reached);
    if (reached != t->n) {
        *why = "connectivity";
        return false;
    }
    return true;
}

/* One G(n, p) draw from igraph seeded with `seed`, as a CSR graph. */
static int s_draw(bn_topology_t *t, uint32_t n, double p, uint64_t seed, char *err, size_t errlen)
{
    igraph_t g;
    igraph_vector_int_t el;
    s_edge_t *e = NULL;
    int rc = BN_OK;
    igraph_error_handler_t *old = igraph_set_error_handler(igraph_error_handler_ignore);

    if (igraph_rng_seed(igraph_rng_default(), (igraph_uint_t) seed) != IGRAPH_SUCCESS) {
        igraph_set_error_handler(old);
        return bn_fail(err, errlen, BN_EARG, "topology: igraph_rng_seed failed");
    }
    if (igraph_erdos_renyi_game_gnp(&g, n, p, IGRAPH_UNDIRECTED, IGRAPH_NO_LOOPS) != IGRAPH_SUCCESS) {
        igraph_set_error_handler(old);
        return bn_fail(err, errlen, BN_ENOMEM, "topology: igraph_erdos_renyi_game_gnp(n=%u, p=%g) failed",
                       n, p);
    }
    if (igraph_vector_int_init(&el, 0) != IGRAPH_SUCCESS) {
        igraph_destroy(&g);
        igraph_set_error_handler(old);
        return bn_fail(err, errlen, BN_ENOMEM, "topology: out of memory");
    }
    if (igraph_get_edgelist(&g, &el, false) != IGRAPH_SUCCESS) {
        rc = bn_fail(err, errlen, BN_ENOMEM, "topology: igraph_get_edgelist failed");
        goto done;
    }
    size_t m = (size_t) igraph_vector_int_size(&el) / 2;
    e = malloc((m > 0 ? m : 1) * sizeof *e);
    if (!e) {
        rc = bn_fail(err, errlen, BN_ENOMEM, "topology: out of memory for %zu edges", m);
        goto done;
    }
    for (size_t i = 0; i < m; i++) {
        uint32_t a = (uint32_t) VECTOR(el)[2 * i], b = (uint32_t) VECTOR(el)[2 * i + 1];
        e[i].u = a < b ? a : b;
        e[i].v = a < b ? b : a;
        e[i].line = 0;
    }
    rc = s_build(t, n, e, m, err, errlen);
done:
    free(e);
    igraph_vector_int_destroy(&el);
    igraph_destroy(&g);
    igraph_set_error_handler(old);
    return rc;
}

int bn_topology_er(bn_topology_t *t, uint32_t n, double p, uint32_t min_degree,
                   uint64_t seed, uint32_t epoch, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    if (n < 1 || n > S_MAX_NODES)
        return bn_fail(err, errlen, BN_EARG, "topology: n = %u out of range 1..%u", n, S_MAX_NODES);
    if (!(p >= 0.0 && p <= 1.0))
        return bn_fail(err, errlen, BN_EARG, "topology: p = %g out of range [0, 1]", p);
    if (min_degree > n - 1)
        return bn_fail(err, errlen, BN_EARG,
                       "topology: min degree %u impossible with %u nodes (at most %u)",
                       min_degree, n, n - 1);
    if (p * ((double) n * (n - 1) / 2.0) > S_MAX_ER_EDGES)
        return bn_fail(err, errlen, BN_EARG, "topology: G(%u, %g) would have about %.0f edges (limit %.0f)",
                       n, p, p * ((double) n * (n - 1) / 2.0), S_MAX_ER_EDGES);

    uint32_t *dist = malloc((size_t) n * sizeof *dist);
    uint32_t *queue = malloc((size_t) n * sizeof *queue);
    if (!dist || !queue) {
        free(dist);
        free(queue);
        return bn_fail(err, errlen, BN_ENOMEM, "topology: out of memory");
    }
    uint64_t base = bn_mix64(bn_mix64(seed) ^
                             bn_mix64((uint64_t) BN_STREAM_TOPOLOGY << 32 | epoch));
    const char *why = "connectivity";
    int rc = BN_OK;
    for (uint32_t d = 0; d < BN_TOPOLOGY_MAX_DRAWS; d++) {
        uint64_t sd = bn_mix64(base + (uint64_t) d * 0x9e3779b97f4a7c15ULL);
        rc = s_draw(t, n, p, sd, err, errlen);
        if (rc != BN_OK)
            break;
        if (s_qualifies(t, min_degree, dist, queue, &why)) {
            t->draws = d + 1;
            free(dist);
            free(queue);
            return BN_OK;
        }
        bn_topology_free(t);
    }
    free(dist);
    free(queue);
    if (rc != BN_OK)
        return rc;
    return bn_fail(err, errlen, BN_EARG,
                   "topology: no G(%u, %g) with min degree >= %u and connected in %u draws "
                   "(last draw failed on %s)", n, p, min_degree, BN_TOPOLOGY_MAX_DRAWS, why);
}

/* Parses a decimal uint32 token at *pp (skipping blanks); advances *pp. */
static bool s_parse_u32(const char **pp, uint32_t *out)
{
    const char *p = *pp;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p < '0' || *p > '9')
        return false;
    uint64_t v = 0;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (uint64_t) (*p - '0');
        if (v > UINT32_MAX)
            return false;
        p++;
    }
    if (*p != '\0' && *p != ' ' && *p != '\t')
        return false;
    *out = (uint32_t) v;
    *pp = p;
    return true;
}

/* An edge-list file being read (bn_topology_load): the edges so far, each
 * with u < v and its source line, and what the file says about n. */
typedef struct {
    const char *path;
    uint32_t n;          /* the caller's n; 0 = from the file           */
    s_edge_t *e;         /* m edges of cap (owned)                      */
    size_t m, cap;
    uint32_t lineno;     /* the line being read, 1-based                */
    uint32_t max_id;     /* largest node id seen                        */
    uint32_t header_n;   /* "# nodes: N" before the first edge, or 0    */
} s_edges_t;

/* Appends edge {u, v} of the current line. */
static int s_edges_push(s_edges_t *s, uint32_t u, uint32_t v, char *err, size_t errlen)
{
    if (s->m == s->cap && bn_grow(&s->e, &s->cap, sizeof *s->e, 256) != BN_OK)
        return bn_fail(err, errlen, BN_ENOMEM, "%s:%u: out of memory", s->path, s->lineno);
    s->e[s->m].u = u < v ? u : v;
    s->e[s->m].v = u < v ? v : u;
    s->e[s->m].line = s->lineno;
    s->m++;
    if (u > s->max_id)
        s->max_id = u;
    if (v > s->max_id)
        s->max_id = v;
    return BN_OK;
}

/* One line of an edge list (edited in place): a comment from '#' on (the
 * "# nodes: N" header is noted), blank, or "u v".  A bn_line_fn. */
static int s_edges_line(void *ctx, char *line, unsigned lineno, char *err, size_t errlen)
{
    s_edges_t *s = ctx;
    s->lineno = lineno;
    char *hash = strchr(line, '#');
    if (hash) {
        /* "# nodes: N" before the first edge gives n when the caller passes 0. */
        unsigned long hn;
        char tail;
        if (s->m == 0 && sscanf(hash, "# nodes: %lu %c", &hn, &tail) == 1 && hn >= 1 &&
            hn <= S_MAX_NODES)
            s->header_n = (uint32_t) hn;
        *hash = '\0';
    }
    for (char *c = line; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = '\0';
    const char *p = line;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '\0')
        return BN_OK;
    uint32_t u, v;
    if (!s_parse_u32(&p, &u) || !s_parse_u32(&p, &v))
        return bn_fail(err, errlen, BN_EFORMAT, "%s:%u: expected \"u v\" (two node ids), got \"%.60s\"",
                       s->path, s->lineno, line);
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p != '\0')
        return bn_fail(err, errlen, BN_EFORMAT, "%s:%u: unexpected \"%.40s\" after the edge",
                       s->path, s->lineno, p);
    if (u == v)
        return bn_fail(err, errlen, BN_EFORMAT, "%s:%u: self-loop %u %u", s->path, s->lineno, u, v);
    uint32_t limit = s->n ? s->n : S_MAX_NODES;
    if (u >= limit || v >= limit)
        return bn_fail(err, errlen, BN_EFORMAT, "%s:%u: node id %u out of range 0..%u",
                       s->path, s->lineno, u >= limit ? u : v, limit - 1);
    return s_edges_push(s, u, v, err, errlen);
}

/* n when the caller passed 0: the header's, which must cover every id, else
 * the largest id + 1.  Then: at least one edge, and no edge twice. */
static int s_edges_finish(s_edges_t *s, char *err, size_t errlen)
{
    if (s->n == 0) {
        s->n = s->m > 0 ? s->max_id + 1 : 0;
        if (s->header_n) {
            if (s->header_n < s->n)
                return bn_fail(err, errlen, BN_EFORMAT, "%s: header says nodes: %u but id %u appears",
                               s->path, s->header_n, s->max_id);
            s->n = s->header_n;
        }
    }
    /* A graph without edges leaves every node alone: refused, whatever n. */
    if (s->m == 0)
        return bn_fail(err, errlen, BN_EFORMAT,
                       "%s: no edges (an edge list needs at least one \"u v\" line)", s->path);
    qsort(s->e, s->m, sizeof *s->e, s_edge_cmp);
    for (size_t i = 1; i < s->m; i++) {
        const s_edge_t *a = &s->e[i - 1], *b = &s->e[i];
        /* After the sort the later occurrence follows the earlier one. */
        if (a->u == b->u && a->v == b->v)
            return bn_fail(err, errlen, BN_EFORMAT, "%s:%u: duplicate edge %u %u (first on line %u)",
                           s->path, b->line, b->u, b->v, a->line);
    }
    return BN_OK;
}

/* Every line of file (a FILE *) into the edge list ctx (an s_edges_t). */
static int s_edges_read(void *ctx, void *file, char *err, size_t errlen)
{
    s_edges_t *s = ctx;
    return bn_read_lines(file, s->path, S_MAX_LINE, s_edges_line, s, err, errlen);
}

int bn_topology_load(bn_topology_t *t, const char *path, uint32_t n, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    s_edges_t s = { .path = path, .n = n };
    int rc = bn_read_file(path, "cannot open: ", s_edges_read, &s, err, errlen);
    if (rc == BN_OK)
        rc = s_edges_finish(&s, err, errlen);
    if (rc == BN_OK)
        rc = s_build(t, s.n, s.e, s.m, err, errlen);
    free(s.e);
    if (rc != BN_OK)
        bn_topology_free(t);
    return rc;
}

int bn_topology_save(const bn_topology_t *t, const char *path, char *err, size_t errlen)
{
    char tmp[4096];
    int w = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long) getpid());
    if (w < 0 || (size_t) w >= sizeof tmp)
        return bn_fail(err, errlen, BN_EARG, "%s: path too long", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return bn_fail(err, errlen, BN_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    bn_topology_stats_t s;
    bn_topology_stats(t, &s);
    fprintf(f, "# byznode topology: undirected edge list, one \"u v\" per line (u < v)\n");
    fprintf(f, "# nodes: %u\n", t->n);
    fprintf(f, "# edges: %u\n", s.edges);
    fprintf(f, "# fingerprint: %016llx\n", (unsigned long long) t->fingerprint);
    for (uint32_t u = 0; u < t->n; u++)
        for (uint32_t k = t->offsets[u]; k < t->offsets[u + 1]; k++)
            if (t->adj[k] > u)
                fprintf(f, "%u %u\n", u, t->adj[k]);
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0)
        bad = true;
    if (bad || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return bn_fail(err, errlen, BN_EIO, "%s: cannot write: %s", path, strerror(e));
    }
    return BN_OK;
}

const uint32_t *bn_topology_neighbors(const bn_topology_t *t, uint32_t i, uint32_t *deg)
{
    if (i >= t->n) {
        *deg = 0;
        return NULL;
    }
    *deg = t->offsets[i + 1] - t->offsets[i];
    return t->adj + t->offsets[i];
}

bool bn_topology_has_edge(const bn_topology_t *t, uint32_t i, uint32_t j)
{
    if (i >= t->n || j >= t->n)
        return false;
    const uint32_t *a = t->adj + t->offsets[i];
    size_t lo = 0, hi = t->offsets[i + 1] - t->offsets[i];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid] == j)
            return true;
        if (a[mid] < j)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

void bn_topology_stats(const bn_topology_t *t, bn_topology_stats_t *s)
{
    memset(s, 0, sizeof *s);
    s->diameter = UINT32_MAX;
    if (t->n == 0 || !t->offsets)
        return;
    s->edges = t->offsets[t->n] / 2;
    s->min_degree = UINT32_MAX;
    for (uint32_t i = 0; i < t->n; i++) {
        uint32_t d = t->offsets[i + 1] - t->offsets[i];
        s->min_degree = BN_MIN(s->min_degree, d);
        s->max_degree = BN_MAX(s->max_degree, d);
    }
    s->mean_degree = 2.0 * s->edges / t->n;
    uint32_t *dist = malloc((size_t) t->n * sizeof *dist);
    uint32_t *queue = malloc((size_t) t->n * sizeof *queue);
    if (!dist || !queue) {
        /* Leave connected = false, diameter unknown (UINT32_MAX). */
        free(dist);
        free(queue);
        return;
    }
    uint32_t reached = 0, diam = s_bfs(t, 0, dist, queue, &reached);
    s->connected = reached == t->n;
    if (s->connected) {
        for (uint32_t i = 1; i < t->n; i++) {
            uint32_t ecc = s_bfs(t, i, dist, queue, &reached);
            diam = BN_MAX(diam, ecc);
        }
        s->diameter = diam;
    }
    free(dist);
    free(queue);
}

void bn_topology_free(bn_topology_t *t)
{
    if (!t)
        return;
    free(t->offsets);
    free(t->adj);
    memset(t, 0, sizeof *t);
}
