#include "io/hf_weights.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "io/checkpoint.h"

#define HF_MAX_JSON (64u << 20) // config.json, model.safetensors.index.json

// ----------------------------------------------------------------------------
// config.json: the heads

static int json_int(const cJSON *root, const char *const *keys, int n) {
    for (int i = 0; i < n; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, keys[i]);
        if (cJSON_IsNumber(v) && v->valuedouble >= 1 && v->valuedouble <= 1e6) return (int)v->valuedouble;
    }
    return 0;
}

static int read_heads(hf_weights *w, const char *dir) {
    char *path = ls_path_join(dir, "config.json");
    int rc = 0;
    if (ls_exists(path)) {
        char *text = ls_read_file_max(path, NULL, HF_MAX_JSON);
        cJSON *root = text ? cJSON_Parse(text) : NULL;
        if (!text) rc = -1;
        else if (!cJSON_IsObject(root)) rc = ls_fail("%s: invalid JSON (expected an object)", path);
        else {
            const char *heads[] = {"num_attention_heads", "n_head", "num_heads", "n_heads"};
            const char *kv[] = {"num_key_value_heads", "n_kv_heads", "num_kv_heads"};
            w->n_heads = json_int(root, heads, 4);
            w->n_kv_heads = json_int(root, kv, 3);
            if (!w->n_kv_heads) w->n_kv_heads = w->n_heads;
            const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
            w->qkv_per_head = cJSON_IsString(mt) && !strcmp(mt->valuestring, "gpt_neox");
        }
        cJSON_Delete(root);
        free(text);
    }
    free(path);
    return rc;
}

// ----------------------------------------------------------------------------
// files

static int add_file(hf_weights *w, const char *path) {
    w->files = realloc(w->files, sizeof(st_file) * (size_t)(w->n_files + 1));
    ls_assert(w->files != NULL);
    if (st_open(&w->files[w->n_files], path)) return -1;
    w->n_files++;
    return 0;
}

// model.safetensors.index.json: every shard it names exists and holds its tensors.
static int open_index(hf_weights *w, const char *dir, const char *index_path) {
    char *text = ls_read_file_max(index_path, NULL, HF_MAX_JSON);
    if (!text) return -1;
    cJSON *root = cJSON_Parse(text);
    free(text);
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    int rc = cJSON_IsObject(map) ? 0 : ls_fail("%s: field 'weight_map': expected an object", index_path);
    const cJSON *it;
    char **names = NULL; // shard file of each open file
    cJSON_ArrayForEach(it, map) {
        if (rc) break;
        if (!cJSON_IsString(it) || strchr(it->valuestring, '/') || !*it->valuestring) {
            rc = ls_fail("%s: key 'weight_map.%s': expected a shard file name in the same directory", index_path,
                         it->string);
            break;
        }
        int f = 0;
        while (f < w->n_files && strcmp(names[f], it->valuestring)) f++;
        if (f == w->n_files) {
            char *shard = ls_path_join(dir, it->valuestring);
            if (!ls_exists(shard)) rc = ls_fail("%s: key 'weight_map.%s': shard %s is missing", index_path,
                                                it->string, shard);
            else rc = add_file(w, shard);
            free(shard);
            if (rc) break;
            names = realloc(names, sizeof(char *) * (size_t)w->n_files);
            ls_assert(names != NULL);
            names[f] = it->valuestring;
        }
        if (!st_find(&w->files[f], it->string))
            rc = ls_fail("%s: key 'weight_map.%s': expected the tensor in shard %s, which lacks it", index_path,
                         it->string, it->valuestring);
    }
    free(names);
    cJSON_Delete(root);
    return rc;
}

int hf_weights_open(hf_weights *w, const char *path) {
    memset(w, 0, sizeof *w);
    w->path = ls_strdup(path);
    int rc;
    if (!ls_is_dir(path)) {
        rc = add_file(w, path);
    } else {
        char *single = ls_path_join(path, "model.safetensors");
        char *index = ls_path_join(path, "model.safetensors.index.json");
        rc = read_heads(w, path);
        if (rc) {
        } else if (ls_exists(single)) rc = add_file(w, single);
        else if (ls_exists(index)) rc = open_index(w, path, index);
        else rc = ls_fail("%s: expected model.safetensors or model.safetensors.index.json in the base directory",
                          path);
        free(single);
        free(index);
    }
    if (rc) hf_weights_close(w);
    return rc;
}

void hf_weights_close(hf_weights *w) {
    for (int i = 0; i < w->n_files; i++) st_close(&w->files[i]);
    free(w->files);
    free(w->path);
    memset(w, 0, sizeof *w);
}

// ----------------------------------------------------------------------------
// lookup

// 1 if a and b are equal once the longer loses some leading dot-components.
static int same_but_prefix(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    if (na < nb) {
        const char *t = a;
        a = b;
        b = t;
        size_t u = na;
        na = nb;
        nb = u;
    }
    return na == nb ? !strcmp(a, b) : (a[na - nb - 1] == '.' && !strcmp(a + na - nb, b));
}

static const st_tensor *find_tensor(const hf_weights *w, const char *name, const st_file **file, int *n_found) {
    const st_tensor *hit = NULL;
    *n_found = 0;
    for (int pass = 0; pass < 2 && !*n_found; pass++)
        for (int f = 0; f < w->n_files; f++)
            for (int i = 0; i < w->files[f].n_tensors; i++) {
                const st_tensor *t = &w->files[f].tensors[i];
                if (pass == 0 ? strcmp(t->name, name) : !same_but_prefix(t->name, name)) continue;
                if (!hit) {
                    hit = t;
                    *file = &w->files[f];
                }
                ++*n_found;
            }
    return hit;
}

float *hf_weights_site(const hf_weights *w, const lora_adapter *a, const adapter_site *m) {
    char name[300];
    snprintf(name, sizeof name, "%s.weight", m->name);
    const st_file *f = NULL;
    int n;
    const st_tensor *t = find_tensor(w, name, &f, &n);
    if (n != 1) {
        ls_fail("%s: %s tensor '%s' (the weight of adapter module %s)", w->path,
                n ? "more than one" : "no", name, m->name);
        return NULL;
    }
    int transpose = m->embedding || a->fan_in_fan_out;
    int64_t rows = transpose ? m->d_in : m->d_out, cols = transpose ? m->d_out : m->d_in;
    if (!st_dtype_is_float(t->dtype) || t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols) {
        ls_fail("%s: tensor '%s': expected a float (%lld, %lld) matrix%s for ΔW (%d, %d) of %s, found %s shape (%lld, "
                "%lld)", f->path, t->name, (long long)rows, (long long)cols, transpose ? " (stored transposed)" : "",
                m->d_out, m->d_in, m->name, st_dtype_name(t->dtype), (long long)t->shape[0],
                (long long)(t->ndim > 1 ? t->shape[1] : 0));
        return NULL;
    }
    float *x = st_load_float(f, t);
    if (ckpt_check_finite(f->path, t->name, x, t->numel)) {
        free(x);
        return NULL;
    }
    if (!transpose) return x;
    float *y = ls_malloc(sizeof(float) * (size_t)t->numel);
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) y[(size_t)j * rows + i] = x[(size_t)i * cols + j];
    free(x);
    return y;
}
