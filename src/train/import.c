// import: PEFT adapters folded into a model's weights.
#include "train/import.h"

#include <stdio.h>
#include <stdlib.h>

#include "base/util.h"
#include "engine/lora.h"

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

int import_adapter_dir(ls_model *m, const char *dir) {
    char *cfg = ls_path_join(dir, "adapter_config.json");
    char *use = ls_exists(cfg) ? ls_strdup(dir) : ls_path_join(dir, "adapter");
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

