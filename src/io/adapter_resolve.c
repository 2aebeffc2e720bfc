// adapter_resolve.c: a module name -> an adapter's site and rows, for any PEFT
// layout (io/adapter.h, adapter_resolve_any), and DoRA's ΔW (adapter_dora_delta).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "io/adapter.h"

// ----------------------------------------------------------------------------
// sites by name, for any layout

void adapter_set_heads(lora_adapter *a, int n_heads, int n_kv_heads, int qkv_per_head) {
    a->qkv_per_head = qkv_per_head;
    a->n_heads = n_heads;
    a->n_kv_heads = n_kv_heads > 0 ? n_kv_heads : n_heads;
}

// 1 if the dot-components of `want` appear in order among those of
// "<stack>.<path>", the last ones equal ("decoder.EncDecAttention.q").
static int name_matches(const adapter_site *m, const char *want) {
    char key[420];
    snprintf(key, sizeof key, "%s%s%s", m->stack, *m->stack ? "." : "", m->path);
    const char *wl = strrchr(want, '.'), *kl = strrchr(key, '.');
    if (strcmp(wl ? wl + 1 : want, kl ? kl + 1 : key)) return 0;
    const char *k = key;
    for (const char *w = want; *w;) {
        size_t n = strcspn(w, ".");
        for (;;) {
            size_t kn = strcspn(k, ".");
            if (kn == n && !strncmp(k, w, n)) {
                k += kn + (k[kn] == '.');
                break;
            }
            if (!k[kn]) return 0;
            k += kn + 1;
        }
        w += n + (w[n] == '.');
    }
    return 1;
}

// The site at `layer` that `want` names (its path exactly, else by
// name_matches): the first one found, *n_found how many (the caller refuses
// several); `list` (may be NULL) gets their "<stack>.<path>" names.
static const adapter_site *find_named(const lora_adapter *a, int layer, const char *want, int *n_found, char *list,
                                      size_t size) {
    const adapter_site *hit = NULL;
    *n_found = 0;
    for (int pass = 0; pass < 2 && !*n_found; pass++)
        for (int i = 0; i < a->n_modules; i++) {
            const adapter_site *m = &a->modules[i];
            if (m->layer != layer || (pass == 0 ? strcmp(m->path, want) : !name_matches(m, want))) continue;
            if (!hit) hit = m;
            ++*n_found;
            size_t used = list ? strlen(list) : 0;
            if (list && used + strlen(m->stack) + strlen(m->path) + 4 < size)
                snprintf(list + used, size - used, "%s%s%s%s", used ? ", " : "", m->stack, *m->stack ? "." : "",
                         m->path);
        }
    return hit;
}

// lorascope's short names and the module names they stand for, tried in
// order; `block` >= 0: that row block of a fused module (FUSED_QKV: q, k, v
// sized by heads; FUSED_HALVES: two equal halves).
enum { WHOLE = -1 };
enum { FUSED_NONE = 0, FUSED_QKV, FUSED_HALVES, FUSED_INTERLEAVED };
typedef struct {
    const char *file_name;
    int fused;
} name_form;

static const struct {
    const char *short_name;
    int block;
    name_form forms[12];
} SHORT_NAMES[] = {
    {"q", 0, {{"q_proj", FUSED_NONE}, {"query", FUSED_NONE}, {"q", FUSED_NONE}, {"Wq", FUSED_NONE}, {"c_attn", FUSED_QKV}, {"qkv_proj", FUSED_QKV}, {"Wqkv", FUSED_QKV},
              {"query_key_value", FUSED_INTERLEAVED}}},
    {"k", 1, {{"k_proj", FUSED_NONE}, {"key", FUSED_NONE}, {"k", FUSED_NONE}, {"Wk", FUSED_NONE}, {"c_attn", FUSED_QKV}, {"qkv_proj", FUSED_QKV}, {"Wqkv", FUSED_QKV},
              {"query_key_value", FUSED_INTERLEAVED}}},
    {"v", 2, {{"v_proj", FUSED_NONE}, {"value", FUSED_NONE}, {"v", FUSED_NONE}, {"Wv", FUSED_NONE}, {"c_attn", FUSED_QKV}, {"qkv_proj", FUSED_QKV}, {"Wqkv", FUSED_QKV},
              {"query_key_value", FUSED_INTERLEAVED}}},
    {"o", WHOLE, {{"o_proj", FUSED_NONE}, {"out_proj", FUSED_NONE}, {"attention.output.dense", FUSED_NONE}, {"attention.dense", FUSED_NONE}, {"self_attention.dense", FUSED_NONE},
                  {"attn.c_proj", FUSED_NONE}, {"o", FUSED_NONE}, {"Wo", FUSED_NONE}}},
    {"gate", 0, {{"gate_proj", FUSED_NONE}, {"w1", FUSED_NONE}, {"gate_up_proj", FUSED_HALVES}}},
    {"up", 1, {{"up_proj", FUSED_NONE}, {"w3", FUSED_NONE}, {"gate_up_proj", FUSED_HALVES}, {"fc1", FUSED_NONE}, {"c_fc", FUSED_NONE}, {"dense_h_to_4h", FUSED_NONE},
               {"intermediate.dense", FUSED_NONE}, {"wi", FUSED_NONE}}},
    {"fc", WHOLE, {{"fc1", FUSED_NONE}, {"c_fc", FUSED_NONE}, {"dense_h_to_4h", FUSED_NONE}, {"intermediate.dense", FUSED_NONE}, {"wi", FUSED_NONE}, {"up_proj", FUSED_NONE}}},
    {"down", WHOLE, {{"down_proj", FUSED_NONE}, {"w2", FUSED_NONE}, {"fc2", FUSED_NONE}, {"mlp.c_proj", FUSED_NONE}, {"dense_4h_to_h", FUSED_NONE}, {"output.dense", FUSED_NONE}, {"wo", FUSED_NONE}}},
};

// Rows of block `block` of fused site m: q, k, v by heads, or halves.
static int fused_rows(const lora_adapter *a, const adapter_site *m, int fused, int block, adapter_rows *sel) {
    const char *dir = a->dir ? a->dir : "adapter";
    int *row0 = &sel->row0, *rows = &sel->rows;
    if (fused == FUSED_INTERLEAVED && a->qkv_per_head && a->n_heads > 0 && m->d_out % (3 * a->n_heads) == 0) {
        int hd = m->d_out / (3 * a->n_heads); // GPT-NeoX: view(..., heads, 3 * hd), then q, k, v = chunks of hd
        *sel = (adapter_rows){block * hd, hd, a->n_heads, 3 * hd};
        return 0;
    }
    if (fused == FUSED_INTERLEAVED)
        return ls_fail("%s: %s at layer %d interleaves q, k and v per head: expected --base of a GPT-NeoX model "
                       "(model_type gpt_neox, num_attention_heads) or --module %s (the fused map whole)", dir,
                       m->path, m->layer, strrchr(m->name, '.') + 1);
    if (fused == FUSED_HALVES) {
        if (m->d_out % 2) return ls_fail("%s: fused %s has %d rows, not even", dir, m->name, m->d_out);
        *rows = m->d_out / 2;
        *row0 = block * *rows;
        return 0;
    }
    int nh = a->n_heads, nkv = a->n_kv_heads;
    if (nh == 0 && !strcmp(strrchr(m->path, '.') ? strrchr(m->path, '.') + 1 : m->path, "c_attn")) nh = nkv = 1;
    if (nh == 0)
        return ls_fail("%s: splitting the fused %s into q, k, v needs the heads of the base (expected --base with a "
                       "config.json giving num_attention_heads and num_key_value_heads)", dir, m->name);
    if (m->d_out % (nh + 2 * nkv))
        return ls_fail("%s: fused %s has %d rows, not a multiple of heads + 2 kv heads = %d", dir, m->name, m->d_out,
                       nh + 2 * nkv);
    int hd = m->d_out / (nh + 2 * nkv);
    int q = nh * hd, kv = nkv * hd;
    *row0 = block == 0 ? 0 : block == 1 ? q : q + kv;
    *rows = block == 0 ? q : kv;
    return 0;
}

static const adapter_site *resolve_generic(const lora_adapter *a, int layer, const char *name, adapter_rows *sel) {
    const char *dir = a->dir ? a->dir : "adapter";
    int n;
    char list[400] = {0};
    const adapter_site *m = find_named(a, layer, name, &n, list, sizeof list);
    int fused = FUSED_NONE, block = WHOLE;
    for (size_t s = 0; !n && s < sizeof SHORT_NAMES / sizeof SHORT_NAMES[0]; s++) {
        if (strcmp(SHORT_NAMES[s].short_name, name)) continue;
        for (int f = 0; f < 12 && SHORT_NAMES[s].forms[f].file_name && !n; f++) {
            m = find_named(a, layer, SHORT_NAMES[s].forms[f].file_name, &n, list, sizeof list);
            fused = SHORT_NAMES[s].forms[f].fused;
            block = fused ? SHORT_NAMES[s].block : WHOLE;
        }
    }
    if (n > 1) {
        ls_fail("%s: module '%s' is ambiguous at layer %d (expected one of %s, or enough of it to tell them apart)",
                dir, name, layer, list);
        return NULL;
    }
    if (!m) {
        list[0] = 0;
        for (int i = 0; i < a->n_modules; i++)
            if (a->modules[i].layer == layer && strlen(list) + strlen(a->modules[i].path) + 3 < sizeof list)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", *list ? ", " : "",
                         a->modules[i].path);
        ls_fail("%s: no LoRA module '%s' at layer %d (expected one of: %s)", dir, name, layer,
                *list ? list : "none at this layer");
        return NULL;
    }
    *sel = (adapter_rows){0, m->d_out, 1, 0};
    if (fused && fused_rows(a, m, fused, block, sel)) return NULL;
    return m;
}

const adapter_site *adapter_resolve_any(const lora_adapter *a, int layer, const char *name, adapter_rows *sel) {
    *sel = (adapter_rows){0, 0, 1, 0};
    if (!a->generic && arch_module_by_name(a->family, name))
        return adapter_resolve(a, layer, name, &sel->row0, &sel->rows);
    const adapter_site *m = resolve_generic(a, layer, name, sel);
    // A family's adapter: a name neither the family nor the file knows gets the family's message.
    return m || a->generic ? m : adapter_resolve(a, layer, name, &sel->row0, &sel->rows);
}

// ----------------------------------------------------------------------------
// DoRA

double *adapter_dora_delta(const adapter_site *m, const float *W, int row0, int rows) {
    double *out = ls_malloc(sizeof(double) * (size_t)rows * m->d_in);
    double *v = ls_malloc(sizeof(double) * (size_t)m->d_in);
    for (int i = 0; i < rows; i++) {
        int row = row0 + i;
        const float *b = m->B + (size_t)row * m->r;
        const float *w = W + (size_t)row * m->d_in;
        double norm2 = 0;
        for (int k = 0; k < m->d_in; k++) {
            double acc = 0;
            for (int j = 0; j < m->r; j++) acc += (double)b[j] * m->A[(size_t)j * m->d_in + k];
            v[k] = (double)w[k] + (double)m->scale * acc; // W + s·B·A, row `row`
            norm2 += v[k] * v[k];
        }
        double f = (double)m->magnitude[row] / sqrt(norm2);
        for (int k = 0; k < m->d_in; k++) out[(size_t)i * m->d_in + k] = f * v[k] - (double)w[k];
    }
    free(v);
    return out;
}
