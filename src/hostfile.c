/*  hostfile.c -- hostfile parsing, node placement and node id lists.
 *
 *  Everything here reads text a user wrote: every field is bounded and
 *  checked, and an error names the file, the line and the field.
 */
#include "hostfile.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BN_HOSTS_MAX 100000u

/* Per-host bookkeeping while reading: explicit slot counts add up, lines
 * without a count are remembered to decide what they mean at the end. */
typedef struct {
    uint64_t explicit_slots;
    uint32_t bare_lines;
    uint32_t lines;
} s_tally_t;

/* Parses a decimal count 1..1000000 from the whole of text. */
static bool s_parse_count(const char *text, uint32_t *out)
{
    if (!*text)
        return false;
    for (const char *c = text; *c; c++)
        if (!isdigit((unsigned char) *c))
            return false;
    errno = 0;
    unsigned long v = strtoul(text, NULL, 10);
    if (errno || v < 1 || v > 1000000ul)
        return false;
    *out = (uint32_t) v;
    return true;
}

/* A host name or address: printable, no blanks, no '/' or '#'. */
static bool s_valid_name(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len >= BN_HOST_NAME_MAX)
        return false;
    for (const char *c = s; *c; c++)
        if (!isgraph((unsigned char) *c) || *c == '/' || *c == '#')
            return false;
    return true;
}

void bn_hostfile_free(bn_hostfile_t *hf)
{
    if (!hf)
        return;
    free(hf->hosts);
    hf->hosts = NULL;
    hf->n_hosts = 0;
}

int bn_hostfile_load(bn_hostfile_t *hf, const char *path, char *err, size_t errlen)
{
    memset(hf, 0, sizeof *hf);
    FILE *f = fopen(path, "r");
    if (!f)
        return bn_fail(err, errlen, BN_EIO, "%s: %s", path, strerror(errno));
    int rc = BN_OK;
    uint32_t cap = 0;
    s_tally_t *tally = NULL;
    char line[1024];
    unsigned lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            rc = bn_fail(err, errlen, BN_EFORMAT, "%s:%u: line too long", path, lineno);
            goto done;
        }
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *save = NULL, *tok = strtok_r(line, " \t\r\n", &save);
        if (!tok)
            continue;
        char name[BN_HOST_NAME_MAX] = "", addr[BN_HOST_NAME_MAX] = "";
        uint32_t slots = 0;
        bool have_slots = false;
        /* host:K (MPICH) */
        char *colon = strchr(tok, ':');
        if (colon) {
            *colon = '\0';
            if (!s_parse_count(colon + 1, &slots)) {
                rc = bn_fail(err, errlen, BN_EFORMAT, "%s:%u: '%s': the slot count after ':' must be 1..1000000",
                             path, lineno, colon + 1);
                goto done;
            }
            have_slots = true;
        }
        if (!s_valid_name(tok)) {
            rc = bn_fail(err, errlen, BN_EFORMAT, "%s:%u: '%.64s' is not a host name", path, lineno, tok);
            goto done;
        }
        snprintf(name, sizeof name, "%s", tok);
        while ((tok = strtok_r(NULL, " \t\r\n", &save))) {
            uint32_t v;
            if (!strncmp(tok, "slots=", 6) || s_parse_count(tok, &v)) {
                const char *num = strncmp(tok, "slots=", 6) ? tok : tok + 6;
                if (have_slots || !s_parse_count(num, &slots)) {
                    rc = bn_fail(err, errlen, BN_EFORMAT, "%s:%u: '%s': one slot count 1..1000000 per line",
                                 path, lineno, tok);
                    goto done;
                }
                have_slots = true;
            } else if (!strncmp(tok, "max_slots=", 10)) {
                if (!s_parse_count(tok + 10, &v)) {
                    rc = bn_fail(err, errlen, BN_EFORMAT, "%s:%u: '%s': max_slots must be 1..1000000",
                                 path, lineno, tok);
                    goto done;
                }
            } else if (!strncmp(tok, "addr=", 5)) {
                if (!s_valid_name(tok + 5)) {
                    rc = bn_fail(err, errlen, BN_EFORMAT, "%s:%u: '%.64s' is not an address", path, lineno, tok);
                    goto done;
                }
                snprintf(addr, sizeof addr, "%s", tok + 5);
            } else {
                rc = bn_fail(err, errlen, BN_EFORMAT,
                             "%s:%u: '%.64s': expected a slot count, slots=K, max_slots=K or addr=A",
                             path, lineno, tok);
                goto done;
            }
        }
        uint32_t h = 0;
        while (h < hf->n_hosts && strcmp(hf->hosts[h].name, name) != 0)
            h++;
        if (h == hf->n_hosts) {
            if (hf->n_hosts == BN_HOSTS_MAX) {
                rc = bn_fail(err, errlen, BN_EFORMAT, "%s:%u: more than %u hosts", path, lineno, BN_HOSTS_MAX);
                goto done;
            }
            if (hf->n_hosts == cap) {
                uint32_t ncap = cap ? 2 * cap : 16;
                bn_host_t *nh = realloc(hf->hosts, ncap * sizeof *nh);
                s_tally_t *nt = nh ? realloc(tally, ncap * sizeof *nt) : NULL;
                if (nh)
                    hf->hosts = nh;
                if (!nh || !nt) {
                    rc = bn_fail(err, errlen, BN_ENOMEM, "%s: out of memory", path);
                    goto done;
                }
                tally = nt;
                cap = ncap;
            }
            memset(&hf->hosts[h], 0, sizeof hf->hosts[h]);
            memset(&tally[h], 0, sizeof tally[h]);
            snprintf(hf->hosts[h].name, sizeof hf->hosts[h].name, "%s", name);
            snprintf(hf->hosts[h].addr, sizeof hf->hosts[h].addr, "%s", addr[0] ? addr : name);
            hf->n_hosts++;
        } else if (addr[0] && strcmp(addr, hf->hosts[h].addr) != 0) {
            if (strcmp(hf->hosts[h].addr, hf->hosts[h].name) != 0) {
                rc = bn_fail(err, errlen, BN_EFORMAT, "%s:%u: host %s was given the address %s already",
                             path, lineno, name, hf->hosts[h].addr);
                goto done;
            }
            snprintf(hf->hosts[h].addr, sizeof hf->hosts[h].addr, "%s", addr);
        }
        tally[h].lines++;
        if (have_slots)
            tally[h].explicit_slots += slots;
        else
            tally[h].bare_lines++;
    }
    if (ferror(f)) {
        rc = bn_fail(err, errlen, BN_EIO, "%s: read error", path);
        goto done;
    }
    if (hf->n_hosts == 0) {
        rc = bn_fail(err, errlen, BN_EFORMAT, "%s: no host listed", path);
        goto done;
    }
    for (uint32_t h = 0; h < hf->n_hosts; h++) {
        /* One line without a count: no limit.  Otherwise every line counts. */
        uint64_t s = (tally[h].lines == 1 && tally[h].bare_lines == 1)
                     ? 0 : tally[h].explicit_slots + tally[h].bare_lines;
        hf->hosts[h].slots = s > 1000000u ? 1000000u : (uint32_t) s;
    }
done:
    free(tally);
    fclose(f);
    if (rc != BN_OK)
        bn_hostfile_free(hf);
    return rc;
}

int bn_hostfile_place(bn_hostfile_t *hf, uint32_t n, char *err, size_t errlen)
{
    if (n == 0)
        return bn_fail(err, errlen, BN_EARG, "a swarm needs at least one node");
    uint64_t total = 0;
    bool unlimited = false;
    for (uint32_t h = 0; h < hf->n_hosts; h++) {
        hf->hosts[h].count = 0;
        if (hf->hosts[h].slots == 0)
            unlimited = true;
        total += hf->hosts[h].slots;
    }
    if (!unlimited && total < n)
        return bn_fail(err, errlen, BN_EARG, "%u nodes but the %u host(s) have %llu slots in all",
                       n, hf->n_hosts, (unsigned long long) total);
    uint32_t left = n;
    while (left > 0)
        for (uint32_t h = 0; h < hf->n_hosts && left > 0; h++) {
            bn_host_t *x = &hf->hosts[h];
            if (x->slots == 0 || x->count < x->slots) {
                x->count++;
                left--;
            }
        }
    uint32_t next = 0;
    for (uint32_t h = 0; h < hf->n_hosts; h++) {
        hf->hosts[h].first = next;
        next += hf->hosts[h].count;
    }
    return BN_OK;
}

int bn_ids_parse(const char *spec, uint32_t limit, uint32_t **ids, uint32_t *count,
                 char *err, size_t errlen)
{
    *ids = NULL;
    *count = 0;
    if (limit == 0)
        return bn_fail(err, errlen, BN_EARG, "--ids %s: the swarm has no nodes", spec);
    bool *seen = calloc(limit, sizeof *seen);
    uint32_t *out = malloc(limit * sizeof *out);
    uint32_t k = 0;
    int rc = BN_OK;
    if (!seen || !out) {
        rc = bn_fail(err, errlen, BN_ENOMEM, "out of memory");
        goto done;
    }
    const char *p = spec;
    if (!*p) {
        rc = bn_fail(err, errlen, BN_EARG, "--ids: empty list");
        goto done;
    }
    while (*p) {
        const char *part = p;
        char *end;
        if (!isdigit((unsigned char) *p))
            goto bad;
        errno = 0;
        unsigned long a = strtoul(p, &end, 10), b = a;
        if (errno)
            goto bad;
        p = end;
        if (*p == '-') {
            p++;
            if (!isdigit((unsigned char) *p))
                goto bad;
            b = strtoul(p, &end, 10);
            if (errno)
                goto bad;
            p = end;
        }
        if (*p != ',' && *p != '\0')
            goto bad;
        if (a > b || b >= limit) {
            int plen = (int) (p - part);
            rc = bn_fail(err, errlen, BN_EARG, "--ids %s: '%.*s' is not a range of ids within 0..%u",
                         spec, plen > 32 ? 32 : plen, part, limit - 1);
            goto done;
        }
        for (unsigned long i = a; i <= b; i++) {
            if (seen[i]) {
                rc = bn_fail(err, errlen, BN_EARG, "--ids %s: id %lu is listed twice", spec, i);
                goto done;
            }
            seen[i] = true;
            out[k++] = (uint32_t) i;
        }
        if (*p == ',') {
            p++;
            if (!*p)
                goto bad;
        }
        continue;
    bad:
        rc = bn_fail(err, errlen, BN_EARG, "--ids %s: expected ids and ranges like 0-4,7,9-12", spec);
        goto done;
    }
done:
    free(seen);
    if (rc != BN_OK) {
        free(out);
        return rc;
    }
    *ids = out;
    *count = k;
    return BN_OK;
}
