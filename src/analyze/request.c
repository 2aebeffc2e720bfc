// The request of one analysis: defaults, options from text, checks.
#include "analyze/analyze.h"

#include <stdio.h>
#include <string.h>

#include "analysis.h"
#include "base/parse.h"
#include "base/util.h"

void analyze_request_defaults(analyze_request *req) {
    memset(req, 0, sizeof *req);
    req->layer = -1;
    req->top_k = AN_INTRUDER_DEFAULT_K;
    req->eps = AN_INTRUDER_DEFAULT_EPS;
    req->energy = 0.9;
    strcpy(req->modules[0], "q");
    strcpy(req->modules[1], "v");
    req->n_modules = 2;
    req->backend = "cpu";
}

// "q,v" -> modules; replaces the list.
static int set_modules(analyze_request *req, const char *list) {
    req->n_modules = 0;
    const char *p = list;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == 0 || n >= sizeof req->modules[0]) return ls_fail("--module: bad module name in '%s'", list);
        if (req->n_modules == ANALYZE_MAX_MODULES) return ls_fail("--module: at most %d modules", ANALYZE_MAX_MODULES);
        memcpy(req->modules[req->n_modules], p, n);
        req->modules[req->n_modules++][n] = 0;
        p += n + (comma != NULL);
    }
    if (req->n_modules == 0) return ls_fail("--module: expected at least one module");
    return 0;
}

int analyze_request_set(analyze_request *req, const char *option, const char *text) {
    const char *o = option;
    if (!strcmp(o, "base")) req->base = text;
    else if (!strcmp(o, "adapter")) {
        if (req->n_adapters == ANALYZE_MAX_ADAPTERS)
            return ls_fail("--adapter: at most %d adapters", ANALYZE_MAX_ADAPTERS);
        req->adapters[req->n_adapters++] = text;
    } else if (!strcmp(o, "adapter2")) req->adapter2 = text;
    else if (!strcmp(o, "finetuned")) {
        if (req->n_finetuned == ANALYZE_MAX_ADAPTERS)
            return ls_fail("--finetuned: at most %d checkpoints", ANALYZE_MAX_ADAPTERS);
        req->finetuned[req->n_finetuned++] = text;
    } else if (!strcmp(o, "out")) req->out = text;
    else if (!strcmp(o, "name")) {
        for (const char *c = text; *c; c++)
            if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_' ||
                  *c == '-'))
                return ls_fail("--name: expected letters, digits, '_' or '-', found '%s'", text);
        req->name = *text ? text : NULL;
    }
    else if (!strcmp(o, "module")) return set_modules(req, text);
    else if (!strcmp(o, "pair")) {
        int i, j, used = 0;
        if (sscanf(text, "%d,%d%n", &i, &j, &used) != 2 || text[used] || i < 1 || j < 1 || i == j ||
            i > ANALYZE_MAX_ADAPTERS || j > ANALYZE_MAX_ADAPTERS)
            return ls_fail("--pair: expected I,J (two different 1-based --adapter indices), found '%s'", text);
        if (req->n_pairs == ANALYZE_MAX_PAIRS) return ls_fail("--pair: at most %d pairs", ANALYZE_MAX_PAIRS);
        req->pairs[req->n_pairs][0] = i - 1;
        req->pairs[req->n_pairs++][1] = j - 1;
    }
    else if (!strcmp(o, "layer")) {
        if (!strcmp(text, "all")) req->layer = -1;
        else return ls_parse_int(text, "--layer", 0, 100000, &req->layer);
    } else if (!strcmp(o, "side")) {
        if (strcmp(text, "A") && strcmp(text, "B")) return ls_fail("--side: expected A or B, found '%s'", text);
        req->side_b = text[0] == 'B';
    } else if (!strcmp(o, "seed")) {
        long long v;
        if (ls_parse_int64(text, "--seed", 0, 2147483647LL, &v)) return -1;
        req->seed = (unsigned long long)v;
    } else if (!strcmp(o, "rank")) return ls_parse_int(text, "--rank", 1, 1 << 20, &req->rank);
    else if (!strcmp(o, "imax")) return ls_parse_int(text, "--imax", 1, 1 << 20, &req->imax);
    else if (!strcmp(o, "top-k")) return ls_parse_int(text, "--top-k", 1, 1 << 20, &req->top_k);
    else if (!strcmp(o, "eps")) return ls_parse_double(text, "--eps", 0, 1, LS_OPEN_LO, &req->eps);
    else if (!strcmp(o, "energy")) return ls_parse_double(text, "--energy", 0, 1, LS_OPEN_LO, &req->energy);
    else if (!strcmp(o, "backend")) {
        if (strcmp(text, "cpu") && strcmp(text, "cuda") && strcmp(text, "auto"))
            return ls_fail("--backend: expected cpu, cuda or auto, found '%s'", text);
        req->backend = text;
    }
    else return ls_fail("unknown option '--%s'", option);
    return 0;
}

int analyze_request_check(const analyze_request *req) {
    if (req->n_modules == 0) return ls_fail("--module: expected at least one module");
    if (!req->out) return ls_fail("--out: required (the directory for tables and figures)");
    const char *k = req->kind ? req->kind : "";
    if (!strcmp(k, "subspace")) {
        if (req->n_pairs) {
            if (req->adapter2) return ls_fail("subspace: --pair takes its adapters from --adapter, not --adapter2");
            for (int p = 0; p < req->n_pairs; p++)
                if (req->pairs[p][0] >= req->n_adapters || req->pairs[p][1] >= req->n_adapters)
                    return ls_fail("--pair %d,%d: expected indices of the %d --adapter's", req->pairs[p][0] + 1,
                                   req->pairs[p][1] + 1, req->n_adapters);
        } else if (req->adapter2 ? req->n_adapters != 1 : req->n_adapters < 2)
            return ls_fail("subspace: expected one --adapter and one --adapter2, or several --adapter (every pair, "
                           "or those --pair I,J names)");
        if (req->n_finetuned) return ls_fail("subspace: compares LoRA factors; --finetuned has none");
    } else if (!strcmp(k, "amplify") || !strcmp(k, "intruders")) {
        if (!req->base) return ls_fail("%s: --base is required (the pretrained W)", k);
        if (req->n_adapters + req->n_finetuned < 1)
            return ls_fail("%s: expected at least one --adapter or --finetuned", k);
    } else if (!strcmp(k, "w-vs-dw")) {
        if (!req->base) return ls_fail("w-vs-dw: --base is required (the pretrained W)");
    } else if (!strcmp(k, "spectrum")) {
        if (!req->base && req->n_adapters < 1) return ls_fail("spectrum: expected --adapter (ΔW) or --base (W)");
        if (req->n_finetuned && !req->base) return ls_fail("spectrum: --finetuned needs --base (ΔW = W_ft - W0)");
    } else {
        return ls_fail("unknown analysis '%s' (expected subspace, amplify, w-vs-dw, spectrum or intruders)", k);
    }
    return 0;
}
