// tokenizer: the common interface, loading by path, and the byte tokenizer;
// the tokenizers themselves live in tok_llama2c.c, tok_gpt2.c and
// tok_wordpiece.c, model-shaped sequences in tok_sequence.c.
#include "text/tok_internal.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

void tok_ids_push(tok_ids *v, int id) {
    if (v->n == v->cap) {
        int cap = v->cap ? 2 * v->cap : 64;
        int *p = ls_malloc((size_t)cap * sizeof(int));
        if (v->n) memcpy(p, v->ids, (size_t)v->n * sizeof(int));
        free(v->ids);
        v->ids = p;
        v->cap = cap;
    }
    v->ids[v->n++] = id;
}

// ----------------------------------------------------------------------------
// build / free

tokenizer *tok_load_llama2c(const char *path, int vocab_size) {
    int n = 0;
    l2c_tok *l = l2c_load(path, vocab_size, &n);
    if (!l) return NULL;
    tokenizer *t = ls_calloc(1, sizeof *t);
    t->kind = TOK_LLAMA2C;
    t->vocab_size = n;
    t->bos = 1;   // llama2.c / SentencePiece convention
    t->eos = 2;
    t->pad = t->unk = -1;
    t->add_bos = 1;
    t->l2c = l;
    return t;
}

tokenizer *tok_load_gpt2(const char *encoder_json, const char *vocab_bpe) {
    int n = 0, eot = -1;
    gpt2_tok *g = gpt2_load(encoder_json, vocab_bpe, &n, &eot);
    if (!g) return NULL;
    tokenizer *t = ls_calloc(1, sizeof *t);
    t->kind = TOK_GPT2;
    t->vocab_size = n;
    t->bos = eot;
    t->eos = eot;
    t->pad = t->unk = -1;
    t->gpt2 = g;
    return t;
}

tokenizer *tok_load_wordpiece(const char *vocab_txt, const char *config_json) {
    int n = 0, sp[5];
    wp_tok *w = wp_load(vocab_txt, config_json, &n, sp);
    if (!w) return NULL;
    tokenizer *t = ls_calloc(1, sizeof *t);
    t->kind = TOK_WORDPIECE;
    t->vocab_size = n;
    t->unk = sp[0];
    t->bos = sp[1];   // [CLS]
    t->eos = sp[2];   // [SEP]
    t->pad = sp[3];
    t->wp = w;
    return t;
}

static const char *const ROBERTA_SPECIALS[5] = {"<s>", "</s>", "<unk>", "<pad>", "<mask>"};

tokenizer *tok_load_roberta(const char *vocab_json, const char *merges_txt) {
    int n = 0, eot = -1;
    gpt2_tok *g = gpt2_load(vocab_json, merges_txt, &n, &eot);
    if (!g) return NULL;
    tokenizer *t = ls_calloc(1, sizeof *t);
    t->kind = TOK_ROBERTA;
    t->gpt2 = g;
    t->n_bpe = n;
    t->vocab_size = n;
    for (int k = 0; k < 5; k++) {
        t->special_id[k] = gpt2_find(g, ROBERTA_SPECIALS[k]);
        if (t->special_id[k] < 0) t->special_id[k] = t->vocab_size++;
    }
    t->bos = t->special_id[0];
    t->eos = t->special_id[1];
    t->unk = t->special_id[2];
    t->pad = t->special_id[3];
    return t;
}

// RoBERTa: special tokens matched whole (longest first), BPE in between.
static void roberta_encode(const tokenizer *t, const char *text, tok_ids *out) {
    size_t n = strlen(text), span = 0, i = 0;
    char *buf = ls_malloc(n + 1);
    while (i <= n) {
        int best = -1;
        size_t best_len = 0;
        for (int k = 0; k < 5 && i < n; k++) {
            size_t l = strlen(ROBERTA_SPECIALS[k]);
            if (l > best_len && !strncmp(text + i, ROBERTA_SPECIALS[k], l)) { best = k; best_len = l; }
        }
        if (best < 0 && i < n) { i++; continue; }
        memcpy(buf, text + span, i - span);
        buf[i - span] = 0;
        gpt2_encode(t->gpt2, buf, 0, out);
        if (best >= 0) tok_ids_push(out, t->special_id[best]);
        i += best >= 0 ? best_len : 1;
        span = i;
    }
    free(buf);
}

tokenizer *tok_byte(int with_bos_eos) {
    tokenizer *t = ls_calloc(1, sizeof *t);
    t->kind = TOK_BYTE;
    t->vocab_size = with_bos_eos ? 258 : 256;
    t->bos = with_bos_eos ? 256 : -1;
    t->eos = with_bos_eos ? 257 : -1;
    t->pad = t->unk = -1;
    t->add_bos = with_bos_eos;
    for (int b = 0; b < 256; b++) t->byte_pieces[2 * b] = (char)b;  // the rest stays "" (calloc)
    return t;
}

void tok_free(tokenizer *t) {
    if (!t) return;
    if (t->l2c) l2c_free(t->l2c);
    if (t->gpt2) gpt2_free(t->gpt2);
    if (t->wp) wp_free(t->wp);
    free(t);
}

// ----------------------------------------------------------------------------
// loading by path

static char *dir_of(const char *path) {
    if (ls_is_dir(path)) return ls_strdup(path);
    char *d = ls_strdup(path);
    char *slash = strrchr(d, '/');
    if (slash) *slash = 0;
    else snprintf(d, strlen(d) + 1, ".");
    return d;
}

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

// WordPiece from vocab.txt in dir, with tokenizer_config.json if it is there.
static tokenizer *load_wordpiece_dir(const char *dir) {
    char *vocab = ls_path_join(dir, "vocab.txt"), *cfg = ls_path_join(dir, "tokenizer_config.json");
    tokenizer *t = tok_load_wordpiece(vocab, ls_exists(cfg) ? cfg : NULL);
    free(vocab);
    free(cfg);
    return t;
}

// The string value of `key` in dir/name (a JSON object) into out ("" when the
// file or the key is absent). Returns 0, or -1 with ls_error() for a file
// that is not a JSON object or a key that is not a string.
static int json_string_key(const char *dir, const char *name, const char *key, char *out, size_t size) {
    out[0] = 0;
    char *path = ls_path_join(dir, name);
    int rc = 0;
    if (ls_exists(path)) {
        size_t n;
        char *text = ls_read_file_max(path, &n, LS_READ_SMALL_MAX);
        cJSON *root = text ? cJSON_ParseWithLength(text, n) : NULL;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
        if (!text) rc = -1;
        else if (!cJSON_IsObject(root)) rc = ls_fail("%s: expected a JSON object, found %s", path,
                                                     root ? "another JSON value" : "invalid JSON");
        else if (v && !cJSON_IsString(v)) rc = ls_fail("%s: key \"%s\": expected a string, found another JSON value",
                                                       path, key);
        else if (v) snprintf(out, size, "%s", v->valuestring);
        cJSON_Delete(root);
        free(text);
    }
    free(path);
    return rc;
}

// HF's byte-level BPE directory (vocab.json + merges.txt): RoBERTa or GPT-2.
static tokenizer *load_hf_bpe_dir(const char *dir) {
    char cls[128], type[128];
    if (json_string_key(dir, "tokenizer_config.json", "tokenizer_class", cls, sizeof cls) ||
        json_string_key(dir, "config.json", "model_type", type, sizeof type))
        return NULL;
    char *vocab = ls_path_join(dir, "vocab.json"), *merges = ls_path_join(dir, "merges.txt");
    int roberta = !strncmp(cls, "Roberta", 7) || !strcmp(type, "roberta");
    tokenizer *t = roberta ? tok_load_roberta(vocab, merges) : tok_load_gpt2(vocab, merges);
    free(vocab);
    free(merges);
    return t;
}

tokenizer *tok_load_path(const char *path, int vocab_size) {
    if (!ls_exists(path)) {
        ls_fail("%s: tokenizer: no such file or directory", path);
        return NULL;
    }
    if (ls_is_dir(path)) {
        char *vocab = ls_path_join(path, "vocab.txt"), *enc = ls_path_join(path, "encoder.json");
        char *hf = ls_path_join(path, "vocab.json");
        tokenizer *t = NULL;
        if (ls_exists(vocab)) {
            t = load_wordpiece_dir(path);
        } else if (ls_exists(enc)) {
            char *bpe = ls_path_join(path, "vocab.bpe");
            t = tok_load_gpt2(enc, bpe);
            free(bpe);
        } else if (ls_exists(hf)) {
            t = load_hf_bpe_dir(path);
        } else {
            ls_fail("%s: expected a tokenizer directory (vocab.txt, encoder.json + vocab.bpe, or vocab.json + "
                    "merges.txt), found none of them", path);
        }
        free(vocab);
        free(enc);
        free(hf);
        return t;
    }
    if (gguf_is_gguf(path)) return tok_load_gguf(path, NULL);
    if (!strcmp(base_name(path), "vocab.txt")) {
        char *dir = dir_of(path);
        tokenizer *t = load_wordpiece_dir(dir);
        free(dir);
        return t;
    }
    return tok_load_llama2c(path, vocab_size);
}

// vocab_size from a llama2.c checkpoint header (seven int32; the sixth is
// vocab_size, negative when the classifier is not shared), 0 if unreadable.
static int llama2c_header_vocab(const char *path) {
    FILE *fp = ls_is_dir(path) ? NULL : fopen(path, "rb");
    int32_t h[7];
    int ok = fp && fread(h, sizeof h, 1, fp) == 1;
    if (fp) fclose(fp);
    if (!ok || h[5] == INT32_MIN) return 0;
    int v = h[5] < 0 ? -h[5] : h[5];
    return v <= (1 << 24) ? v : 0;
}

tokenizer *tok_load_for_model(const char *model_path, const char *spec, int vocab_size, char **used_path) {
    tokenizer *t = NULL;
    char *path = NULL;
    if (spec && !strcmp(spec, "bytes")) {
        t = tok_byte(vocab_size >= 258);   // BOS 256 / EOS 257 when the model has room for them
        path = ls_strdup("bytes");
    } else if (spec && spec[0]) {
        path = ls_strdup(spec);
        t = tok_load_path(path, vocab_size);
    } else if (!ls_exists(model_path)) {
        ls_fail("%s: model: no such file or directory", model_path);
        return NULL;
    } else if (gguf_is_gguf(model_path)) {
        path = ls_strdup(model_path); // a GGUF model carries its tokenizer
        t = tok_load_gguf(path, NULL);
    } else {
        int v = vocab_size > 0 ? vocab_size : llama2c_header_vocab(model_path);
        char *dir = dir_of(model_path), name[64];
        snprintf(name, sizeof name, "tok%d.bin", v);
        const char *cands[] = {name, "tokenizer.bin", "vocab.txt", "encoder.json", "vocab.json"};
        for (int i = v > 0 ? 0 : 1; i < 5 && !path; i++) {
            char *p = ls_path_join(dir, cands[i]);
            if (ls_exists(p)) path = i >= 2 ? ls_strdup(dir) : ls_strdup(p);
            free(p);
        }
        free(dir);
        if (!path) {
            ls_fail("%s: no tokenizer beside the model (expected tok<V>.bin, tokenizer.bin, vocab.txt, "
                    "encoder.json + vocab.bpe, or vocab.json + merges.txt); pass --tokenizer", model_path);
            return NULL;
        }
        t = tok_load_path(path, v);
    }
    if (t && used_path) *used_path = path;
    else free(path);
    return t;
}

// ----------------------------------------------------------------------------
// properties

tok_kind tok_type(const tokenizer *t) { return t->kind; }
int tok_vocab_size(const tokenizer *t) { return t->vocab_size; }
int tok_bos(const tokenizer *t) { return t->bos; }
int tok_eos(const tokenizer *t) { return t->eos; }
int tok_pad(const tokenizer *t) { return t->pad; }
int tok_unk(const tokenizer *t) { return t->unk; }

// ----------------------------------------------------------------------------
// encode / decode

static int *encode(const tokenizer *t, const char *text, int bos, int eos, int start, int *n_tokens) {
    ls_assert(text != NULL);
    tok_ids v = {0};
    switch (t->kind) {
    case TOK_LLAMA2C:
        if (l2c_is_spm(t->l2c)) { // a GGUF SentencePiece vocabulary (tok_gguf.c)
            if (bos && t->bos >= 0) tok_ids_push(&v, t->bos);
            l2c_encode_spm(t->l2c, text, start, &v);
            break;
        }
        // BOS takes part in run.c's merge loop, so the llama2c encoder adds it.
        l2c_encode(t->l2c, text, bos && t->bos >= 0, start, &v);
        break;
    case TOK_GPT2:
        if (bos && t->bos >= 0) tok_ids_push(&v, t->bos);
        gpt2_encode(t->gpt2, text, 1, &v);
        break;
    case TOK_WORDPIECE:
        if (bos && t->bos >= 0) tok_ids_push(&v, t->bos);
        wp_encode(t->wp, text, &v);
        break;
    case TOK_ROBERTA:
        if (bos && t->bos >= 0) tok_ids_push(&v, t->bos);
        roberta_encode(t, text, &v);
        break;
    case TOK_BYTE:
        if (bos && t->bos >= 0) tok_ids_push(&v, t->bos);
        for (const unsigned char *p = (const unsigned char *)text; *p; p++) tok_ids_push(&v, *p);
        break;
    }
    if (eos && t->eos >= 0) tok_ids_push(&v, t->eos);
    if (!v.ids) v.ids = ls_malloc(sizeof(int));
    *n_tokens = v.n;
    return v.ids;
}

int *tok_encode(const tokenizer *t, const char *text, int bos, int eos, int *n_tokens) {
    return encode(t, text, bos, eos, 1, n_tokens);
}

int *tok_encode_continuation(const tokenizer *t, const char *text, int *n_tokens) {
    return encode(t, text, 0, 0, 0, n_tokens);
}

const char *tok_decode_piece(const tokenizer *t, int prev, int id, size_t *len) {
    size_t dummy;
    if (!len) len = &dummy;
    if (id < 0 || id >= t->vocab_size) { *len = 0; return ""; }
    switch (t->kind) {
    case TOK_LLAMA2C: return l2c_decode(t->l2c, prev, id, len);
    case TOK_GPT2: return gpt2_piece(t->gpt2, id, len);
    case TOK_WORDPIECE: return wp_decode(t->wp, prev, id, len);
    case TOK_ROBERTA:
        if (id < t->n_bpe) return gpt2_piece(t->gpt2, id, len);
        for (int k = 0; k < 5; k++)
            if (t->special_id[k] == id) { *len = strlen(ROBERTA_SPECIALS[k]); return ROBERTA_SPECIALS[k]; }
        *len = 0;
        return "";
    case TOK_BYTE: break;
    }
    *len = id < 256 ? 1 : 0;
    return &t->byte_pieces[2 * id];
}

char *tok_decode(const tokenizer *t, int prev, const int *ids, int n, size_t *len) {
    size_t total = 0, cap = 64;
    char *out = ls_malloc(cap);
    for (int i = 0; i < n; i++) {
        size_t k;
        const char *p = tok_decode_piece(t, prev, ids[i], &k);
        if (total + k + 1 > cap) {
            while (total + k + 1 > cap) cap *= 2;
            char *q = ls_malloc(cap);
            memcpy(q, out, total);
            free(out);
            out = q;
        }
        memcpy(out + total, p, k);
        total += k;
        prev = ids[i];
    }
    out[total] = 0;
    if (len) *len = total;
    return out;
}

const char *tok_piece(const tokenizer *t, int id) {
    if (id < 0 || id >= t->vocab_size) return NULL;
    switch (t->kind) {
    case TOK_LLAMA2C: return l2c_piece(t->l2c, id);
    case TOK_GPT2: return gpt2_piece(t->gpt2, id, NULL);
    case TOK_WORDPIECE: return wp_piece(t->wp, id);
    case TOK_ROBERTA: {
        size_t len;
        return tok_decode_piece(t, -1, id, &len);
    }
    case TOK_BYTE: break;
    }
    return &t->byte_pieces[2 * id];
}
