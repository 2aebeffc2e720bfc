// ds_formats: readers for context/completion files (JSONL, E2E NLG, SST-2).
// Every reader names the file and the 1-based line of a malformed row, with
// what it expected and what it found.
#include "text/dataset.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

// ----------------------------------------------------------------------------
// helpers

// Iterates over the lines of a NUL-terminated buffer, cutting them in place
// (a trailing '\r' is dropped). Returns NULL at the end.
static char *next_line(char **cursor, int *lineno) {
    char *line = *cursor;
    if (!line || !*line) return NULL;
    char *end = strchr(line, '\n');
    if (end) {
        *end = 0;
        *cursor = end + 1;
    } else {
        *cursor = NULL;
    }
    size_t n = strlen(line);
    if (n && line[n - 1] == '\r') line[n - 1] = 0;
    (*lineno)++;
    return line;
}

static int is_blank(const char *s) {
    for (; *s; s++)
        if (*s != ' ' && *s != '\t') return 0;
    return 1;
}

// malloc'd copy of s[0..n) without surrounding whitespace.
static char *trimmed(const char *s, size_t n) {
    while (n && (*s == ' ' || *s == '\t')) { s++; n--; }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    char *out = ls_malloc(n + 1);
    memcpy(out, s, n);
    out[n] = 0;
    return out;
}

// Length of the well-formed UTF-8 sequence at s (2 to 4 bytes), or 0.
static int utf8_sequence(const unsigned char *s) {
    int n = s[0] >= 0xc2 && s[0] <= 0xdf ? 2 : s[0] >= 0xe0 && s[0] <= 0xef ? 3 : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    return n;
}

// The first max characters of s for an error message: printable text and
// well-formed UTF-8 as they are, every other byte as \xNN, so a binary file
// never writes raw bytes to the terminal. Returns buf (size >= 4 * max + 4).
static const char *shown(const char *s, int max, char *buf, size_t size) {
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s;
    for (int k = 0; *p && k < max && o + 8 < size; k++) {
        int n = *p >= 0x80 ? utf8_sequence(p) : 0;
        if (n) {
            memcpy(buf + o, p, (size_t)n);
            o += (size_t)n;
            p += n;
        } else if (*p < 0x20 || *p >= 0x7f) {
            o += (size_t)snprintf(buf + o, size - o, "\\x%02x", *p++);
        } else {
            buf[o++] = (char)*p++;
        }
    }
    buf[o] = 0;
    return buf;
}
#define SHOWN_SIZE 256

static void push_example(ds_pairs *d, int *cap, char *context, char *completion, int label, int line) {
    if (d->n == *cap) {
        *cap = *cap ? 2 * *cap : 256;
        ds_example *ex = ls_malloc((size_t)*cap * sizeof *ex);
        if (d->n) memcpy(ex, d->ex, (size_t)d->n * sizeof *ex);
        free(d->ex);
        d->ex = ex;
    }
    d->ex[d->n] = (ds_example){context, completion, d->n, label, line};
    d->n++;
}

// Builds the group index (group_start / group_members) from ex[].group.
static void index_groups(ds_pairs *d) {
    d->group_start = ls_calloc((size_t)d->n_groups + 1, sizeof(int));
    d->group_members = ls_malloc((size_t)(d->n > 0 ? d->n : 1) * sizeof(int));
    for (int i = 0; i < d->n; i++) d->group_start[d->ex[i].group + 1]++;
    for (int g = 0; g < d->n_groups; g++) d->group_start[g + 1] += d->group_start[g];
    int *fill = ls_malloc((size_t)(d->n_groups > 0 ? d->n_groups : 1) * sizeof(int));
    memcpy(fill, d->group_start, (size_t)d->n_groups * sizeof(int));
    for (int i = 0; i < d->n; i++) d->group_members[fill[d->ex[i].group]++] = i;
    free(fill);
}

static char *read_text(ds_pairs *d, const char *path) {
    memset(d, 0, sizeof *d);
    d->path = ls_strdup(path);
    size_t size;
    char *text = ls_read_file_max(path, &size, LS_READ_DATA_MAX);
    if (!text) return NULL;
    size_t nul = strlen(text);
    if (nul != size) {
        free(text);
        ls_fail("%s: byte %zu: expected UTF-8 text, found a NUL byte", path, nul);
        return NULL;
    }
    return text;
}

void ds_pairs_free(ds_pairs *d) {
    for (int i = 0; i < d->n; i++) {
        free(d->ex[i].context);
        free(d->ex[i].completion);
        if (d->tokens) free(d->tokens[i]);
        if (d->mask) free(d->mask[i]);
    }
    free(d->ex);
    free(d->path);
    free(d->group_start);
    free(d->group_members);
    free(d->tokens);
    free(d->mask);
    free(d->n_tokens);
    for (int k = 0; k < 2; k++) {
        free(d->label_words[k]);
        free(d->label_ids[k]);
    }
    memset(d, 0, sizeof *d);
}

// ----------------------------------------------------------------------------
// JSONL

static const char *json_kind(const cJSON *v) {
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    return "an invalid value";
}

int ds_load_jsonl(ds_pairs *d, const char *path) {
    char *text = read_text(d, path);
    if (!text) { ds_pairs_free(d); return -1; }
    int cap = 0, lineno = 0, rc = 0;
    char *cursor = text, *line;
    while ((line = next_line(&cursor, &lineno))) {
        if (is_blank(line)) continue;
        const char *end = NULL;
        cJSON *obj = cJSON_ParseWithLengthOpts(line, strlen(line), &end, 0);
        if (obj && end) {
            while (*end == ' ' || *end == '\t') end++;
            if (*end) { cJSON_Delete(obj); obj = NULL; }
        }
        const char *expect = "expected a JSON object with string fields \"context\" and \"completion\"";
        if (!obj || !cJSON_IsObject(obj)) {
            rc = ls_fail("%s:%d: %s, found %s", path, lineno, expect, obj ? json_kind(obj) : "invalid JSON");
            cJSON_Delete(obj);
            break;
        }
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(obj, "context");
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(obj, "completion");
        const char *which = !cJSON_IsString(c) ? "context" : !cJSON_IsString(p) ? "completion" : NULL;
        if (which) {
            const cJSON *v = strcmp(which, "context") == 0 ? c : p;
            if (!v) rc = ls_fail("%s:%d: %s, found no \"%s\" field", path, lineno, expect, which);
            else rc = ls_fail("%s:%d: %s, found \"%s\" as %s", path, lineno, expect, which, json_kind(v));
            cJSON_Delete(obj);
            break;
        }
        push_example(d, &cap, ls_strdup(c->valuestring), ls_strdup(p->valuestring), -1, lineno);
        cJSON_Delete(obj);
    }
    free(text);
    if (rc) { ds_pairs_free(d); return -1; }
    d->n_groups = d->n;
    index_groups(d);
    return 0;
}

// ----------------------------------------------------------------------------
// E2E

typedef struct {
    const char *mr;
    int index;
} mr_entry;

static int compare_mr(const void *a, const void *b) {
    const mr_entry *x = a, *y = b;
    int c = strcmp(x->mr, y->mr);
    return c ? c : (x->index > y->index) - (x->index < y->index);
}

int ds_load_e2e(ds_pairs *d, const char *path) {
    char *text = read_text(d, path);
    if (!text) { ds_pairs_free(d); return -1; }
    int cap = 0, lineno = 0, rc = 0;
    char *cursor = text, *line;
    while ((line = next_line(&cursor, &lineno))) {
        if (is_blank(line)) continue;
        char *bar = strstr(line, "||"), show[SHOWN_SIZE];
        if (!bar) {
            rc = ls_fail("%s:%d: expected \"meaning representation||reference\", found no \"||\" in \"%s\"",
                         path, lineno, shown(line, 60, show, sizeof show));
            break;
        }
        // "a|||b" would split as "a" and "|b": neither side may touch the separator with a '|'.
        if (strstr(bar + 2, "||") || bar[2] == '|') {
            rc = ls_fail("%s:%d: expected one \"||\" separator, found more '|' in \"%s\"", path, lineno,
                         shown(line, 60, show, sizeof show));
            break;
        }
        char *mr = trimmed(line, (size_t)(bar - line));
        char *ref = trimmed(bar + 2, strlen(bar + 2));
        if (!*mr || !*ref) {
            rc = ls_fail("%s:%d: expected a non-empty meaning representation and reference, found an empty %s",
                         path, lineno, !*mr ? "meaning representation" : "reference");
            free(mr);
            free(ref);
            break;
        }
        // The reference follows the MR after a space (gpt2_encode.py: ' ' + completion).
        char *completion = ls_malloc(strlen(ref) + 2);
        completion[0] = ' ';
        strcpy(completion + 1, ref);
        free(ref);
        push_example(d, &cap, mr, completion, -1, lineno);
    }
    free(text);
    if (rc) { ds_pairs_free(d); return -1; }

    // Group by MR, groups numbered by first appearance.
    mr_entry *e = ls_malloc((size_t)(d->n > 0 ? d->n : 1) * sizeof *e);
    for (int i = 0; i < d->n; i++) e[i] = (mr_entry){d->ex[i].context, i};
    qsort(e, (size_t)d->n, sizeof *e, compare_mr);
    int *first = ls_malloc((size_t)(d->n > 0 ? d->n : 1) * sizeof(int));  // first example of each run
    for (int k = 0; k < d->n; k++)
        first[e[k].index] = (k > 0 && strcmp(e[k].mr, e[k - 1].mr) == 0) ? first[e[k - 1].index] : e[k].index;
    int *group_of_first = ls_malloc((size_t)(d->n > 0 ? d->n : 1) * sizeof(int));
    d->n_groups = 0;
    for (int i = 0; i < d->n; i++) {
        if (first[i] == i) group_of_first[i] = d->n_groups++;
        d->ex[i].group = group_of_first[first[i]];
    }
    free(e);
    free(first);
    free(group_of_first);
    index_groups(d);
    return 0;
}

// ----------------------------------------------------------------------------
// SST-2

ds_sst2_format ds_sst2_format_default(void) {
    return (ds_sst2_format){"Review: {sentence}\nSentiment:", {" negative", " positive"}};
}

int ds_load_sst2(ds_pairs *d, const char *path, const ds_sst2_format *fmt) {
    ds_sst2_format def = ds_sst2_format_default();
    if (!fmt) fmt = &def;
    const char *slot = strstr(fmt->prompt, "{sentence}");
    if (!slot || strstr(slot + 1, "{sentence}")) {
        memset(d, 0, sizeof *d);
        return ls_fail("%s: prompt template \"%s\": expected \"{sentence}\" exactly once, found it %s",
                       path, fmt->prompt, slot ? "more than once" : "nowhere");
    }
    char *text = read_text(d, path);
    if (!text) { ds_pairs_free(d); return -1; }
    int cap = 0, lineno = 0, rc = 0;
    char *cursor = text, *line;
    size_t head = (size_t)(slot - fmt->prompt), tail_len = strlen(slot + 10);
    while ((line = next_line(&cursor, &lineno))) {
        char show[SHOWN_SIZE];
        if (lineno == 1) {
            if (strcmp(line, "sentence\tlabel") != 0) {
                rc = ls_fail("%s:1: expected the header \"sentence<TAB>label\", found \"%s\"", path,
                             shown(line, 60, show, sizeof show));
                break;
            }
            continue;
        }
        if (is_blank(line)) continue;
        char *tab = strrchr(line, '\t');
        if (!tab) {
            rc = ls_fail("%s:%d: expected \"sentence<TAB>label\", found no tab in \"%s\"", path, lineno,
                         shown(line, 60, show, sizeof show));
            break;
        }
        const char *lab = tab + 1;
        if (strcmp(lab, "0") != 0 && strcmp(lab, "1") != 0) {
            rc = ls_fail("%s:%d: label: expected 0 or 1, found \"%s\"", path, lineno, shown(lab, 20, show, sizeof show));
            break;
        }
        char *sentence = trimmed(line, (size_t)(tab - line));
        size_t sl = strlen(sentence);
        char *context = ls_malloc(head + sl + tail_len + 1);
        memcpy(context, fmt->prompt, head);
        memcpy(context + head, sentence, sl);
        memcpy(context + head + sl, slot + 10, tail_len + 1);
        free(sentence);
        int label = lab[0] - '0';
        push_example(d, &cap, context, ls_strdup(fmt->label_words[label]), label, lineno);
    }
    free(text);
    if (!rc && lineno == 0) rc = ls_fail("%s: expected the header \"sentence<TAB>label\", found an empty file", path);
    if (rc) { ds_pairs_free(d); return -1; }
    d->n_labels = 2;
    for (int k = 0; k < 2; k++) d->label_words[k] = ls_strdup(fmt->label_words[k]);
    d->n_groups = d->n;
    index_groups(d);
    return 0;
}
