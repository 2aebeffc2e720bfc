// metrics: E2E BLEU (pymteval) and ROUGE-L (pycocoevalcap); definitions in metrics.h.
#include "eval/metrics.h"
#include "eval/meteor.h"
#include "eval/scores.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "eval/scores.h"

// ----------------------------------------------------------------------------
// byte buffers

static void sb_putc(ls_buf *b, char c) { ls_buf_put(b, &c, 1); }

// Token lists are built as "tok\0tok\0..." plus a count.
typedef struct {
    ls_buf bytes;
    int n;
} tok_builder;

static void tb_add(tok_builder *t, const char *p, size_t n) {
    ls_buf_put(&t->bytes, p, n);
    sb_putc(&t->bytes, 0);
    t->n++;
}

// Python's "".split(' ') is [''], so an empty text is one empty token.
static void tb_finish(tok_builder *t, mt_tokens *out) {
    if (t->n == 0) tb_add(t, "", 0);
    out->n = t->n;
    out->buf = t->bytes.s;
    out->tok = ls_malloc((size_t)t->n * sizeof(char *));
    char *p = out->buf;
    for (int i = 0; i < t->n; i++) {
        out->tok[i] = p;
        p += strlen(p) + 1;
    }
}

void mt_tokens_free(mt_tokens *t) {
    free(t->tok);
    free(t->buf);
    memset(t, 0, sizeof *t);
}

char *mt_ptb_text(const char *raw) {
    mt_tokens t;
    mt_tokenize_ptb(raw, &t);
    size_t len = 1;
    for (int i = 0; i < t.n; i++) len += strlen(t.tok[i]) + 1;
    char *s = ls_malloc(len), *p = s;
    for (int i = 0; i < t.n; i++) {
        if (!t.tok[i][0]) continue;
        size_t k = strlen(t.tok[i]);
        memcpy(p, t.tok[i], k);
        p += k;
        *p++ = ' ';
    }
    *p = 0;
    mt_tokens_free(&t);
    return s;
}

void mt_ptb_corpus_make(mt_ptb_corpus *c, const char *const *hyps, char **const *refs, const int *n_refs, int n) {
    c->n = n;
    c->n_refs = n_refs;
    c->hyps = ls_malloc((size_t)(n > 0 ? n : 1) * sizeof(char *));
    c->refs = ls_malloc((size_t)(n > 0 ? n : 1) * sizeof(char **));
    for (int i = 0; i < n; i++) {
        c->hyps[i] = mt_ptb_text(hyps[i]);
        c->refs[i] = ls_malloc((size_t)(n_refs[i] > 0 ? n_refs[i] : 1) * sizeof(char *));
        for (int k = 0; k < n_refs[i]; k++) c->refs[i][k] = mt_ptb_text(refs[i][k]);
    }
}

void mt_ptb_corpus_free(mt_ptb_corpus *c) {
    for (int i = 0; i < c->n; i++) {
        for (int k = 0; k < c->n_refs[i]; k++) free(c->refs[i][k]);
        free(c->refs[i]);
        free(c->hyps[i]);
    }
    free(c->hyps);
    free(c->refs);
    memset(c, 0, sizeof *c);
}

// ----------------------------------------------------------------------------
// characters

// Byte length of the whitespace character at p (Python 3's \s / str.isspace
// set, in UTF-8), or 0.
static int space_len(const unsigned char *p) {
    if ((*p >= 0x09 && *p <= 0x0D) || (*p >= 0x1C && *p <= 0x20)) return 1;
    if (p[0] == 0xC2 && (p[1] == 0x85 || p[1] == 0xA0)) return 2;
    if (p[0] == 0xE1 && p[1] == 0x9A && p[2] == 0x80) return 3;
    if (p[0] == 0xE2 && p[1] == 0x80 && ((p[2] >= 0x80 && p[2] <= 0x8A) || p[2] == 0xA8 ||
                                         p[2] == 0xA9 || p[2] == 0xAF)) return 3;
    if (p[0] == 0xE2 && p[1] == 0x81 && p[2] == 0x9F) return 3;
    if (p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x80) return 3;
    return 0;
}

// Splits on runs of whitespace (= re.sub('\s+', ' '), strip(), split(' ')).
static void split_spaces(const char *text, mt_tokens *out) {
    tok_builder t = {0};
    const unsigned char *p = (const unsigned char *)text;
    while (*p) {
        int k;
        while ((k = space_len(p)) > 0) p += k;
        if (!*p) break;
        const unsigned char *start = p;
        while (*p && space_len(p) == 0) p++;
        tb_add(&t, (const char *)start, (size_t)(p - start));
    }
    tb_finish(&t, out);
}

// In-place lowercasing of ASCII and Latin-1 letters (U+00C0..U+00DE but
// U+00D7), the letters the E2E data holds; byte lengths do not change.
static void lowercase(char *s) {
    unsigned char *p = (unsigned char *)s;
    for (; *p; p++) {
        if (*p >= 'A' && *p <= 'Z') *p = (unsigned char)(*p + 32);
        else if (p[0] == 0xC3 && p[1] >= 0x80 && p[1] <= 0x9E && p[1] != 0x97) { p[1] += 0x20; p++; }
    }
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

// ----------------------------------------------------------------------------
// mteval-v13a tokenization (pymteval.NGramScore.tokenize)

static char *replace_all(char *s, const char *from, const char *to) {
    ls_buf b = {0};
    size_t fl = strlen(from), tl = strlen(to);
    const char *p = s, *q;
    while ((q = strstr(p, from))) {
        ls_buf_put(&b, p, (size_t)(q - p));
        ls_buf_put(&b, to, tl);
        p = q + fl;
    }
    ls_buf_put(&b, p, strlen(p));
    free(s);
    return b.s;
}

// Characters of mteval's punctuation class [\{-\~\[-\` -\&\(-\+\:-\@\/].
static int mteval_punct(unsigned char c) {
    return (c >= 0x7B && c <= 0x7E) || (c >= 0x5B && c <= 0x60) || (c >= 0x20 && c <= 0x26) ||
           (c >= 0x28 && c <= 0x2B) || (c >= 0x3A && c <= 0x40) || c == '/';
}

void mt_tokenize_mteval(const char *text, mt_tokens *out) {
    char *s = ls_strdup(text);
    s = replace_all(s, "<skipped>", "");
    s = replace_all(s, "-\n", "");
    s = replace_all(s, "\n", " ");
    s = replace_all(s, "&quot;", "\"");
    s = replace_all(s, "&amp;", "&");
    s = replace_all(s, "&lt;", "<");
    s = replace_all(s, "&gt;", ">");

    // Each re.sub below matches left to right without overlap; the patterns
    // are two ASCII characters (or one), and a non-ASCII byte is never a digit
    // nor [.,], so scanning bytes gives what Python gets scanning characters.
    ls_buf a = {0}, b = {0};
    sb_putc(&a, ' ');
    for (const char *p = s; *p; p++) {
        if (mteval_punct((unsigned char)*p)) { sb_putc(&a, ' '); sb_putc(&a, *p); sb_putc(&a, ' '); }
        else sb_putc(&a, *p);
    }
    sb_putc(&a, ' ');
    free(s);

    // ([^0-9])([\.,]) -> '\1 \2 '
    for (size_t i = 0; i < a.n;) {
        if (i + 1 < a.n && !is_digit(a.s[i]) && (a.s[i + 1] == '.' || a.s[i + 1] == ',')) {
            sb_putc(&b, a.s[i]); sb_putc(&b, ' '); sb_putc(&b, a.s[i + 1]); sb_putc(&b, ' ');
            i += 2;
        } else sb_putc(&b, a.s[i++]);
    }
    a.n = 0;
    // ([\.,])([^0-9]) -> ' \1 \2'
    for (size_t i = 0; i < b.n;) {
        if (i + 1 < b.n && (b.s[i] == '.' || b.s[i] == ',') && !is_digit(b.s[i + 1])) {
            sb_putc(&a, ' '); sb_putc(&a, b.s[i]); sb_putc(&a, ' '); sb_putc(&a, b.s[i + 1]);
            i += 2;
        } else sb_putc(&a, b.s[i++]);
    }
    b.n = 0;
    // ([0-9])(-) -> '\1 \2 '
    for (size_t i = 0; i < a.n;) {
        if (i + 1 < a.n && is_digit(a.s[i]) && a.s[i + 1] == '-') {
            sb_putc(&b, a.s[i]); sb_putc(&b, ' '); sb_putc(&b, '-'); sb_putc(&b, ' ');
            i += 2;
        } else sb_putc(&b, a.s[i++]);
    }
    split_spaces(b.s ? b.s : "", out);
    free(a.s);
    free(b.s);
}

// ----------------------------------------------------------------------------
// PTB-style tokenization (pycocoevalcap PTBTokenizer + punctuation filter)

static const char *const PTB_DROPPED[] = {
    "''", "'", "``", "`", "-lrb-", "-rrb-", "-lcb-", "-rcb-", ".", "?", "!", ",", ":", "-", "--",
    "...", ";", "\"", "(", ")", "[", "]", "{", "}",
};

static int ptb_dropped(const char *p, size_t n) {
    for (size_t k = 0; k < sizeof PTB_DROPPED / sizeof PTB_DROPPED[0]; k++)
        if (strlen(PTB_DROPPED[k]) == n && memcmp(PTB_DROPPED[k], p, n) == 0) return 1;
    return 0;
}

static void ptb_emit(tok_builder *t, const char *p, size_t n) {
    if (n && !ptb_dropped(p, n)) tb_add(t, p, n);
}

// Length of a currency sign ($, £, €) at p, or 0.
static int currency_len(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    if (p[0] == '$') return 1;
    if (p[0] == 0xC2 && p[1] == 0xA3) return 2;
    if (p[0] == 0xE2 && p[1] == 0x82 && p[2] == 0xAC) return 3;
    return 0;
}

static int ends_with(const char *p, size_t n, const char *suffix) {
    size_t k = strlen(suffix);
    return n > k && memcmp(p + n - k, suffix, k) == 0;
}

// A word without leading/trailing punctuation: internal splits, then clitics.
static void ptb_core(tok_builder *t, const char *p, size_t n) {
    static const char *const clitics[] = {"n't", "'s", "'re", "'ve", "'ll", "'m", "'d"};
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        int between_digits = i > 0 && i + 1 < n && is_digit(p[i - 1]) && is_digit(p[i + 1]);
        int split = strchr(";!?\"()[]{}", c) != NULL || ((c == ',' || c == ':') && !between_digits);
        if (!split) continue;
        ptb_core(t, p + start, i - start);
        ptb_emit(t, p + i, 1);
        start = i + 1;
    }
    if (start > 0) {
        ptb_core(t, p + start, n - start);
        return;
    }
    if (n == 6 && memcmp(p, "cannot", 6) == 0) {
        tb_add(t, "can", 3);
        tb_add(t, "not", 3);
        return;
    }
    for (size_t k = 0; k < sizeof clitics / sizeof clitics[0]; k++) {
        if (ends_with(p, n, clitics[k])) {
            size_t cl = strlen(clitics[k]);
            ptb_emit(t, p, n - cl);
            tb_add(t, p + n - cl, cl);
            return;
        }
    }
    ptb_emit(t, p, n);
}

static void ptb_word(tok_builder *t, const char *w, size_t n) {
    size_t b = 0, e = n;
    // leading quotes, brackets and currency signs
    for (;;) {
        if (b >= e) return;
        if (e - b >= 2 && (memcmp(w + b, "``", 2) == 0 || memcmp(w + b, "''", 2) == 0)) { b += 2; continue; }
        char c = w[b];
        if (strchr("\"([{`", c)) { b++; continue; }
        if (c == '\'' && e - b > 1) {
            // a clitic standing alone ("'s" after a space-separated name) stays
            int clitic = 0;
            static const char *const alone[] = {"'s", "'re", "'ve", "'ll", "'m", "'d"};
            for (size_t k = 0; k < sizeof alone / sizeof alone[0]; k++)
                if (strlen(alone[k]) == e - b && memcmp(w + b, alone[k], e - b) == 0) clitic = 1;
            if (!clitic) { b++; continue; }
        }
        int cur = currency_len(w + b);
        if (cur && e - b > (size_t)cur) {
            tb_add(t, w + b, (size_t)cur);
            b += (size_t)cur;
            continue;
        }
        break;
    }
    // trailing punctuation, kept in order to be emitted after the core
    size_t tail_start = e;
    for (;;) {
        if (e <= b) break;
        if (e - b >= 3 && memcmp(w + e - 3, "...", 3) == 0) { e -= 3; continue; }
        if (strchr(".,;:!?\"')]}", w[e - 1])) { e--; continue; }
        break;
    }
    if (e > b) ptb_core(t, w + b, e - b);
    for (size_t i = e; i < tail_start; i++) ptb_emit(t, w + i, 1);
}

void mt_tokenize_ptb(const char *text, mt_tokens *out) {
    char *s = ls_strdup(text);
    lowercase(s);
    mt_tokens words;
    split_spaces(s, &words);
    free(s);
    tok_builder t = {0};
    for (int i = 0; i < words.n; i++) ptb_word(&t, words.tok[i], strlen(words.tok[i]));
    mt_tokens_free(&words);
    tb_finish(&t, out);
}

// ----------------------------------------------------------------------------
// interning: token strings -> small integer ids, shared by one segment's lists

typedef struct {
    int cap;              // power of two
    const char **key;     // (cap) NULL = empty
    int *id;              // (cap)
    int n;
} intern_table;

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int intern(intern_table *t, const char *s) {
    uint64_t h = fnv1a(s);
    for (int i = (int)(h & (uint64_t)(t->cap - 1));; i = (i + 1) & (t->cap - 1)) {
        if (!t->key[i]) {
            t->key[i] = s;
            t->id[i] = t->n++;
            return t->id[i];
        }
        if (strcmp(t->key[i], s) == 0) return t->id[i];
    }
}

// ids[k] (lists[k].n) = the interned ids of lists[k]'s tokens.
static void intern_lists(const mt_tokens *lists, int n_lists, int **ids) {
    int total = 0;
    for (int k = 0; k < n_lists; k++) total += lists[k].n;
    intern_table t = {0};
    t.cap = 16;
    while (t.cap < 2 * total + 1) t.cap *= 2;
    t.key = ls_calloc((size_t)t.cap, sizeof(const char *));
    t.id = ls_malloc((size_t)t.cap * sizeof(int));
    for (int k = 0; k < n_lists; k++) {
        ids[k] = ls_malloc((size_t)(lists[k].n > 0 ? lists[k].n : 1) * sizeof(int));
        for (int i = 0; i < lists[k].n; i++) ids[k][i] = intern(&t, lists[k].tok[i]);
    }
    free(t.key);
    free(t.id);
}

// ----------------------------------------------------------------------------
// BLEU

void mt_bleu_init(mt_bleu_stats *s) { memset(s, 0, sizeof *s); }

// Occurrences of the n-gram g in seq (len).
static int count_ngram(const int *seq, int len, const int *g, int n) {
    int c = 0;
    for (int j = 0; j + n <= len; j++)
        if (memcmp(seq + j, g, (size_t)n * sizeof(int)) == 0) c++;
    return c;
}

void mt_bleu_add(mt_bleu_stats *s, const char *hyp, const char *const *refs, int n_refs) {
    if (n_refs < 1) return;
    int nl = n_refs + 1;  // list 0: the hypothesis
    mt_tokens *lists = ls_malloc((size_t)nl * sizeof(mt_tokens));
    mt_tokenize_mteval(hyp, &lists[0]);
    for (int r = 0; r < n_refs; r++) mt_tokenize_mteval(refs[r], &lists[r + 1]);
    // pymteval compares n-grams lowercased (case_sensitive=False); lengths are token counts
    for (int k = 0; k < nl; k++)
        for (int i = 0; i < lists[k].n; i++) lowercase(lists[k].tok[i]);
    int **ids = ls_malloc((size_t)nl * sizeof(int *));
    intern_lists(lists, nl, ids);

    int lh = lists[0].n;
    for (int n = 1; n <= MT_BLEU_N; n++) {
        long hits = 0;
        for (int j = 0; j + n <= lh; j++) {
            const int *g = ids[0] + j;
            int seen = 0;  // count each distinct hypothesis n-gram once
            for (int j2 = 0; j2 < j && !seen; j2++)
                seen = memcmp(ids[0] + j2, g, (size_t)n * sizeof(int)) == 0;
            if (seen) continue;
            int ch = count_ngram(ids[0], lh, g, n), cr = 0;
            for (int r = 1; r < nl; r++) {
                int c = count_ngram(ids[r], lists[r].n, g, n);
                if (c > cr) cr = c;
            }
            hits += ch < cr ? ch : cr;
        }
        s->hits[n - 1] += hits;
        s->cand_len[n - 1] += lh - (n - 1);
    }
    // closest reference length, the shorter one on a tie
    int best = lists[1].n;
    for (int r = 2; r < nl; r++) {
        int len = lists[r].n, d = abs(len - lh), db = abs(best - lh);
        if (d < db || (d == db && len < best)) best = len;
    }
    s->ref_len += best;
    s->n_segments++;

    for (int k = 0; k < nl; k++) {
        free(ids[k]);
        mt_tokens_free(&lists[k]);
    }
    free(ids);
    free(lists);
}

double mt_bleu_score(const mt_bleu_stats *s, mt_bleu *out) {
    mt_bleu r = {0};
    double c1 = (double)s->cand_len[0];
    r.brevity_penalty = 1.0;
    if (s->cand_len[0] <= s->ref_len) r.brevity_penalty = exp(1.0 - (double)s->ref_len / (c1 != 0 ? c1 : 1e-5));
    double log_sum = 0;
    for (int n = 0; n < MT_BLEU_N; n++) {
        double h = fmax((double)s->hits[n], 1e-15), l = fmax((double)s->cand_len[n], 1e-9);
        r.precision[n] = h / l;
        log_sum += log(h / l);
    }
    r.bleu = r.brevity_penalty * exp(log_sum / MT_BLEU_N);
    r.hyp_len = s->cand_len[0];
    r.ref_len = s->ref_len;
    if (out) *out = r;
    return r.bleu;
}

// ----------------------------------------------------------------------------
// ROUGE-L

static int lcs_ids(const int *a, int na, const int *b, int nb) {
    int *row = ls_calloc((size_t)nb + 1, sizeof(int));
    for (int i = 1; i <= na; i++) {
        int diag = 0;  // row[j-1] of the previous i
        for (int j = 1; j <= nb; j++) {
            int up = row[j];
            row[j] = a[i - 1] == b[j - 1] ? diag + 1 : (up > row[j - 1] ? up : row[j - 1]);
            diag = up;
        }
    }
    int r = row[nb];
    free(row);
    return r;
}

int mt_lcs(const mt_tokens *a, const mt_tokens *b) {
    mt_tokens lists[2] = {*a, *b};
    int *ids[2];
    intern_lists(lists, 2, ids);
    int r = lcs_ids(ids[0], a->n, ids[1], b->n);
    free(ids[0]);
    free(ids[1]);
    return r;
}

double mt_rouge_l_segment(const char *hyp, const char *const *refs, int n_refs) {
    if (n_refs < 1) return 0;
    const double beta = 1.2;  // pycocoevalcap: "updated ... based on discussion with Hovey"
    int nl = n_refs + 1;
    mt_tokens *lists = ls_malloc((size_t)nl * sizeof(mt_tokens));
    mt_tokenize_ptb(hyp, &lists[0]);
    for (int r = 0; r < n_refs; r++) mt_tokenize_ptb(refs[r], &lists[r + 1]);
    int **ids = ls_malloc((size_t)nl * sizeof(int *));
    intern_lists(lists, nl, ids);
    double p_max = 0, r_max = 0;
    for (int r = 1; r < nl; r++) {
        int l = lcs_ids(ids[r], lists[r].n, ids[0], lists[0].n);
        double p = (double)l / lists[0].n, rc = (double)l / lists[r].n;
        if (p > p_max) p_max = p;
        if (rc > r_max) r_max = rc;
    }
    double f = 0;
    if (p_max != 0 && r_max != 0) f = (1 + beta * beta) * p_max * r_max / (r_max + beta * beta * p_max);
    for (int k = 0; k < nl; k++) {
        free(ids[k]);
        mt_tokens_free(&lists[k]);
    }
    free(ids);
    free(lists);
    return f;
}

// ----------------------------------------------------------------------------
// corpus

void mt_score_corpus(const char *const *hyps, char **const *refs, const int *n_refs, int n,
                     mt_scores *out) {
    mt_bleu_stats st;
    mt_bleu_init(&st);
    double rouge_sum = 0;
    for (int i = 0; i < n; i++) {
        const char *const *r = (const char *const *)refs[i];
        mt_bleu_add(&st, hyps[i], r, n_refs[i]);
        rouge_sum += mt_rouge_l_segment(hyps[i], r, n_refs[i]);
    }
    memset(out, 0, sizeof *out);
    mt_bleu_score(&st, &out->bleu);
    out->rouge_l = n > 0 ? rouge_sum / n : 0;
    out->nist = mt_nist(hyps, refs, n_refs, n);
    out->cider = mt_cider(hyps, refs, n_refs, n);
    mt_wordnet *wn = mt_wordnet_load(mt_wordnet_default_dir());
    out->meteor = wn ? mt_meteor(wn, hyps, refs, n_refs, n) : NAN;
    mt_wordnet_free(wn);
    out->n_segments = n;
}
