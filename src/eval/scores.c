// NIST and CIDEr-D as the E2E challenge's script computes them (scores.h),
// and its input files.
#include "eval/scores.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "eval/metrics.h"

// ----------------------------------------------------------------------------
// n-gram counts: a string-keyed hash map. A key is the order as one byte,
// then the tokens, each followed by 0x1f.

typedef struct {
    char *key;        // owned; NULL = empty slot
    int order;
    double count;
} ng_entry;

typedef struct {
    size_t cap, n;    // cap: a power of two
    ng_entry *e;
} ng_map;

static uint64_t key_hash(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void ng_init(ng_map *m, size_t hint) {
    m->cap = 16;
    while (m->cap < 2 * hint) m->cap *= 2;
    m->n = 0;
    m->e = ls_calloc(m->cap, sizeof(ng_entry));
}

static void ng_free(ng_map *m) {
    for (size_t i = 0; i < m->cap; i++) free(m->e[i].key);
    free(m->e);
    memset(m, 0, sizeof *m);
}

static ng_entry *ng_slot(const ng_map *m, const char *key) {
    for (size_t i = key_hash(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1))
        if (!m->e[i].key || strcmp(m->e[i].key, key) == 0) return &m->e[i];
}

static void ng_grow(ng_map *m) {
    ng_map bigger = {m->cap * 2, m->n, ls_calloc(m->cap * 2, sizeof(ng_entry))};
    for (size_t i = 0; i < m->cap; i++)
        if (m->e[i].key) *ng_slot(&bigger, m->e[i].key) = m->e[i];
    free(m->e);
    *m = bigger;
}

// The entry of key, created with count 0 when missing.
static ng_entry *ng_get(ng_map *m, const char *key, int order) {
    ng_entry *e = ng_slot(m, key);
    if (e->key) return e;
    if (2 * (m->n + 1) > m->cap) {
        ng_grow(m);
        e = ng_slot(m, key);
    }
    e->key = ls_strdup(key);
    e->order = order;
    e->count = 0;
    m->n++;
    return e;
}

static double ng_value(const ng_map *m, const char *key) {
    const ng_entry *e = ng_slot(m, key);
    return e->key ? e->count : 0.0;
}

// The key of tokens tok[0 .. order) into buf (grown as needed).
static const char *ng_key(char **buf, size_t *cap, char *const *tok, int order, int lower) {
    size_t need = 2;
    for (int k = 0; k < order; k++) need += strlen(tok[k]) + 1;
    if (need > *cap) {
        free(*buf);
        *cap = need * 2;
        *buf = ls_malloc(*cap);
    }
    char *p = *buf;
    *p++ = (char)('0' + order);
    for (int k = 0; k < order; k++) {
        for (const char *s = tok[k]; *s; s++) *p++ = lower && *s >= 'A' && *s <= 'Z' ? (char)(*s - 'A' + 'a') : *s;
        *p++ = 0x1f;
    }
    *p = 0;
    return *buf;
}

// Adds the counts of every n-gram of t (orders 1..max_n) to m, times w.
static void ng_count(ng_map *m, const mt_tokens *t, int max_n, int lower, double w, char **buf, size_t *cap) {
    for (int n = 1; n <= max_n; n++)
        for (int i = 0; i + n <= t->n; i++) ng_get(m, ng_key(buf, cap, t->tok + i, n, lower), n)->count += w;
}

// ----------------------------------------------------------------------------
// NIST

typedef struct {
    ng_map ref;          // every reference n-gram over the corpus; order 0: "0" -> tokens
    ng_map hits;         // (segment, n-gram) -> clipped hits; key prefixed by the segment
    double cand_len[MT_NIST_N];
    double avg_ref_len;
    char *buf;
    size_t cap;
} nist_state;

static void nist_segment(nist_state *s, int seg, const char *hyp, char *const *refs, int n_refs) {
    mt_tokens h, *r = ls_calloc((size_t)n_refs, sizeof(mt_tokens));
    mt_tokenize_mteval(hyp, &h);
    double ref_tokens = 0;
    for (int k = 0; k < n_refs; k++) {
        mt_tokenize_mteval(refs[k], &r[k]);
        ref_tokens += r[k].n;
        ng_count(&s->ref, &r[k], MT_NIST_N, 1, 1.0, &s->buf, &s->cap);
    }
    ng_get(&s->ref, "0", 0)->count += ref_tokens;
    s->avg_ref_len += ref_tokens / n_refs;
    ng_map hc, merged;
    ng_init(&hc, (size_t)h.n * MT_NIST_N);
    ng_init(&merged, 64);
    ng_count(&hc, &h, MT_NIST_N, 1, 1.0, &s->buf, &s->cap);
    for (int k = 0; k < n_refs; k++) { // max over references of each n-gram's count
        ng_map one;
        ng_init(&one, (size_t)r[k].n * MT_NIST_N);
        ng_count(&one, &r[k], MT_NIST_N, 1, 1.0, &s->buf, &s->cap);
        for (size_t i = 0; i < one.cap; i++) {
            if (!one.e[i].key) continue;
            ng_entry *e = ng_get(&merged, one.e[i].key, one.e[i].order);
            if (one.e[i].count > e->count) e->count = one.e[i].count;
        }
        ng_free(&one);
    }
    for (size_t i = 0; i < hc.cap; i++) {
        if (!hc.e[i].key) continue;
        double hits = fmin(hc.e[i].count, ng_value(&merged, hc.e[i].key));
        if (hits <= 0) continue;
        char *key = ls_malloc(strlen(hc.e[i].key) + 16);
        snprintf(key, strlen(hc.e[i].key) + 16, "%d:%s", seg, hc.e[i].key);
        ng_get(&s->hits, key, hc.e[i].order)->count = hits;
        free(key);
    }
    for (int n = 0; n < MT_NIST_N; n++) s->cand_len[n] += h.n - n;
    ng_free(&hc);
    ng_free(&merged);
    for (int k = 0; k < n_refs; k++) mt_tokens_free(&r[k]);
    free(r);
    mt_tokens_free(&h);
}

// info(g) of an n-gram key ("<n>tok\x1f...") over the corpus' references.
static double nist_info(const nist_state *s, const char *key, int order) {
    double c = ng_value(&s->ref, key);
    if (c <= 0) return 0.0;
    char *prefix = ls_strdup(key);
    prefix[0] = (char)('0' + order - 1);
    // drop the last token: cut after the second-to-last separator
    size_t len = strlen(prefix);
    prefix[len - 1] = 0;
    char *cut = strrchr(prefix, 0x1f);
    if (cut) cut[1] = 0;
    else prefix[1] = 0;
    double p = ng_value(&s->ref, prefix);
    free(prefix);
    return log2(p / c);
}

double mt_nist(const char *const *hyps, char **const *refs, const int *n_refs, int n) {
    nist_state s = {0};
    ng_init(&s.ref, 1024);
    ng_init(&s.hits, 1024);
    for (int i = 0; i < n; i++)
        if (n_refs[i] > 0) nist_segment(&s, i, hyps[i], refs[i], n_refs[i]);
    double info[MT_NIST_N] = {0};
    for (size_t i = 0; i < s.hits.cap; i++) {
        const ng_entry *e = &s.hits.e[i];
        if (e->key) info[e->order - 1] += nist_info(&s, strchr(e->key, ':') + 1, e->order) * e->count;
    }
    double sum = 0;
    for (int k = 0; k < MT_NIST_N; k++)
        if (s.cand_len[k] > 0) sum += info[k] / s.cand_len[k];
    double bp, ratio = s.avg_ref_len > 0 ? s.cand_len[0] / s.avg_ref_len : 1.0;
    double beta = -log(0.5) / (log(1.5) * log(1.5));
    if (ratio >= 1) bp = 1;
    else if (ratio <= 0) bp = 0;
    else bp = exp(-beta * log(ratio) * log(ratio));
    ng_free(&s.ref);
    ng_free(&s.hits);
    free(s.buf);
    return bp * sum;
}

// ----------------------------------------------------------------------------
// CIDEr-D

// Tokens of a whitespace-split string, empty tokens dropped.
static void split_words(const char *text, mt_tokens *out) {
    size_t len = strlen(text);
    out->buf = ls_malloc(len + 1);
    out->tok = ls_malloc((len / 2 + 2) * sizeof(char *));
    out->n = 0;
    memcpy(out->buf, text, len + 1);
    for (char *p = out->buf; *p;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f' || *p == '\v') *p++ = 0;
        if (!*p) break;
        out->tok[out->n++] = p;
        while (*p && !(*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f' || *p == '\v')) p++;
    }
}

typedef struct {
    ng_map tf;                 // the sentence's n-gram counts, then their tf-idf weights
    double norm[MT_CIDER_N];
    double length;             // its bigram count (pycocoevalcap's "length")
} cider_vec;

static void cider_vec_make(cider_vec *v, const mt_tokens *t, const ng_map *df, double log_n, char **buf,
                           size_t *cap) {
    ng_init(&v->tf, (size_t)t->n * MT_CIDER_N);
    ng_count(&v->tf, t, MT_CIDER_N, 0, 1.0, buf, cap);
    memset(v->norm, 0, sizeof v->norm);
    v->length = 0;
    for (size_t i = 0; i < v->tf.cap; i++) {
        ng_entry *e = &v->tf.e[i];
        if (!e->key) continue;
        if (e->order == 2) v->length += e->count;
        e->count *= log_n - log(fmax(1.0, ng_value(df, e->key)));
        v->norm[e->order - 1] += e->count * e->count;
    }
    for (int k = 0; k < MT_CIDER_N; k++) v->norm[k] = sqrt(v->norm[k]);
}

static void cider_sim(const cider_vec *h, const cider_vec *r, double *val) {
    double delta = h->length - r->length, sigma = 6.0;
    double sums[MT_CIDER_N] = {0};
    for (size_t i = 0; i < h->tf.cap; i++) {
        const ng_entry *e = &h->tf.e[i];
        if (!e->key) continue;
        double vr = ng_value(&r->tf, e->key);
        sums[e->order - 1] += fmin(e->count, vr) * vr;
    }
    for (int k = 0; k < MT_CIDER_N; k++) {
        if (h->norm[k] != 0 && r->norm[k] != 0) sums[k] /= h->norm[k] * r->norm[k];
        val[k] += sums[k] * exp(-(delta * delta) / (2 * sigma * sigma));
    }
}

double mt_cider_tokenized(const char *const *hyps, char **const *refs, const int *n_refs, int n) {
    char *buf = NULL;
    size_t cap = 0;
    ng_map df;
    ng_init(&df, 4096);
    for (int i = 0; i < n; i++) { // document frequency: segments whose references hold g
        ng_map seen;
        ng_init(&seen, 256);
        for (int k = 0; k < n_refs[i]; k++) {
            mt_tokens t;
            split_words(refs[i][k], &t);
            ng_count(&seen, &t, MT_CIDER_N, 0, 1.0, &buf, &cap);
            mt_tokens_free(&t);
        }
        for (size_t j = 0; j < seen.cap; j++)
            if (seen.e[j].key) ng_get(&df, seen.e[j].key, seen.e[j].order)->count += 1;
        ng_free(&seen);
    }
    double log_n = log((double)n), total = 0;
    for (int i = 0; i < n; i++) {
        mt_tokens th;
        split_words(hyps[i], &th);
        cider_vec vh;
        cider_vec_make(&vh, &th, &df, log_n, &buf, &cap);
        double val[MT_CIDER_N] = {0};
        for (int k = 0; k < n_refs[i]; k++) {
            mt_tokens tr;
            split_words(refs[i][k], &tr);
            cider_vec vr;
            cider_vec_make(&vr, &tr, &df, log_n, &buf, &cap);
            cider_sim(&vh, &vr, val);
            ng_free(&vr.tf);
            mt_tokens_free(&tr);
        }
        double mean = 0;
        for (int k = 0; k < MT_CIDER_N; k++) mean += val[k];
        mean /= MT_CIDER_N;
        if (n_refs[i] > 0) total += 10.0 * mean / n_refs[i];
        ng_free(&vh.tf);
        mt_tokens_free(&th);
    }
    ng_free(&df);
    free(buf);
    return n > 0 ? total / n : 0.0;
}

double mt_cider(const char *const *hyps, char **const *refs, const int *n_refs, int n) {
    mt_ptb_corpus c;
    mt_ptb_corpus_make(&c, hyps, refs, n_refs, n);
    double score = mt_cider_tokenized((const char *const *)c.hyps, c.refs, n_refs, n);
    mt_ptb_corpus_free(&c);
    return score;
}

// ----------------------------------------------------------------------------
// measure_scores.py's input files

// p (old_bytes) moved into a new allocation of new_bytes.
static void *grow(void *p, size_t old_bytes, size_t new_bytes) {
    void *q = ls_malloc(new_bytes);
    memcpy(q, p, old_bytes);
    free(p);
    return q;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

// Splits text into lines, each stripped of surrounding whitespace (in place).
// Returns the count; *lines (owned by the caller) points into text.
static int split_lines(char *text, char ***lines) {
    int n = 0, cap = 64;
    *lines = ls_malloc((size_t)cap * sizeof(char *));
    for (char *p = text; *p;) {
        char *end = strchr(p, '\n'), *next = end ? end + 1 : p + strlen(p);
        if (end) *end = 0;
        while (is_space(*p)) p++;
        size_t k = strlen(p);
        while (k > 0 && is_space(p[k - 1])) p[--k] = 0;
        if (n == cap) {
            *lines = grow(*lines, (size_t)cap * sizeof(char *), 2 * (size_t)cap * sizeof(char *));
            cap *= 2;
        }
        (*lines)[n++] = p;
        p = next;
    }
    return n;
}

static char *read_text(const char *path, size_t *size) {
    char *text = ls_read_file_max(path, size, LS_READ_DATA_MAX);
    if (text && strlen(text) != *size) {
        ls_fail("%s: byte %zu is NUL (expected text)", path, strlen(text));
        free(text);
        return NULL;
    }
    return text;
}

// Groups the reference lines into c->refs (one group per blank-line-ended
// run), counting them in c->n. Returns 0 or -1.
static int group_refs(mt_corpus *c, char **lines, int n_lines, const char *path) {
    int cap = 64, start = 0;
    c->refs = ls_malloc((size_t)cap * sizeof(char **));
    c->n_refs = ls_malloc((size_t)cap * sizeof(int));
    for (int i = 0; i <= n_lines; i++) {
        if (i < n_lines && lines[i][0]) continue;
        if (i == start) { // a blank line right after another (or at the top)
            int more = 0;
            for (int k = i + 1; k < n_lines && !more; k++) more = lines[k][0] != 0;
            if (more)
                return ls_fail("%s:%d: a blank line that ends no instance (expected one blank line after each instance's references)", path, i + 1);
            start = i + 1;
            continue;
        }
        if (c->n == cap) {
            c->refs = grow(c->refs, (size_t)cap * sizeof(char **), 2 * (size_t)cap * sizeof(char **));
            c->n_refs = grow(c->n_refs, (size_t)cap * sizeof(int), 2 * (size_t)cap * sizeof(int));
            cap *= 2;
        }
        c->n_refs[c->n] = i - start;
        c->refs[c->n] = ls_malloc((size_t)(i - start) * sizeof(char *));
        for (int k = start; k < i; k++) c->refs[c->n][k - start] = ls_strdup(lines[k]);
        c->n++;
        start = i + 1;
    }
    return 0;
}

int mt_corpus_read(mt_corpus *c, const char *hyp_path, const char *refs_path) {
    memset(c, 0, sizeof *c);
    size_t hs, rs;
    char *ht = read_text(hyp_path, &hs);
    if (!ht) return -1;
    char *rt = read_text(refs_path, &rs);
    if (!rt) {
        free(ht);
        return -1;
    }
    char **hl, **rl;
    int nh = split_lines(ht, &hl), nr = split_lines(rt, &rl);
    int rc = group_refs(c, rl, nr, refs_path);
    if (!rc && c->n == 0)
        rc = ls_fail("%s: no references (expected reference lines, instances separated by a blank line)", refs_path);
    else if (!rc && nh != c->n)
        rc = ls_fail("%s: %d hypotheses, but %s has %d reference groups (expected one hypothesis per line, one per "
                     "instance)", hyp_path, nh, refs_path, c->n);
    c->hyp = ls_calloc((size_t)(c->n > 0 ? c->n : 1), sizeof(char *));
    for (int i = 0; !rc && i < c->n; i++) c->hyp[i] = ls_strdup(hl[i]);
    free(hl);
    free(rl);
    free(ht);
    free(rt);
    if (rc) mt_corpus_free(c);
    return rc;
}

void mt_corpus_free(mt_corpus *c) {
    for (int i = 0; i < c->n; i++) {
        for (int k = 0; k < c->n_refs[i]; k++) free(c->refs[i][k]);
        free(c->refs[i]);
        if (c->hyp) free(c->hyp[i]);
    }
    free(c->refs);
    free(c->n_refs);
    free(c->hyp);
    memset(c, 0, sizeof *c);
}
