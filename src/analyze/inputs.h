// inputs: the bridge from lorascope's files to the math — a base checkpoint,
// PEFT adapters and full fine-tuning checkpoints, read through io/, handed to
// the analyses as an_mat (doubles). The only file of src/analyze that knows
// io's types; everything else sees an opaque analyze_inputs.
//
// A series is one ΔW per layer and module: a LoRA adapter (s·B·A) or a full
// fine-tuning checkpoint (W_ft - W0). Series 0..n_adapters-1 are the adapters
// in the order given (subspace's adapter2 last), then the checkpoints.
#ifndef LS_ANALYZE_INPUTS_H
#define LS_ANALYZE_INPUTS_H

#include <stddef.h>

#include "analysis.h"
#include "analyze/analyze.h"

typedef struct analyze_inputs analyze_inputs;

// Loads req's base, adapters (adapter2 last) and fine-tuned checkpoints and
// checks them against each other and req->layer. Returns 0 or -1 with
// ls_error() set; *out is set either way (free it with analyze_inputs_free).
int analyze_inputs_load(const analyze_request *req, analyze_inputs **out);
void analyze_inputs_free(analyze_inputs *in);

int analyze_inputs_n_layers(const analyze_inputs *in);
// The first layer any adapter adapts (layers_to_transform may skip the first
// ones), 0 without adapters: where "all layers" starts.
int analyze_inputs_first_layer(const analyze_inputs *in);
int analyze_inputs_n_adapters(const analyze_inputs *in);
int analyze_inputs_n_series(const analyze_inputs *in);

// What the tables say about a series.
typedef struct {
    const char *dir;   // the adapter's directory or the checkpoint's path (owned by the inputs)
    char label[48];    // short, for file names and legends: "r8", "r4_2" (same ranks), "full", "full_2"
    int is_lora;
    int r;             // the adapter's rank (adapter_config.json "r"); 0 for full fine-tuning
} analyze_series;

void analyze_inputs_series(const analyze_inputs *in, int i, analyze_series *out);

// Modules are named as adapter_resolve_any takes them (io/adapter.h): lorascope's
// short names or the adapter file's own. A generic adapter's base is read by
// module name (io/hf_weights.h); a DoRA module's ΔW is W' - W with that base,
// and s·B·A without one (said once in a "note:" line on stdout).
//
// ΔW = s·B·A for one module of adapter i: B the rows of the chosen module
// (d x r; GPT-2's q/k/v are row blocks of c_attn), A the whole input side (r x k).
typedef struct {
    an_mat A, B;
    double scale;
    int r;
} analyze_factors;

int analyze_inputs_factors(const analyze_inputs *in, int adapter, int layer, const char *module, analyze_factors *f);
void analyze_factors_free(analyze_factors *f);

// 1 when adapter i came with its initial factors A₀, B₀ (train's
// <run>/adapter_init.safetensors beside <run>/adapter/, io/adapter.h), else 0.
int analyze_inputs_has_init(const analyze_inputs *in, int adapter);
// A₀ and B₀ of adapter i at (layer, module), laid out as analyze_inputs_factors
// lays out A and B. Returns 0, or -1 with ls_error() (no initial factors).
int analyze_inputs_init_factors(const analyze_inputs *in, int adapter, int layer, const char *module,
                                analyze_factors *f);

// The rank of adapter i's module at (layer, module) (rank_pattern resolved), or
// 0 when it has none there.
int analyze_inputs_site_rank(const analyze_inputs *in, int adapter, int layer, const char *module);

// The base weight W (d x k) of (layer, module).
int analyze_inputs_weight(const analyze_inputs *in, int layer, const char *module, an_mat *W);

// The dense ΔW of series si at (layer, module).
int analyze_inputs_delta_dense(const analyze_inputs *in, int si, int layer, const char *module, an_mat *dW);

// The SVD of series si's ΔW: for LoRA through QR of B and Aᵀ (ΔW never
// formed), for full fine-tuning densely. *r (may be NULL) gets the LoRA rank
// of the module (0 for full fine-tuning).
int analyze_inputs_delta_svd(const analyze_inputs *in, int si, int layer, const char *module, an_svd *out, int *r);

// rc of an an_* call, with an_error() moved into ls_error() as "what: ...".
int analyze_check(int rc, const char *what);

#endif
