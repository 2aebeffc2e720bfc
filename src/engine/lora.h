// lora: low-rank adapters on the linear maps of a model (Hu et al. 2021, Sec. 4.1).
//
// A site adapts a block of output rows [row0, row0 + d_out) of one linear map
// W (d_out x d_in) of one layer: h = W0 x + s B A x  (Eq. 3), with
// A (r, d_in), B (d_out, r) row-major as PEFT stores lora_A / lora_B, and
// s = alpha / r (the paper, Sec. 4.1) or alpha / sqrt(r) (rsLoRA,
// Kalajdzievski 2023). The forward pass adds s (x' A^T) B^T to the frozen
// product and never forms ΔW = s B A; x' is x after dropout (PEFT's
// lora_dropout, active only while the model is training).
//
// Modules (the registry's, arch/arch.h; PEFT's module names accepted as aliases):
//   llama: q k v o gate up down         (q_proj ... down_proj)
//   gpt2:  c_attn (the fused q,k,v map, as PEFT adapts it), q k v (row blocks
//          of c_attn, as loralib's MergedLinear in the paper's GPT-2
//          experiments; PEFT cannot express these), c_proj (= o), c_fc,
//          mlp_proj (= down; HF "mlp.c_proj")
// c_attn and any of q/k/v on the same layer would overlap and are refused.
//
// Initialisation (B = 0 for the first two, so the adapted model starts equal
// to the base model):
//   gaussian: A ~ N(0, σ²), σ = init_std, default 1/r (PEFT's "gaussian";
//             the paper says "random Gaussian" without σ).
//   kaiming:  A ~ U(-1/sqrt(d_in), 1/sqrt(d_in)): kaiming_uniform_(a=sqrt(5)),
//             whose bound sqrt(6 / ((1 + a²) fan_in)) = 1/sqrt(d_in)
//             (loralib and PEFT's default).
//   pissa:    (Meng et al. 2024, PEFT's init_lora_weights="pissa") from the
//             top-r SVD W = U S V^T: A = diag(sqrt(S_r / s)) V_r^T,
//             B = U_r diag(sqrt(S_r / s)), so that s B A = U_r S_r V_r^T, and
//             the frozen weight becomes the residual W0 <- W - s B A (the base
//             model is modified in place).
//
// Random streams: each site draws its A from a stream of its own, seeded by
// lora_site_seed(seed, r, layer, module). Two ranks of one seed therefore
// start from independent A's (a shared stream made A_{r=2}'s rows the first
// rows of A_{r=16}: φ(A_2, A_16, 1, 16) = 1 at initialisation, issue 12),
// and a site's initial A is the same whichever other sites are adapted. The
// same config and seed give the same bits.
//
// Memory: the A and B of every site live in one parameter buffer (gradients in
// one gradient buffer of the same layout), site after site, A before B, in
// order (layer, q k v o gate up down / c_attn c_proj c_fc mlp_proj).
#ifndef LS_ENGINE_LORA_H
#define LS_ENGINE_LORA_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "arch/arch.h"
#include "engine/model.h"
#include "io/adapter.h"

// A module by its role in the layer (arch/arch.h's arch_role, same values).
typedef enum {
    LORA_Q = ARCH_Q, LORA_K = ARCH_K, LORA_V = ARCH_V, LORA_O = ARCH_O, LORA_GATE = ARCH_GATE,
    LORA_UP = ARCH_UP, LORA_DOWN = ARCH_DOWN,
    LORA_QKV = ARCH_QKV, // gpt2 attn.c_attn as a whole
    LORA_FC = ARCH_FC,   // gpt2 mlp.c_fc
} lora_module_id;
#define LORA_N_MODULES ARCH_N_ROLES

typedef enum { LORA_INIT_GAUSSIAN = 0, LORA_INIT_KAIMING = 1, LORA_INIT_PISSA = 2 } lora_init;

typedef struct {
    int rank;             // r >= 1
    float alpha;          // s = alpha / r, or alpha / sqrt(r) with rslora
    int rslora;
    float dropout;        // probability in [0, 1) on the LoRA input
    lora_init init;
    float init_std;       // gaussian σ; 0 means 1/r
    uint64_t seed;        // initialisation and dropout streams
    uint32_t modules;     // bit (1u << lora_module_id) per adapted module
    int n_layers;         // 0: every layer; else the layers listed in `layers`
    int layers[256];
} ls_lora_config;

typedef struct {
    int layer;
    lora_module_id module;
    ls_linear linear;     // which linear map of the layer
    int row0, d_out, d_in; // output rows [row0, row0 + d_out) of a (OC x d_in) map
    int lin_out;          // OC: the full output width of that map
    int rank;
    float alpha;
    float scale;          // s
    size_t offset_A, offset_B; // into params / grads (floats)
    float *A, *B;         // (rank, d_in), (d_out, rank) in params
    float *dA, *dB;       // same layout in grads
    float *h;             // (N, rank) activation x' A^T of the last forward
} ls_lora_site;

typedef struct ls_lora {
    ls_lora_config cfg;
    ls_family family;
    const ls_backend *be;
    int n_layers_model;
    int n_sites;
    ls_lora_site *sites;  // sorted by (layer, linear, row0)
    int *lin_first;       // (L * LS_N_LINEAR): first site of (layer, linear)
    int *lin_count;       // number of sites of (layer, linear)
    size_t n_params;
    float *params;        // one allocation: A, B of every site
    float *grads;
    // activations: h of every site for up to Ncap rows, plus scratch
    int Ncap;
    float *acts;
    float *xdrop;         // (Ncap, max d_in) dropped-out input
    float *dh;            // (Ncap, max rank)
    int max_d_in;
    int merged;           // 1 while ΔW is folded into the base weights
    uint64_t dropout_seed; // set per step by the training loop
} ls_lora;

// ----------------------------------------------------------------------------
// configuration

// Default config: r = 8, alpha = 16, no rsLoRA, no dropout, kaiming init,
// seed 1, modules q and v (the paper's choice, Sec. 7.1), every layer.
void lora_config_default(ls_lora_config *c);

// Parses a comma-separated module list ("q,v", "c_attn,c_proj", "all") for a
// family into a bitmask. "all" = every module of the family (gpt2: c_attn,
// c_proj, c_fc, mlp_proj). Returns 0, or -1 with ls_error() naming the
// unknown module.
int lora_parse_modules(ls_family family, const char *list, uint32_t *modules);

// Module id -> short name ("q", "c_attn", ...) for a family.
const char *lora_module_name(ls_family family, lora_module_id mod);

// Module path inside a layer as PEFT names it ("self_attn.q_proj",
// "attn.c_attn", "mlp.c_proj"), or NULL for gpt2 q/k/v row blocks.
const char *lora_module_path(ls_family family, lora_module_id mod);

// s = alpha / r, or alpha / sqrt(r) (rsLoRA).
float lora_scale(float alpha, int rank, int rslora);

// ----------------------------------------------------------------------------
// build / attach / free

// The seed of the initialisation stream of the site (layer, mod) of rank r
// (see "Random streams" above): a hash of the four values.
uint64_t lora_site_seed(uint64_t seed, int rank, int layer, lora_module_id mod);

// Creates the adapter sites of `cfg` on model `m`, initialises A and B (for
// pissa also rewrites m's frozen weights) and attaches the adapter to m (m->lora).
// The adapter's activations are sized for m's current reservation. Returns 0,
// or -1 with ls_error() (unknown module for the family, layer out of range,
// rank too large, overlapping sites, bad dropout).
int lora_build(ls_lora *lo, ls_model *m, const ls_lora_config *cfg);

// Creates one site per module of a PEFT adapter read by adapter_load (io/adapter.h),
// with that module's rank and scale (rank_pattern / alpha_pattern resolved),
// copies A and B, and attaches it to m. Dropout 0 (set lo->cfg.dropout to train
// further with dropout). Returns 0, or -1 with ls_error() (family or shape mismatch,
// unknown module, layer out of range).
int lora_build_from_adapter(ls_lora *lo, ls_model *m, const lora_adapter *a);

// Fills a lora_adapter (io/adapter.h) with copies of every site's A and B, ranks,
// alphas and scales, modules sorted by (layer, path) and PEFT target names, for
// adapter_save(). The caller frees it with adapter_free(). Sets no dir or
// base_model.
int lora_to_adapter(const ls_lora *lo, lora_adapter *a);

// Detaches from m (if attached) and frees everything the adapter owns.
void lora_free(ls_lora *lo, ls_model *m);

// Sizes the activations for N = B*T rows (model_reserve calls it).
void lora_reserve(ls_lora *lo, int N);

void lora_zero_grad(ls_lora *lo);

// The site adapting (layer, module), or NULL.
ls_lora_site *lora_find_site(ls_lora *lo, int layer, lora_module_id mod);

// Copies a site's A (rank x d_in) and B (d_out x rank) out of / into host memory.
void lora_get_site(const ls_lora *lo, const ls_lora_site *s, float *A, float *B);
void lora_set_site(ls_lora *lo, ls_lora_site *s, const float *A, const float *B);

// Dropout masks of the next forward/backward pair derive from this seed (mixed
// with the site index); the training loop sets it once per micro-step.
void lora_set_dropout_seed(ls_lora *lo, uint64_t seed);

// ----------------------------------------------------------------------------
// merge (Sec. 4.1, "No additional inference latency")

// W (d_out, d_in), host memory, += scale B (d_out, rank) A (rank, d_in): each
// element's sum over k = 0..rank-1 of B[i,k] A[k,j] in double, then
// W = (float)(W + scale * sum), one rounding. The one merge of the tree:
// lora_merge / lora_unmerge, PiSSA's residual (scale -s), the merged HF export
// and applying a PEFT adapter (train/export.h) all go through it.
void lora_merge_into(float *W, const float *B, const float *A, int d_out, int d_in, int rank,
                     float scale);

// W0 <- W0 + s B A for every site (lora_merge_into on a host copy of each
// weight block); the forward pass then skips the adapter.
// Returns -1 if already merged.
int lora_merge(ls_lora *lo, ls_model *m);
// W0 <- W0 - s B A; the adapter is applied on the fly again. Returns -1 if not merged.
int lora_unmerge(ls_lora *lo, ls_model *m);

// ----------------------------------------------------------------------------
// used by model.c

// out (N, OC) += s (x' A^T) B^T on the row blocks of every site of
// (layer, linear); x (N, d_in). Saves h. No-op when merged or no site.
void lora_linear_forward(ls_lora *lo, int layer, ls_linear lin, float *out, const float *x,
                         int N, int training);
// dout (N, OC): dB += s dout_blk^T h, dA += (s dout_blk B)^T x', and
// dx (N, d_in) += the input gradient (dx NULL: skip it).
void lora_linear_backward(ls_lora *lo, int layer, ls_linear lin, float *dx, const float *dout,
                          const float *x, int N, int training);
// 1 when some layer's `lin` has a site (unmerged): its backward reads that
// linear's input x, so the model must keep it.
int lora_reads_input(const ls_lora *lo, ls_linear lin);

// ----------------------------------------------------------------------------
// reporting

// Trainable parameter count in PEFT's print_trainable_parameters format:
// "trainable params: 1,234 || all params: 5,678 || trainable%: 21.7321".
// Writes into buf (NUL-terminated, truncated to size). Returns buf.
char *lora_format_trainable(char *buf, size_t size, size_t trainable, size_t all);

#endif
