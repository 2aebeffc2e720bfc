// analyze: the analyses of Hu et al. 2021, Sec. 7 and App. H, over PEFT
// adapters, full fine-tuning checkpoints and a base checkpoint — what
// `lorascope analyze` and `lorascope run`'s [analysis] sections run.
//
//   subspace   φ(A1, A2, i, j) between two adapters (Eq. 4; Fig. 3, 4, 6, 7; and for B)
//   amplify    ‖UᵀWV‖_F for ΔW, W, random and the amplification factor (Table 7, H.4)
//   w-vs-dw    φ between the top-i directions of W and the top-j of ΔW (Fig. 8)
//   spectrum   singular spectrum, effective rank, 90%-energy rank of ΔW (or of W)
//   intruders  intruder dimensions of W0 + ΔW against W0 (Shuttleworth et al. 2024)
//
// Every analysis writes <name>.tsv and <name>.md under `out`, one TSV per grid
// or spectrum under <out>/data/ (<out>/data/<name>/ when the request names
// its output), and <name>.png/.svg through plots/*.gp.
// The math is analysis/ (an_*); this layer loads the inputs, runs the math
// over layers, modules and adapters into result structs, and renders them.
#ifndef LS_ANALYZE_H
#define LS_ANALYZE_H

#define ANALYZE_MAX_ADAPTERS 16
#define ANALYZE_MAX_MODULES 8
#define ANALYZE_MODULE_NAME 64   // bytes of a module name, its 0 included
#define ANALYZE_MAX_PAIRS 120  // every pair of ANALYZE_MAX_ADAPTERS adapters

// One analysis to run. Strings are borrowed: they must outlive analyze_run.
typedef struct {
    const char *kind;     // subspace, amplify, w-vs-dw, spectrum, intruders
    const char *base;     // base checkpoint (llama2.c .bin or HF dir), or NULL
    const char *adapters[ANALYZE_MAX_ADAPTERS];  // PEFT adapter dirs
    int n_adapters;
    const char *adapter2; // subspace: the second adapter
    const char *finetuned[ANALYZE_MAX_ADAPTERS]; // full fine-tuning checkpoints: ΔW = W_ft - W0
    int n_finetuned;
    char modules[ANALYZE_MAX_MODULES][ANALYZE_MODULE_NAME];
    int n_modules;
    int layer;            // -1: all layers
    int side_b;           // subspace on B (left singular vectors; our extension of Fig. 3, 4)
    const char *out;      // output directory (created)
    const char *name;     // output stem: <out>/<name>.tsv, .md, .png, data in <out>/data/<name>/;
                          // NULL: the kind's own names (subspace, table7 + amplification, w_vs_dw, ...)
    unsigned long long seed;  // of the Gaussian random baselines
    int rank;             // amplify/w-vs-dw: directions to project on (0: the adapter's r)
    int imax;             // w-vs-dw: W directions (rows of the grid; 0: min(64, rank of W))
    int top_k;            // intruders: vectors examined
    double eps;           // intruders: cosine threshold
    double energy;        // spectrum: energy fraction for the energy rank
    int no_plot;          // tables only
    int pairs[ANALYZE_MAX_PAIRS][2]; // subspace over several pairs: 0-based indices into adapters
    int n_pairs;          // 0: the one pair (adapter, adapter2)
    const char *backend;  // the SVDs and QRs: cpu (LAPACKE), cuda (cuSOLVER), auto (cuda if usable)
} analyze_request;

// The defaults: all layers, modules q and v, side A, seed 0, top-k 10,
// eps 0.5, energy 0.9, backend cpu; no kind, inputs or output.
void analyze_request_defaults(analyze_request *req);

// Sets one option from its text, as `lorascope analyze --<option> <text>`
// takes it: base, adapter and finetuned (each appends), adapter2, out, name,
// module (a comma list; replaces the list), layer (N or all), side (A or B),
// seed, rank, imax, top-k, eps, energy, backend (cpu, cuda or auto; checked
// here, loaded by analyze_run), and pair ("I,J": 1-based indices of
// two --adapter's, appended; subspace then runs every pair, see below). `text` is borrowed. Returns 0, or -1
// with ls_error() naming the flag ("--rank: expected an integer in [1, 1048576],
// found 'x'").
int analyze_request_set(analyze_request *req, const char *option, const char *text);

// Checks that req names a known kind, an output directory, and the inputs its
// kind needs. Returns 0, or -1 with ls_error() set.
int analyze_request_check(const analyze_request *req);

// Subspace over pairs (n_pairs > 0, adapter2 NULL): φ for every pair; the
// main tables and figure are the first pair's, <name>_pairs.tsv has every
// pair's statistics and <name>_summary.tsv / .md their mean and 95%
// t-interval over pairs per layer and module, beside the chance band.
//
// Subspace and A₀: when both adapters' runs saved their initial factors
// (adapter_init.safetensors), the tables add φ of A − A₀ (what training
// moved) and φ(A₀¹, A₀², ...) (the at-initialisation baseline).
//
// Backends: with cuda (or auto on a machine with a GPU) every SVD and QR of
// the analyses (an_svd_thin, an_delta_svd, W's an_svd_top as a dense SVD, the
// φ grids', amplification's, spectra's and intruders') runs on cuSOLVER in
// fp64 through the CUDA module (engine/backend_registry.h), one call at a
// time; the rest, chance bands included, stays on the CPU's threads. Results
// equal the CPU's to rounding (tests/cuda, test_analyses_through_cusolver_*).
//
// Runs req: checks it, loads the inputs, writes the tables, data files and
// figures under req->out. Returns 0, with the files written recorded for
// report_list() (report/report.h; the caller prints them); or -1 with
// ls_error() set, every file written since the last report_list() removed,
// and <out>/data and <out> removed if left empty. Never exits.
int analyze_run(const analyze_request *req);

#endif
