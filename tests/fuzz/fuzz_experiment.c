// libFuzzer target: experiment files (exp_load) on a fuzzed INI, with the
// assets directory a scratch directory holding empty stand-ins for the asset
// paths the experiment files name, so that $ASSETS paths both resolve and fail.
//
// experiment.c checks [eval] values against evaluate's option table
// (train/evaluate.c), which would pull the whole engine into the link. This
// target links a stand-in instead: evaluate_table() with the same four [eval]
// keys experiment.c accepts (generate, beam, max-new, batch-size) and their
// ranges as evaluate.c declares them, and evaluate_defaults(). Keep these in
// step with evaluate.c's OPTIONS.
#include "base/options.h"
#include "exp/experiment.h"
#include "fuzz_util.h"
#include "train/evaluate.h"

#define S evaluate_request
static const opt_spec OPTIONS[] = {
    OPT_INT_(S, "eval", "batch_size", "batch-size", batch_size, 1, 65536, 0, ""),
    OPT_INT_(S, "eval", "generate", "generate", generate, 0, 1 << 30, 0, ""),
    OPT_INT_(S, "eval", "beam", "beam", beam, 1, 256, 0, ""),
    OPT_INT_(S, "eval", "max_new", "max-new", max_new, 1, 1 << 20, 0, ""),
};
#undef S
static const opt_table TABLE = {OPTIONS, (int)(sizeof OPTIONS / sizeof OPTIONS[0]), "eval", "lorascope eval"};

const opt_table *evaluate_table(void) { return &TABLE; }
void evaluate_defaults(evaluate_request *req) {
    memset(req, 0, sizeof *req);
    req->seq_len = 128;
    req->batch_size = 8;
    req->generate = -1;
    req->beam = 1;
    req->max_new = 64;
}

static char assets[512];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[512];
    if (!assets[0]) {
        snprintf(assets, sizeof assets, "%s/assets", fuzz_scratch());
        char cmd[1024];
        snprintf(cmd, sizeof cmd,
                 "cd %s/.. && mkdir -p assets/models/stories260K assets/data/e2e assets/data/sst2 && cd assets && "
                 "touch models/stories260K/stories260K.bin models/stories260K/tok512.bin data/e2e/valid.txt "
                 "data/e2e/test.txt data/sst2/train.tsv data/sst2/dev.tsv",
                 assets);
        if (system(cmd) != 0) abort();
    }
    fuzz_write("exp.ini", data, size, path);
    experiment e;
    if (fuzz_note("exp_load", exp_load(&e, path, assets)) == 0) {
        for (int i = 0; i < e.n_analyses; i++) exp_analysis_get(&e.analyses[i], "kind");
        exp_free(&e);
    }
    return 0;
}
