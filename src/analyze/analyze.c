// analyze_run: one analysis from request to files.
#include "analyze/analyze.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analyze/results.h"
#include "base/util.h"
#include "engine/backend_registry.h"
#include "report/report.h"

// Subspace over req's pairs: the first pair's tables and figure, then every
// pair's statistics and their summary (seeds.c).
static int subspace_pairs(const analyze_request *req, const analyze_inputs *in, const char *data_dir) {
    subspace_result *res = ls_calloc((size_t)req->n_pairs, sizeof *res);
    int rc = 0, done = 0;
    for (; done < req->n_pairs && !rc; done++)
        rc = subspace_compute_pair(req, in, req->pairs[done][0], req->pairs[done][1], &res[done]);
    if (!rc) rc = subspace_render(req, &res[0], data_dir);
    if (!rc) rc = subspace_pairs_render(req, res, req->n_pairs);
    for (int p = 0; p < done; p++) subspace_result_free(&res[p]);
    free(res);
    return rc;
}

// Computes and renders req->kind over the loaded inputs.
static int run_kind(const analyze_request *req, const analyze_inputs *in, const char *data_dir) {
    const char *k = req->kind;
    int rc;
    if (!strcmp(k, "subspace") && req->n_pairs) {
        rc = subspace_pairs(req, in, data_dir);
    } else if (!strcmp(k, "subspace")) {
        subspace_result res;
        rc = subspace_compute(req, in, &res);
        if (!rc) rc = subspace_render(req, &res, data_dir);
        subspace_result_free(&res);
    } else if (!strcmp(k, "amplify")) {
        amplify_result res;
        rc = amplify_compute(req, in, &res);
        if (!rc) rc = amplify_render(req, &res, data_dir);
        amplify_result_free(&res);
    } else if (!strcmp(k, "w-vs-dw")) {
        w_vs_dw_result res;
        rc = w_vs_dw_compute(req, in, &res);
        if (!rc) rc = w_vs_dw_render(req, &res, data_dir);
        w_vs_dw_result_free(&res);
    } else if (!strcmp(k, "spectrum")) {
        spectrum_result res;
        rc = spectrum_compute(req, in, &res);
        if (!rc) rc = spectrum_render(req, &res, data_dir);
        spectrum_result_free(&res);
    } else {
        intruders_result res;
        rc = intruders_compute(req, in, &res);
        if (!rc) rc = intruders_render(req, &res, data_dir);
        intruders_result_free(&res);
    }
    return rc;
}

// Subspace over several --adapter without --pair: every pair (i < j).
static void all_pairs(analyze_request *req) {
    for (int i = 0; i < req->n_adapters; i++)
        for (int j = i + 1; j < req->n_adapters && req->n_pairs < ANALYZE_MAX_PAIRS; j++) {
            req->pairs[req->n_pairs][0] = i;
            req->pairs[req->n_pairs++][1] = j;
        }
}

int analyze_run(const analyze_request *request) {
    if (analyze_request_check(request)) return -1;
    analyze_request pairs_req = *request;
    const analyze_request *req = request;
    if (!strcmp(req->kind, "subspace") && !req->adapter2 && !req->n_pairs) {
        all_pairs(&pairs_req);
        req = &pairs_req;
    }
    // The analyses run layers (and Monte Carlo draws) on OpenMP's threads, each
    // with sequential BLAS: OpenBLAS's own pool beside them would oversubscribe
    // the cores, and one thread per product keeps the bits independent of the
    // thread count (as the CPU backend does, engine/ops_cpu.c).
    openblas_set_num_threads(1);
    const an_linalg_backend *linalg = NULL;  // NULL: LAPACKE
    if (ls_linalg_by_name(req->backend ? req->backend : "cpu", &linalg)) return -1;
    const an_linalg_backend *before = an_set_linalg_backend(linalg);
    analyze_inputs *in = NULL;
    int rc = analyze_inputs_load(req, &in);
    char *data_root = ls_path_join(req->out, "data");
    char *data_dir = req->name ? ls_path_join(data_root, req->name) : ls_strdup(data_root);
    if (!rc) rc = ls_mkdir_p(data_dir);
    if (!rc) rc = run_kind(req, in, data_dir);
    analyze_inputs_free(in);
    an_set_linalg_backend(before);
    if (rc) {
        report_rollback();
        rmdir(data_dir); // only if empty: never leave a half-made output tree behind
        rmdir(data_root);
        rmdir(req->out);
    }
    free(data_dir);
    free(data_root);
    return rc;
}
