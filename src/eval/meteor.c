// METEOR, exact + stem + synonym, as Meteor 1.5 computes it (meteor.h).
#include "eval/meteor.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "eval/metrics.h"
#include "eval/porter2.h"

#define METEOR_ALPHA 0.85
#define METEOR_BETA 0.20
#define METEOR_GAMMA 0.60
#define METEOR_DELTA 0.75
#define METEOR_BEAM 40

enum { MOD_EXACT, MOD_STEM, MOD_SYNONYM };
static const double MODULE_WEIGHT[MT_METEOR_MODULES] = {1.0, 0.6, 0.8};

// Meteor 1.5's English function words (its function/english.words list).
static const char *const FUNCTION_WORDS[] = {
    "the", ",", ".", "to", "of", "and", "a", "in", "that", "for", "\"", "is", "on", "'s", "it", "with",
    "was", "as", "said", "at", "he", "by", "be", "from", "have", "has", "are", "his", "but", "an", "this",
    "not", "i", "will", "\xe2\x80\x99", "they", ")", "-rrb-", "(", "-lrb-", "who", "their", "had", "we",
    "which", "were", "been", "more", "or", "s", "its", "would", "about", "new", "one", "after", "you", ":",
    "also", "up", "when", "there", "than", "$", "all", "out", "her", "people", "she", "year", "two", "-",
    "can", "if", "last", "first", "\xe2\x80\x9c", "over", "other", "\xe2\x80\x9d", "into", "some", "what",
    "so", "--", "no", "time", "years", "could", "?", "'t", "\xe2\x80\x94", "'", NULL};

static int is_function_word(const char *w) {
    for (int i = 0; FUNCTION_WORDS[i]; i++)
        if (!strcmp(w, FUNCTION_WORDS[i])) return 1;
    return 0;
}

// ----------------------------------------------------------------------------
// WordNet: lemma -> synset offsets, inflected form -> base forms

typedef struct {
    char *word;        // points into a file buffer; NULL = empty slot
    int *synsets;      // (n_synsets): Meteor's synset numbers (meteor_offset)
    int n_synsets;
    char **bases;      // (n_bases) from the *.exc lists
    int n_bases;
} wn_entry;

struct mt_wordnet {
    size_t cap, n;     // cap: a power of two
    wn_entry *e;
    char *buf[8];      // the files' text, owned
};

// realloc that exits on failure, as ls_malloc does.
static void *resize(void *p, size_t bytes, const char *file, int line) {
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q) {
        fprintf(stderr, "lorascope: out of memory allocating %zu bytes at %s:%d\n", bytes, file, line);
        exit(1);
    }
    return q;
}
#define RESIZE(p, bytes) resize((p), (bytes), __FILE__, __LINE__)

static uint64_t word_hash(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static wn_entry *wn_find(const mt_wordnet *wn, const char *w) {
    size_t i = word_hash(w) & (wn->cap - 1);
    while (wn->e[i].word && strcmp(wn->e[i].word, w)) i = (i + 1) & (wn->cap - 1);
    return &wn->e[i];
}

static wn_entry *wn_get(mt_wordnet *wn, char *w) {
    if (2 * (wn->n + 1) > wn->cap) {
        wn_entry *old = wn->e;
        size_t old_cap = wn->cap;
        wn->cap = old_cap ? 2 * old_cap : 1 << 16;
        wn->e = ls_calloc(wn->cap, sizeof(wn_entry));
        for (size_t i = 0; i < old_cap; i++)
            if (old[i].word) *wn_find(wn, old[i].word) = old[i];
        free(old);
    }
    wn_entry *e = wn_find(wn, w);
    if (!e->word) {
        e->word = w;
        wn->n++;
    }
    return e;
}

static const wn_entry *wn_lookup(const mt_wordnet *wn, const char *w) {
    if (!wn) return NULL;
    const wn_entry *e = wn_find(wn, w);
    return e->word ? e : NULL;
}

// Splits a line into its space-separated fields (in place); returns the count.
static int split_fields(char *line, char **f, int max) {
    int n = 0;
    for (char *p = line; *p && n < max;) {
        while (*p == ' ') *p++ = 0;
        if (!*p) break;
        f[n++] = p;
        while (*p && *p != ' ') p++;
    }
    return n;
}

// Meteor's synset number for a Debian byte offset of data.<pos> (0 noun, 1
// verb, 2 adj, 3 adv). Meteor's table was built from Princeton's WordNet 3.0
// files; Debian's data.verb has one line 18 bytes longer and a later one 18
// bytes shorter, data.adj one line a byte longer, which shifts the offsets
// between them. Mapped back, every lemma's synsets equal Meteor's
// synonym/english.synsets (checked for all 147,306 lemmas). Meteor does not
// tell parts of speech apart, so two synsets of different parts of speech at
// the same offset count as one, as in Meteor.
static int meteor_offset(int pos, int offset) {
    if (pos == 1 && offset >= 613036 && offset <= 2422681) return offset - 18;
    if (pos == 2 && offset >= 1681478) return offset - 1;
    return offset;
}

// index.<pos>: "lemma pos synset_cnt p_cnt [ptr...] sense_cnt tagsense_cnt offset...";
// lines starting with a space are the licence.
static int wn_read_index(mt_wordnet *wn, char *text, const char *path, int pos) {
    char *f[4096];
    int line_no = 0;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        line_no++;
        if (line[0] == ' ' || !line[0]) continue;
        int n = split_fields(line, f, 4096);
        int cnt = n >= 4 ? atoi(f[2]) : -1, p_cnt = n >= 4 ? atoi(f[3]) : -1;
        int first = 4 + p_cnt + 2;
        if (cnt < 1 || p_cnt < 0 || first + cnt != n)
            return ls_fail("%s:%d: expected 'lemma pos synset_cnt p_cnt [ptr...] sense_cnt tagsense_cnt "
                           "offset...' with synset_cnt offsets", path, line_no);
        wn_entry *e = wn_get(wn, f[0]);
        e->synsets = RESIZE(e->synsets, (size_t)(e->n_synsets + cnt) * sizeof(int));
        for (int k = 0; k < cnt; k++) e->synsets[e->n_synsets++] = meteor_offset(pos, atoi(f[first + k]));
    }
    return 0;
}

// <pos>.exc: "inflected base [base...]".
static int wn_read_exceptions(mt_wordnet *wn, char *text, const char *path) {
    char *f[64];
    int line_no = 0;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        line_no++;
        int n = split_fields(line, f, 64);
        if (n < 2) return ls_fail("%s:%d: expected 'inflected base [base...]'", path, line_no);
        wn_entry *e = wn_get(wn, f[0]);
        e->bases = RESIZE(e->bases, (size_t)(e->n_bases + n - 1) * sizeof(char *));
        for (int k = 1; k < n; k++) e->bases[e->n_bases++] = f[k];
    }
    return 0;
}

const char *mt_wordnet_default_dir(void) {
    const char *d = getenv("LORASCOPE_WORDNET");
    return d && *d ? d : "/usr/share/wordnet";
}

mt_wordnet *mt_wordnet_load(const char *dir) {
    static const char *const files[8] = {"index.noun", "index.verb", "index.adj", "index.adv",
                                         "noun.exc",   "verb.exc",   "adj.exc",   "adv.exc"};
    mt_wordnet *wn = ls_calloc(1, sizeof *wn);
    char path[4096];
    for (int k = 0; k < 8; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[k]);
        wn->buf[k] = ls_read_file(path, NULL);
        if (!wn->buf[k]) {
            ls_fail("%s: cannot read it (expected WordNet 3.0's database files: "
                    "install the package wordnet-base, or set LORASCOPE_WORDNET)", path);
            mt_wordnet_free(wn);
            return NULL;
        }
        int rc = k < 4 ? wn_read_index(wn, wn->buf[k], path, k) : wn_read_exceptions(wn, wn->buf[k], path);
        if (rc) {
            mt_wordnet_free(wn);
            return NULL;
        }
    }
    return wn;
}

void mt_wordnet_free(mt_wordnet *wn) {
    if (!wn) return;
    for (size_t i = 0; i < wn->cap; i++) {
        free(wn->e[i].synsets);
        free(wn->e[i].bases);
    }
    free(wn->e);
    for (int k = 0; k < 8; k++) free(wn->buf[k]);
    free(wn);
}

// ----------------------------------------------------------------------------
// a word's synsets: its own, plus those of its base forms

// WordNet 3.0's detachment rules (morph.c): noun, verb, adjective suffixes
// and what replaces them.
static const char *const MORPH_SUFFIX[] = {"s", "ses", "xes", "zes", "ches", "shes", "men", "ies",
                                           "s", "ies", "es", "es", "ed", "ed", "ing", "ing",
                                           "er", "est", "er", "est"};
static const char *const MORPH_ENDING[] = {"", "s", "x", "z", "ch", "sh", "man", "y",
                                           "", "y", "e", "", "e", "", "e", "",
                                           "", "", "e", "e"};

// The first rule's base form that is a WordNet lemma; "" when none is (a word
// ending in "ss" or of two letters or fewer is its own base, as in Meteor).
static void morph_base(const mt_wordnet *wn, const char *w, char *out, size_t cap) {
    size_t n = strlen(w);
    out[0] = 0;
    if ((n >= 2 && !strcmp(w + n - 2, "ss")) || n <= 2) {
        snprintf(out, cap, "%s", w);
        return;
    }
    for (int r = 0; r < 20; r++) {
        size_t k = strlen(MORPH_SUFFIX[r]);
        if (k > n || strcmp(w + n - k, MORPH_SUFFIX[r])) continue;
        if (n - k + strlen(MORPH_ENDING[r]) + 1 > cap) continue;
        memcpy(out, w, n - k);
        strcpy(out + n - k, MORPH_ENDING[r]);
        if (wn_lookup(wn, out) && wn_lookup(wn, out)->n_synsets) return;
    }
    out[0] = 0;
}

typedef struct {
    int *set;
    int n, cap;
} int_set;

static void set_add_all(int_set *s, const int *v, int n) {
    for (int k = 0; k < n; k++) {
        int dup = 0;
        for (int i = 0; i < s->n && !dup; i++) dup = s->set[i] == v[k];
        if (dup) continue;
        if (s->n == s->cap) {
            s->cap = s->cap ? 2 * s->cap : 8;
            s->set = RESIZE(s->set, (size_t)s->cap * sizeof(int));
        }
        s->set[s->n++] = v[k];
    }
}

static void add_synsets_of(const mt_wordnet *wn, const char *w, int_set *s) {
    const wn_entry *e = wn_lookup(wn, w);
    if (e) set_add_all(s, e->synsets, e->n_synsets);
}

// Meteor's synonym sets of a word: getSynSets(w) + getStemSynSets(w).
static void word_synsets(const mt_wordnet *wn, const char *w, int_set *s) {
    add_synsets_of(wn, w, s);
    const wn_entry *e = wn_lookup(wn, w);
    if (e && e->n_bases) {
        for (int b = 0; b < e->n_bases; b++) add_synsets_of(wn, e->bases[b], s);
        return;
    }
    char base[PORTER2_MAX_WORD + 8];
    if (strlen(w) > PORTER2_MAX_WORD) return;
    morph_base(wn, w, base, sizeof base);
    if (base[0]) add_synsets_of(wn, base, s);
}

static int sets_intersect(const int_set *a, const int_set *b) {
    for (int i = 0; i < a->n; i++)
        for (int j = 0; j < b->n; j++)
            if (a->set[i] == b->set[j]) return 1;
    return 0;
}

// ----------------------------------------------------------------------------
// candidate matches: line 1 = hypothesis (i), line 2 = reference (j)

typedef struct {
    int i, module;
} candidate;

typedef struct {
    int n1, n2;
    char **w1, **w2;           // words
    candidate *cand;           // (n2, max_per_j): the candidates whose reference word is j
    int *n_cand;               // (n2)
    int max_per_j;
    int *cover1;               // (n1) candidates touching each hypothesis word
} stage;

static void add_candidate(stage *s, int j, int i, int module) {
    s->cand[(size_t)j * s->max_per_j + s->n_cand[j]++] = (candidate){i, module};
    s->cover1[i]++;
}

// Each module in order, reference word j outer, hypothesis word i inner, as
// Meteor's matchers append them; identical sentences use the exact stage only.
static void find_candidates(stage *s, const mt_wordnet *wn) {
    int same = s->n1 == s->n2;
    for (int k = 0; k < s->n1 && same; k++) same = !strcmp(s->w1[k], s->w2[k]);
    for (int j = 0; j < s->n2; j++)
        for (int i = 0; i < s->n1; i++)
            if (!strcmp(s->w1[i], s->w2[j])) add_candidate(s, j, i, MOD_EXACT);
    if (same) return;
    char **st1 = ls_malloc((size_t)(s->n1 + 1) * sizeof(char *)), **st2 = ls_malloc((size_t)(s->n2 + 1) * sizeof(char *));
    for (int i = 0; i < s->n1; i++) {
        st1[i] = ls_malloc(strlen(s->w1[i]) + 2);
        porter2_stem(s->w1[i], st1[i], strlen(s->w1[i]) + 2);
    }
    for (int j = 0; j < s->n2; j++) {
        st2[j] = ls_malloc(strlen(s->w2[j]) + 2);
        porter2_stem(s->w2[j], st2[j], strlen(s->w2[j]) + 2);
    }
    for (int j = 0; j < s->n2; j++)
        for (int i = 0; i < s->n1; i++)
            if (!strcmp(st1[i], st2[j]) && strcmp(s->w1[i], s->w2[j])) add_candidate(s, j, i, MOD_STEM);
    for (int i = 0; i < s->n1; i++) free(st1[i]);
    for (int j = 0; j < s->n2; j++) free(st2[j]);
    free(st1);
    free(st2);
    if (!wn) return;
    int_set *syn1 = ls_calloc((size_t)s->n1 + 1, sizeof(int_set)), *syn2 = ls_calloc((size_t)s->n2 + 1, sizeof(int_set));
    for (int i = 0; i < s->n1; i++) word_synsets(wn, s->w1[i], &syn1[i]);
    for (int j = 0; j < s->n2; j++) word_synsets(wn, s->w2[j], &syn2[j]);
    for (int j = 0; j < s->n2; j++)
        for (int i = 0; i < s->n1; i++)
            if (sets_intersect(&syn1[i], &syn2[j]) && strcmp(s->w1[i], s->w2[j])) add_candidate(s, j, i, MOD_SYNONYM);
    for (int i = 0; i < s->n1; i++) free(syn1[i].set);
    for (int j = 0; j < s->n2; j++) free(syn2[j].set);
    free(syn1);
    free(syn2);
}

// ----------------------------------------------------------------------------
// Meteor's beam search for the alignment

typedef struct {
    int exact2;        // Meteor's int-summed weighted matches of both lines (2 per exact match)
    int chunks, idx, last_end, distance;
    long order;        // insertion order: ties keep it (Java's stable sort)
    int *choice;       // (n2) candidate index chosen at reference word j, -1 none
    unsigned char *used1, *used2; // (n1), (n2)
} path;

static path *path_new(const stage *s) {
    path *p = ls_calloc(1, sizeof(path) + (size_t)s->n2 * sizeof(int) + (size_t)(s->n1 + s->n2));
    p->choice = (int *)(p + 1);
    p->used1 = (unsigned char *)(p->choice + s->n2);
    p->used2 = p->used1 + s->n1;
    p->last_end = -1;
    for (int j = 0; j < s->n2; j++) p->choice[j] = -1;
    return p;
}

static path *path_copy(const stage *s, const path *src) {
    path *p = path_new(s);
    int *choice = p->choice;
    unsigned char *u1 = p->used1, *u2 = p->used2;
    *p = *src;
    p->choice = choice, p->used1 = u1, p->used2 = u2;
    memcpy(choice, src->choice, (size_t)s->n2 * sizeof(int));
    memcpy(u1, src->used1, (size_t)s->n1);
    memcpy(u2, src->used2, (size_t)s->n2);
    return p;
}

// Meteor's PARTIAL_COMPARE_TOTAL: more weighted matches, fewer chunks, shorter distance.
static int path_cmp(const void *a, const void *b) {
    const path *x = *(path *const *)a, *y = *(path *const *)b;
    if (x->exact2 != y->exact2) return y->exact2 > x->exact2 ? 1 : -1;
    if (x->chunks != y->chunks) return x->chunks < y->chunks ? -1 : 1;
    if (x->distance != y->distance) return x->distance < y->distance ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

typedef struct {
    path **p;
    int n, cap;
    long next_order;
} path_list;

static void push(path_list *l, path *p) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->p = RESIZE(l->p, (size_t)l->cap * sizeof(path *));
    }
    p->order = l->next_order++;
    l->p[l->n++] = p;
}

// Takes candidate c (reference word j) into path p: Meteor's bookkeeping.
static void take(path *p, int j, const candidate *c) {
    if (c->module == MOD_EXACT) p->exact2 += 2; // (int)(x + 0.5) adds nothing for stem and synonym
    if (p->last_end != -1 && c->i != p->last_end) p->chunks++;
    p->idx = j + 1;
    p->last_end = c->i + 1;
}

// One step of the search at reference word j for path p (Meteor's resolve()).
static void extend(const stage *s, path *p, int j, path_list *next, path **dropped) {
    const candidate *cs = s->cand + (size_t)j * s->max_per_j;
    if (p->used2[j]) {                    // a fixed one-to-one match
        if (j < p->idx) {
            push(next, p);
        } else if (p->choice[p->idx] != -1) {
            const candidate *c = &cs[p->choice[p->idx]];
            take(p, j, c);
            p->distance += abs(j - c->i);
            push(next, p);
        } else {
            *dropped = p;
        }
        return;
    }
    for (int k = 0; k < s->n_cand[j]; k++) {
        const candidate *c = &cs[k];
        if (p->used1[c->i]) continue;
        path *q = path_copy(s, p);
        q->used1[c->i] = q->used2[j] = 1;
        q->choice[j] = k;
        take(q, j, c);
        p->distance += abs(j - c->i);     // Meteor adds it to the path it branched from
        push(next, q);
    }
    if (p->last_end != -1) {              // skip word j
        p->chunks++;
        p->last_end = -1;
    }
    p->idx++;
    push(next, p);
}

static path *beam_search(const stage *s) {
    path *start = path_new(s);
    for (int j = 0; j < s->n2; j++) {     // one-to-one, non-overlapping matches are definite
        if (s->n_cand[j] != 1) continue;
        const candidate *c = &s->cand[(size_t)j * s->max_per_j];
        if (s->cover1[c->i] != 1) continue;
        start->choice[j] = 0;
        start->used1[c->i] = start->used2[j] = 1;
    }
    path_list cur = {0}, next = {0};
    push(&next, start);
    for (int j = 0; j <= s->n2; j++) {
        path_list tmp = cur;
        cur = next, next = tmp;
        next.n = 0;
        qsort(cur.p, (size_t)cur.n, sizeof(path *), path_cmp);
        path *dropped_first = NULL;
        for (int r = 0; r < cur.n; r++) {
            path *p = cur.p[r], *dropped = NULL;
            if (r >= METEOR_BEAM) {
                free(p);
                continue;
            }
            if (j == s->n2) {
                if (p->last_end != -1) p->chunks++;
                push(&next, p);
                continue;
            }
            extend(s, p, j, &next, &dropped);
            if (dropped && r == 0) dropped_first = dropped;
            else free(dropped);
        }
        if (next.n == 0 && dropped_first) push(&next, dropped_first); // Meteor's fallback
        else free(dropped_first);
    }
    qsort(next.p, (size_t)next.n, sizeof(path *), path_cmp);
    path *best = next.p[0];
    for (int k = 1; k < next.n; k++) free(next.p[k]);
    free(next.p);
    free(cur.p);
    return best;
}

// ----------------------------------------------------------------------------
// statistics and score

static double total_matches(const mt_meteor_stats *s, int ref_side) {
    double t = 0;
    for (int m = 0; m < MT_METEOR_MODULES; m++)
        t += ref_side ? s->ref_content_matches[m] + s->ref_function_matches[m]
                      : s->hyp_content_matches[m] + s->hyp_function_matches[m];
    return t;
}

double mt_meteor_score(const mt_meteor_stats *s) {
    const double a = METEOR_ALPHA, b = METEOR_BETA, g = METEOR_GAMMA, d = METEOR_DELTA;
    double hyp_wlen = d * (s->hyp_len - s->hyp_function) + (1.0 - d) * s->hyp_function;
    double ref_wlen = d * (s->ref_len - s->ref_function) + (1.0 - d) * s->ref_function;
    double hyp_w = 0, ref_w = 0;
    for (int m = 0; m < MT_METEOR_MODULES; m++) {
        hyp_w += MODULE_WEIGHT[m] * (d * s->hyp_content_matches[m] + (1.0 - d) * s->hyp_function_matches[m]);
        ref_w += MODULE_WEIGHT[m] * (d * s->ref_content_matches[m] + (1.0 - d) * s->ref_function_matches[m]);
    }
    double precision = hyp_w / hyp_wlen, recall = ref_w / ref_wlen;
    double fmean = 1.0 / ((1.0 - a) / precision + a / recall);
    double frag = (total_matches(s, 0) == s->hyp_len && total_matches(s, 1) == s->ref_len && s->chunks == 1)
                      ? 0.0
                      : s->chunks / ((s->hyp_matches + s->ref_matches) / 2.0);
    double score = fmean * (1.0 - g * pow(frag, b));
    if (isnan(score)) return 0.0;
    return score > 0.0 ? score : 0.0;
}

// Statistics of the hypothesis words w1 against one reference w2.
static void align_pair(const mt_wordnet *wn, char **w1, int n1, char **w2, int n2, mt_meteor_stats *st) {
    stage s = {n1, n2, w1, w2, NULL, NULL, 3 * (n1 > 0 ? n1 : 1), NULL};
    s.cand = ls_malloc((size_t)(n2 > 0 ? n2 : 1) * (size_t)s.max_per_j * sizeof(candidate));
    s.n_cand = ls_calloc((size_t)n2 + 1, sizeof(int));
    s.cover1 = ls_calloc((size_t)n1 + 1, sizeof(int));
    find_candidates(&s, wn);
    path *best = beam_search(&s);
    memset(st, 0, sizeof *st);
    st->hyp_len = n1, st->ref_len = n2;
    unsigned char *fn1 = ls_calloc((size_t)n1 + 1, 1), *fn2 = ls_calloc((size_t)n2 + 1, 1);
    for (int i = 0; i < n1; i++) st->hyp_function += fn1[i] = (unsigned char)is_function_word(w1[i]);
    for (int j = 0; j < n2; j++) st->ref_function += fn2[j] = (unsigned char)is_function_word(w2[j]);
    int last_end = -1;
    for (int j = 0; j < n2; j++) {     // Meteor's getCountAndChunks over the final alignment
        if (best->choice[j] < 0) {
            if (last_end != -1) st->chunks++;
            last_end = -1;
            continue;
        }
        const candidate *c = &s.cand[(size_t)j * s.max_per_j + best->choice[j]];
        (fn1[c->i] ? st->hyp_function_matches : st->hyp_content_matches)[c->module] += 1;
        (fn2[j] ? st->ref_function_matches : st->ref_content_matches)[c->module] += 1;
        st->hyp_matches += 1, st->ref_matches += 1;
        if (last_end != -1 && c->i != last_end) st->chunks++;
        last_end = c->i + 1;
    }
    if (last_end != -1) st->chunks++;
    free(fn1);
    free(fn2);
    free(best);
    free(s.cand);
    free(s.n_cand);
    free(s.cover1);
}

// Whitespace-separated tokens (Meteor's StringTokenizer), lowercased ASCII.
static void split_lower(const char *text, mt_tokens *out) {
    size_t len = strlen(text);
    out->buf = ls_malloc(len + 1);
    out->tok = ls_malloc((len / 2 + 2) * sizeof(char *));
    out->n = 0;
    memcpy(out->buf, text, len + 1);
    for (char *p = out->buf; *p;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f') *p++ = 0;
        if (!*p) break;
        out->tok[out->n++] = p;
        for (; *p && !(*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f'); p++)
            if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
    }
}

// ----------------------------------------------------------------------------
// Meteor's -norm for English (its Normalizer: Moses-style tokenization with
// its own quote, dash and contraction rules), on Unicode code points

typedef struct {
    uint32_t *c;
    int n, cap;
} cps;

static void cp_push(cps *v, uint32_t c) {
    if (v->n == v->cap) {
        v->cap = v->cap ? 2 * v->cap : 64;
        v->c = RESIZE(v->c, (size_t)v->cap * sizeof(uint32_t));
    }
    v->c[v->n++] = c;
}

static void cp_push_str(cps *v, const char *ascii) {
    for (; *ascii; ascii++) cp_push(v, (uint32_t)(unsigned char)*ascii);
}

static int is_alpha_cp(uint32_t c) { // Meteor's "alpha": Latin, Latin-1/Extended-A, Cyrillic ranges
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == 0x160 || c == 0x17d || c == 0x161 ||
           c == 0x17e || c == 0x178 || (c >= 0xc0 && c <= 0xd6) || (c >= 0xd8 && c <= 0xf6) ||
           (c >= 0xf8 && c <= 0x17e) || (c >= 0x400 && c <= 0x4ff) || (c >= 0x500 && c <= 0x527) ||
           (c >= 0xa640 && c <= 0xa66e) || (c >= 0xa67e && c <= 0xa697) || (c >= 0x1d00 && c <= 0x1d7f);
}
static int is_digit_cp(uint32_t c) { return c >= '0' && c <= '9'; }
static int is_alnum_cp(uint32_t c) { return is_alpha_cp(c) || is_digit_cp(c); }
static int is_space_cp(uint32_t c) { return c == ' ' || c == '\t' || c == '\n' || c == 0x0b || c == '\f' || c == '\r'; }

static void utf8_decode(const char *s, cps *out) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        uint32_t c = *p;
        int k = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
        if (k) c &= 0x3fu >> k;
        p++;
        for (; k > 0 && (*p & 0xc0) == 0x80; k--) c = (c << 6) | (*p++ & 0x3f);
        cp_push(out, c);
    }
}

static void utf8_append(char **s, size_t *len, size_t *cap, uint32_t c) {
    if (*len + 5 > *cap) {
        *cap = 2 * *cap + 16;
        *s = RESIZE(*s, *cap);
    }
    char *o = *s + *len;
    if (c < 0x80) o[0] = (char)c, *len += 1;
    else if (c < 0x800) o[0] = (char)(0xc0 | c >> 6), o[1] = (char)(0x80 | (c & 0x3f)), *len += 2;
    else if (c < 0x10000)
        o[0] = (char)(0xe0 | c >> 12), o[1] = (char)(0x80 | ((c >> 6) & 0x3f)), o[2] = (char)(0x80 | (c & 0x3f)), *len += 3;
    else
        o[0] = (char)(0xf0 | c >> 18), o[1] = (char)(0x80 | ((c >> 12) & 0x3f)), o[2] = (char)(0x80 | ((c >> 6) & 0x3f)),
        o[3] = (char)(0x80 | (c & 0x3f)), *len += 4;
}

typedef int (*cp_class)(uint32_t);
static int not_digit(uint32_t c) { return !is_digit_cp(c); }
static int not_alpha(uint32_t c) { return !is_alpha_cp(c); }
static int not_alnum(uint32_t c) { return !is_alnum_cp(c); }
static int alnum_or_dot(uint32_t c) { return is_alnum_cp(c) || c == '.'; }
static int letter_s(uint32_t c) { return c == 's'; }

// Java's replaceAll of "([a])lit([b])" by "$1" rep "$2": left to right, matches not overlapping.
static void replace3(cps *v, cp_class a, uint32_t lit, cp_class b, const char *rep) {
    cps out = {0};
    for (int i = 0; i < v->n;) {
        if (i + 2 < v->n && v->c[i + 1] == lit && a(v->c[i]) && b(v->c[i + 2])) {
            cp_push(&out, v->c[i]);
            cp_push_str(&out, rep);
            cp_push(&out, v->c[i + 2]);
            i += 3;
        } else {
            cp_push(&out, v->c[i++]);
        }
    }
    free(v->c);
    *v = out;
}

// Separates symbols, normalizes quotes and dashes, removes word-internal
// dashes, splits English contractions (Normalizer.normalizeLine, keeping
// punctuation). Not done: the escaping of runs of dots and the nonbreaking
// prefix list (a token ending in "." is kept whole when a lowercase word
// follows, else its dot is split off); neither occurs in COCO-tokenized text.
static void meteor_normalize_cps(cps *v) {
    cps out = {0};
    cp_push(&out, ' ');
    for (int i = 0; i < v->n; i++) {
        uint32_t c = v->c[i];
        if (c == '`' || c == 0x2018 || c == 0x2019) c = '\'';  // quote normalization, after the
        int keep = is_alnum_cp(v->c[i]) || is_space_cp(c) || c == '.' || c == '\'' || c == ',' || c == '-';
        if (!keep) cp_push(&out, ' ');                          // separation that keeps ` ' '
        if (c == 0x201c || c == 0x201d || (c == '\'' && i + 1 < v->n && v->c[i + 1] == '\'')) {
            cp_push_str(&out, " \" ");
            if (c == '\'') i++;
            continue;
        }
        cp_push(&out, c == 0x2013 ? '-' : c);
        if (!keep) cp_push(&out, ' ');
    }
    cp_push(&out, ' ');
    free(v->c);
    *v = out;
    replace3(v, not_digit, ',', not_digit, " , ");
    replace3(v, is_digit_cp, ',', not_digit, " , ");
    replace3(v, not_digit, ',', is_digit_cp, " , ");
    cps dd = {0};                                               // "--" -> "-"
    for (int i = 0; i < v->n; i++) {
        cp_push(&dd, v->c[i]);
        if (v->c[i] == '-' && i + 1 < v->n && v->c[i + 1] == '-') i++;
    }
    free(v->c);
    *v = dd;
    replace3(v, alnum_or_dot, '-', is_alnum_cp, " ");
    replace3(v, not_alpha, '\'', not_alpha, " ' ");
    replace3(v, not_alnum, '\'', is_alpha_cp, " ' ");
    replace3(v, is_alpha_cp, '\'', not_alpha, " ' ");
    replace3(v, is_alpha_cp, '\'', is_alpha_cp, " '");
    replace3(v, is_digit_cp, '\'', letter_s, " '");
}

// The normalized, lowercased line's words: *out as split_lower gives them.
static void meteor_words(const char *line, mt_tokens *out) {
    cps v = {0};
    utf8_decode(line, &v);
    meteor_normalize_cps(&v);
    size_t len = 0, cap = (size_t)v.n * 4 + 16;
    char *s = ls_malloc(cap);
    for (int i = 0; i < v.n; i++) utf8_append(&s, &len, &cap, v.c[i]);
    s[len] = 0;
    free(v.c);
    mt_tokens t;
    split_lower(s, &t);
    char *r = ls_malloc(2 * len + 16), *o = r;                 // a final dot, unless a lowercase word follows
    for (int i = 0; i < t.n; i++) {
        const char *w = t.tok[i];
        size_t k = strlen(w);
        int inner_dot = k >= 2 && memchr(w, '.', k - 1) != NULL, alpha = 0;
        for (size_t j = 0; j + 1 < k; j++) alpha |= (w[j] >= 'a' && w[j] <= 'z');
        if (k < 2 || w[k - 1] != '.') {
            memcpy(o, w, k), o += k;
        } else if (inner_dot && alpha) {                     // U.S. -> us
            for (size_t j = 0; j < k; j++)
                if (w[j] != '.') *o++ = w[j];
        } else if (i + 1 < t.n && t.tok[i + 1][0] >= 'a' && t.tok[i + 1][0] <= 'z') {
            memcpy(o, w, k), o += k;
        } else {
            memcpy(o, w, k - 1), o += k - 1;
            memcpy(o, " .", 2), o += 2;
        }
        *o++ = ' ';
    }
    *o = 0;
    mt_tokens_free(&t);
    free(s);
    split_lower(r, out);
    free(r);
}

double mt_meteor_segment(const mt_wordnet *wn, const char *hyp, const char *const *refs, int n_refs,
                         mt_meteor_stats *out) {
    mt_tokens h;
    meteor_words(hyp, &h);
    double best = -1.0;
    memset(out, 0, sizeof *out);
    for (int k = 0; k < n_refs; k++) {
        mt_tokens r;
        meteor_words(refs[k], &r);
        mt_meteor_stats st;
        align_pair(wn, h.tok, h.n, r.tok, r.n, &st);
        double score = mt_meteor_score(&st);
        if (score > best) best = score, *out = st;
        mt_tokens_free(&r);
    }
    mt_tokens_free(&h);
    return best < 0 ? 0.0 : best;
}

// Meteor's MeteorStats.addStats: every count summed, except that a segment
// matched perfectly (every word, one chunk) adds no chunk.
static void stats_add(mt_meteor_stats *sum, const mt_meteor_stats *s) {
    int perfect = total_matches(s, 0) == s->hyp_len && total_matches(s, 1) == s->ref_len && s->chunks == 1;
    double chunks = sum->chunks;
    double *a = (double *)sum;                                 // all fields are doubles
    const double *b = (const double *)s;
    for (size_t k = 0; k < sizeof *s / sizeof(double); k++) a[k] += b[k];
    sum->chunks = chunks + (perfect ? 0 : s->chunks);
}

double mt_meteor_tokenized(const mt_wordnet *wn, const char *const *hyps, char **const *refs, const int *n_refs,
                           int n, double *seg) {
    mt_meteor_stats sum;
    memset(&sum, 0, sizeof sum);
    for (int i = 0; i < n; i++) {
        mt_meteor_stats st;
        double score = mt_meteor_segment(wn, hyps[i], (const char *const *)refs[i], n_refs[i], &st);
        if (seg) seg[i] = score;
        stats_add(&sum, &st);
    }
    return n > 0 ? mt_meteor_score(&sum) : 0.0;
}

double mt_meteor(const mt_wordnet *wn, const char *const *hyps, char **const *refs, const int *n_refs, int n) {
    mt_ptb_corpus c;
    mt_ptb_corpus_make(&c, hyps, refs, n_refs, n);
    double score = mt_meteor_tokenized(wn, (const char *const *)c.hyps, c.refs, n_refs, n, NULL);
    mt_ptb_corpus_free(&c);
    return score;
}
