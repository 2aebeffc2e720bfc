// import: PEFT adapters folded into a model's weights; trained tensors and
// bottleneck adapters of lorascope's own runs.
#include "train/import.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "engine/adapters.h"
#include "engine/lora.h"
#include "engine/prefix.h"
#include "engine/prompt.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "train/train.h"

static void view_name(const ls_model *m, int layer, const char *path, char *out, size_t size) {
    snprintf(out, size, "%s.%d.%s.weight", arch_family_of(m->cfg.family)->layer_prefix, layer, path);
}

int import_adapter(ls_model *m, const lora_adapter *a) {
    if (a->generic)
        return ls_fail("%s: module %s: not a layout of a lorascope model family; such adapters are read by "
                       "`lorascope analyze` only", a->dir ? a->dir : "adapter", a->modules[0].name);
    if (a->family != m->cfg.family)
        return ls_fail("%s: adapter is for a %s model, the base is %s", a->dir ? a->dir : "adapter",
                       ckpt_family_name(a->family), ckpt_family_name(m->cfg.family));
    for (int i = 0; i < a->n_modules; i++) {
        const adapter_site *mod = &a->modules[i];
        char name[320];
        view_name(m, mod->layer, mod->path, name, sizeof name);
        const ls_param_view *v = model_find_view(m, name);
        if (!v)
            return ls_fail("%s: module %d.%s: the base model has no weight '%s' (%d layers)",
                           a->dir ? a->dir : "adapter", mod->layer, mod->path, name, m->L);
        if (v->shape[0] != mod->d_out || v->shape[1] != mod->d_in)
            return ls_fail("%s: module %d.%s: expected ΔW of shape (%lld, %lld) like the base weight, found (%d, %d)",
                           a->dir ? a->dir : "adapter", mod->layer, mod->path, (long long)v->shape[0],
                           (long long)v->shape[1], mod->d_out, mod->d_in);
    }
    // an encoder's head (PEFT's modules_to_save): checked, then copied, before any merge
    if (a->n_saved && model_head_from_adapter(m, a)) return -1;
    for (int i = 0; i < a->n_modules; i++) {
        const adapter_site *mod = &a->modules[i];
        char name[320];
        view_name(m, mod->layer, mod->path, name, sizeof name);
        const ls_param_view *v = model_find_view(m, name);
        float *w = ls_malloc(v->numel * sizeof(float));
        model_get_tensor(m, name, w);
        lora_merge_into(w, mod->B, mod->A, mod->d_out, mod->d_in, mod->r, mod->scale);
        model_set_tensor(m, name, w);
        free(w);
    }
    return 0;
}

// Checks every tensor of an open lorascope-canonical file against the model.
static int check_params(const ls_model *m, const st_file *f) {
    const char *fam = st_metadata(f, "family");
    if (!fam || strcmp(fam, ckpt_family_name(m->cfg.family)))
        return ls_fail("%s: metadata 'family': expected '%s' (the base model's), found '%s'", f->path,
                       ckpt_family_name(m->cfg.family), fam ? fam : "none");
    for (int i = 0; i < f->n_tensors; i++) {
        const st_tensor *t = &f->tensors[i];
        const ls_param_view *v = model_find_view(m, t->name);
        if (!v) return ls_fail("%s: tensor '%s': expected a tensor of the %s base model, found none", f->path, t->name,
                               ckpt_family_name(m->cfg.family));
        if (t->ndim != v->ndim || t->numel != (int64_t)v->numel || t->shape[0] != v->shape[0] || !st_dtype_is_float(t->dtype))
            return ls_fail("%s: tensor '%s': expected float shape (%lld, %lld) as the base model's, found %d dims, "
                           "%lld values", f->path, t->name, (long long)v->shape[0], (long long)v->shape[1], t->ndim,
                           (long long)t->numel);
    }
    return 0;
}

int import_params(ls_model *m, const char *path) {
    st_file f;
    if (st_open(&f, path)) return -1;
    const char *fmt = st_metadata(&f, "format");
    int rc = fmt && !strcmp(fmt, "lorascope-canonical")
                 ? check_params(m, &f)
                 : ls_fail("%s: metadata 'format': expected 'lorascope-canonical', found '%s'", path, fmt ? fmt : "none");
    for (int i = 0; i < f.n_tensors && !rc; i++) {
        float *x = st_load_float(&f, &f.tensors[i]);
        rc = ckpt_check_finite(path, f.tensors[i].name, x, f.tensors[i].numel);
        if (!rc) model_set_tensor(m, f.tensors[i].name, x);
        free(x);
    }
    if (!rc && arch_is_encoder(m->cfg.family)) m->head_initialised = 0; // the run's trained head
    st_close(&f);
    return rc;
}

int import_adapters(ls_model *m, const char *path) {
    if (m->adapters) return ls_fail("%s: expected a model without adapters attached, found some", path);
    ls_adapters *ad = ls_malloc(sizeof *ad);
    if (adapters_load(ad, m, arch_family_of(m->cfg.family)->layer_prefix, ckpt_family_name(m->cfg.family), path)) {
        free(ad);
        return -1;
    }
    m->owns_adapters = 1;
    // an encoder's classifier, trained beside them, is in head.safetensors next to the file
    const char *slash = strrchr(path, '/');
    int n = slash ? (slash == path ? 1 : (int)(slash - path)) : 1;
    char *dir = ls_strdup(slash ? path : ".");
    dir[n] = '\0';
    char *head = ls_path_join(dir, "head.safetensors");
    int rc = ls_exists(head) ? import_params(m, head) : 0;
    free(head);
    free(dir);
    return rc;
}

// adapter_config.json's number `key`, or -1 when it is missing.
static int config_int(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsNumber(v) ? v->valueint : -1;
}

// 1 when dir's adapter_config.json says peft_type `type`.
static int has_peft_type(const char *dir, const char *type) {
    char *cfg = ls_path_join(dir, ADAPTER_CONFIG_FILE);
    char *text = ls_exists(cfg) ? ls_read_file(cfg, NULL) : NULL;
    cJSON *o = text ? cJSON_Parse(text) : NULL;
    const cJSON *t = cJSON_GetObjectItem(o, "peft_type");
    int yes = cJSON_IsString(t) && !strcmp(t->valuestring, type);
    cJSON_Delete(o);
    free(text);
    free(cfg);
    return yes;
}

// Checks the config against the model; *P gets num_virtual_tokens.
static int check_prefix_config(const ls_model *m, const char *path, int *P) {
    char *text = ls_read_file(path, NULL);
    cJSON *o = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!o) return ls_fail("%s: expected a JSON object (PEFT's adapter_config.json)", path);
    const cJSON *proj = cJSON_GetObjectItem(o, "prefix_projection");
    int L = config_int(o, "num_layers"), dim = config_int(o, "token_dim"), rc = 0;
    *P = config_int(o, "num_virtual_tokens");
    if (cJSON_IsTrue(proj))
        rc = ls_fail("%s: prefix_projection: expected false (the prefix itself), found true", path);
    else if (L != m->L) rc = ls_fail("%s: num_layers: expected %d (the model's), found %d", path, m->L, L);
    else if (dim != m->NKV * m->HS)
        rc = ls_fail("%s: token_dim: expected %d (the model's key width), found %d", path, m->NKV * m->HS, dim);
    else if (*P < 1 || *P > 4096) rc = ls_fail("%s: num_virtual_tokens: expected 1..4096, found %d", path, *P);
    cJSON_Delete(o);
    return rc;
}

// dir/adapter_model.safetensors' `prompt_embeddings` as float (P, width), host
// memory (free it), checked finite; NULL with ls_error() naming the file.
static float *load_prompt_embeddings(const char *st, int P, int64_t width) {
    st_file f;
    if (st_open(&f, st)) return NULL;
    const st_tensor *t = st_find(&f, "prompt_embeddings");
    float *emb = NULL;
    if (!t || t->ndim != 2 || t->shape[0] != P || t->shape[1] != width || !st_dtype_is_float(t->dtype)) {
        ls_fail("%s: tensor 'prompt_embeddings': expected float shape (%d, %lld), found %s", st, P, (long long)width,
                t ? "another" : "none");
    } else {
        emb = st_load_float(&f, t);
        if (ckpt_check_finite(st, "prompt_embeddings", emb, t->numel)) {
            free(emb);
            emb = NULL;
        }
    }
    st_close(&f);
    return emb;
}

int import_prefix(ls_model *m, const char *dir) {
    if (m->prefix) return ls_fail("%s: expected a model without a prefix attached, found one", dir);
    char *cfg = ls_path_join(dir, ADAPTER_CONFIG_FILE), *st = ls_path_join(dir, ADAPTER_WEIGHTS_FILE);
    int P = 0, rc = check_prefix_config(m, cfg, &P);
    ls_prefix *pf = ls_malloc(sizeof *pf);
    if (!rc && prefix_build(pf, m, P, 0)) rc = ls_fail_prefix("%s", dir);
    else if (!rc) {
        float *emb = load_prompt_embeddings(st, P, (int64_t)(pf->n_params / (size_t)P));
        if (emb) prefix_peft_layout(pf, pf->params, emb, 0);
        else rc = -1;
        free(emb);
        if (rc) prefix_free(pf, m);
    }
    if (rc) free(pf);
    else m->owns_prefix = 1;
    char *head = ls_path_join(dir, "head.safetensors"); // an encoder's classifier, trained beside it
    if (!rc && ls_exists(head)) rc = import_params(m, head);
    free(head);
    free(cfg);
    free(st);
    return rc;
}

// Checks a PROMPT_TUNING config against the model; *P gets num_virtual_tokens.
static int check_prompt_config(const ls_model *m, const char *path, int *P) {
    char *text = ls_read_file(path, NULL);
    cJSON *o = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!o) return ls_fail("%s: expected a JSON object (PEFT's adapter_config.json)", path);
    int dim = config_int(o, "token_dim"), subs = config_int(o, "num_transformer_submodules"), rc = 0;
    *P = config_int(o, "num_virtual_tokens");
    if (dim != m->C) rc = ls_fail("%s: token_dim: expected %d (the model's width), found %d", path, m->C, dim);
    else if (subs != -1 && subs != 1)
        rc = ls_fail("%s: num_transformer_submodules: expected 1 (a decoder), found %d", path, subs);
    else if (*P < 1 || *P > 4096) rc = ls_fail("%s: num_virtual_tokens: expected 1..4096, found %d", path, *P);
    cJSON_Delete(o);
    return rc;
}

int import_prompt(ls_model *m, const char *dir) {
    if (m->prompt) return ls_fail("%s: expected a model without virtual tokens attached, found some", dir);
    char *cfg = ls_path_join(dir, ADAPTER_CONFIG_FILE), *st = ls_path_join(dir, ADAPTER_WEIGHTS_FILE);
    int P = 0, rc = check_prompt_config(m, cfg, &P);
    ls_prompt *pr = ls_malloc(sizeof *pr);
    if (!rc && prompt_build(pr, m, P, 0)) rc = ls_fail_prefix("%s", dir);
    else if (!rc) {
        float *emb = load_prompt_embeddings(st, P, m->C); // PEFT's layout is the engine's
        if (emb) pr->be->upload(pr->params, emb, pr->n_params);
        else rc = -1;
        free(emb);
        if (rc) prompt_free(pr, m);
    }
    if (rc) free(pr);
    else m->owns_prompt = 1;
    char *head = ls_path_join(dir, "head.safetensors"); // an encoder's classifier, trained beside them
    if (!rc && ls_exists(head)) rc = import_params(m, head);
    free(head);
    free(cfg);
    free(st);
    return rc;
}

// A file: lorascope's adapters, or tensors in lorascope's canonical format.
static int import_file(ls_model *m, const char *path) {
    st_file f;
    if (st_open(&f, path)) return -1;
    const char *fmt = st_metadata(&f, "format");
    int adapters = fmt && !strcmp(fmt, "lorascope-adapters");
    st_close(&f);
    return adapters ? import_adapters(m, path) : import_params(m, path);
}

int import_adapter_dir(ls_model *m, const char *dir) {
    // a run of full fine-tuning, FT^Top2 or BitFit: its tensors in lorascope's format
    static const char *const params[] = {RUN_FULL_DIR "/" RUN_PARAMS_FILE, RUN_BITFIT_DIR "/" RUN_PARAMS_FILE};
    char *adapter_dir = ls_path_join(dir, RUN_ADAPTER_DIR);
    char *ad_path = ls_path_join(dir, RUN_ADAPTERS_DIR "/" RUN_PARAMS_FILE);
    if (!ls_is_dir(adapter_dir) && ls_exists(ad_path)) { // Adapter^H / ^L: attached, not merged
        free(adapter_dir);
        int rc = import_adapters(m, ad_path);
        free(ad_path);
        return rc;
    }
    free(ad_path);
    char *pf_dir = ls_path_join(dir, RUN_PREFIX_DIR);
    int prefix = !ls_is_dir(adapter_dir) && has_peft_type(pf_dir, "PREFIX_TUNING");
    if (prefix || has_peft_type(dir, "PREFIX_TUNING")) { // prefix-layer: attached, not merged
        free(adapter_dir);
        int rc = import_prefix(m, prefix ? pf_dir : dir);
        free(pf_dir);
        return rc;
    }
    free(pf_dir);
    char *pr_dir = ls_path_join(dir, RUN_PROMPT_DIR);
    int prompt = !ls_is_dir(adapter_dir) && has_peft_type(pr_dir, "PROMPT_TUNING");
    if (prompt || has_peft_type(dir, "PROMPT_TUNING")) { // prefix-embed: attached, not merged
        free(adapter_dir);
        int rc = import_prompt(m, prompt ? pr_dir : dir);
        free(pr_dir);
        return rc;
    }
    free(pr_dir);
    for (int i = 0; i < 2 && !ls_is_dir(adapter_dir); i++) {
        char *p = ls_path_join(dir, params[i]);
        if (ls_exists(p)) {
            free(adapter_dir);
            int rc = import_params(m, p);
            free(p);
            return rc;
        }
        free(p);
    }
    free(adapter_dir);
    if (ls_is_dir(dir) == 0 && ls_exists(dir)) return import_file(m, dir);
    char *cfg = ls_path_join(dir, ADAPTER_CONFIG_FILE);
    char *use = ls_exists(cfg) ? ls_strdup(dir) : ls_path_join(dir, RUN_ADAPTER_DIR);
    free(cfg);
    lora_adapter a;
    int rc = adapter_load(&a, use);
    if (!rc) {
        rc = import_adapter(m, &a);
        adapter_free(&a);
    }
    free(use);
    return rc;
}

