// model: one decoder-only transformer, configured per family (ARCHITECTURE.md, Model).
//
//   llama: RMSNorm, RoPE, SwiGLU MLP, grouped-query attention, no biases,
//          LM head tied to the token embedding or separate.
//   gpt2:  LayerNorm, learned positions, GELU (tanh) MLP, biases, tied head.
//
// Layer l (pre-norm):  x2 = x + O(attn(rope(QKV(norm1(x)))))
//                      x3 = x2 + DOWN(act(FC(norm2(x2))))
// Both families share this layout. The three input projections are stored as
// one fused matrix QKV (rows q, k, v; HF GPT-2's c_attn already is one) and
// Llama's gate and up projections as one matrix FC (rows gate, then up), so
// each is one sgemm; canonical-name views (ls_param_view) map them back to the
// checkpoint's tensors.
//
// Memory, the llm.c way: parameters, parameter gradients and activations each
// live in ONE backend allocation, carved up by a size table. Nothing is
// allocated inside a training step: model_reserve() sizes the activations
// for a batch once, model_forward()/model_backward() only reuse them.
//
// Frozen vs trainable: the base weights W0 are frozen (no gradient buffer)
// unless model_enable_grads() is called (full fine-tuning). LoRA adapters
// (lora.h) attach to the model and are always trainable.
//
// A LoRA training step, as the training loop is meant to drive it:
//   ls_checkpoint ck; ckpt_load(&ck, path);
//   ls_model m; model_build_from_checkpoint(&m, &ck, ls_backend_cpu()); ckpt_free(&ck);
//   model_reserve(&m, B, T);
//   ls_lora lo; lora_build(&lo, &m, &lora_cfg);          // attaches to m
//   ls_adamw opt; adamw_init(&opt, m.be, lo.n_params, 0.9f, 0.999f, 1e-8f, wd);
//   model_set_training(&m, 1);
//   per step: lora_zero_grad(&lo);
//     per micro-batch k: lora_set_dropout_seed(&lo, mix(seed, step, k));
//       model_forward(&m, tokens, targets, mask, B, T, smoothing);
//       model_backward(&m, 1.0f / n_micro, smoothing);
//     clip_grad_norm(m.be, lo.grads, lo.n_params, 1.0);
//     adamw_step(&opt, lo.params, lo.grads, lr);
// Full fine-tuning: model_enable_grads(&m), no adapter, and the optimiser over
// (m.params_memory, m.grads_memory, m.n_params) with model_decay_segments().
#ifndef LS_ENGINE_MODEL_H
#define LS_ENGINE_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "engine/backend.h"
#include "engine/optim.h"
#include "io/adapter.h"
#include "io/checkpoint.h"

struct ls_lora;
struct ls_adapters;
struct ls_prefix;
struct ls_prompt;

// Which base tensors train when the gradient buffer is on (the paper's
// baselines, Tables 2 and 3):
//   ALL     full fine-tuning: every tensor;
//   HEAD    encoder + LoRA: only the head's PEFT modules_to_save;
//   BIASES  BitFit (Ben Zaken et al. 2021): every bias (linear and LayerNorm
//           biases) and, for an encoder, the head's modules_to_save;
//   TOP     FT^Top-k (Li & Liang 2021): every tensor of the last k layers and,
//           for an encoder, the head's modules_to_save.
// Frozen tensors get no gradient computed, and the backward pass stops below
// the lowest layer that has anything to train (TOP).
typedef enum { LS_GRADS_ALL = 0, LS_GRADS_HEAD = 1, LS_GRADS_BIASES = 2, LS_GRADS_TOP = 3 } ls_grad_scope;

// The four linear maps of a layer that LoRA can attach to.
typedef enum { LS_LIN_QKV = 0, LS_LIN_O = 1, LS_LIN_FC = 2, LS_LIN_DOWN = 3 } ls_linear;
#define LS_N_LINEAR 4

// Parameter tensors, in allocation order. L = layers, C = dim, V = vocab,
// QKV = (NH + 2 NKV) HS, F = 2H (llama: gate; up) or H (gpt2), P = max positions.
typedef struct {
    float *wte;      // (V, C) token embedding
    float *wpe;      // (P, C) learned positions (gpt2; else NULL)
    float *ln1w;     // (L, C)
    float *ln1b;     // (L, C) gpt2
    float *qkvw;     // (L, QKV, C) rows: q (NH HS), k (NKV HS), v (NKV HS)
    float *qkvb;     // (L, QKV) gpt2
    float *attprojw; // (L, C, C) output projection o
    float *attprojb; // (L, C) gpt2
    float *ln2w;     // (L, C)
    float *ln2b;     // (L, C) gpt2
    float *fcw;      // (L, F, C)
    float *fcb;      // (L, F) gpt2
    float *fcprojw;  // (L, C, H) down projection
    float *fcprojb;  // (L, C) gpt2
    float *lnfw;     // (C)
    float *lnfb;     // (C) gpt2
    float *lm_head;  // (V, C) llama with untied head; else NULL (head = wte)
    // encoder family (engine/encoder.c; else NULL). Layer tensors above are
    // reused: ln1 = attention.output.LayerNorm, ln2 = output.LayerNorm (post-LN),
    // qkv = query, key, value rows, fc = intermediate.dense, fcproj = output.dense.
    float *wtt;      // (TT, C) token-type embedding
    float *embw;     // (C) embedding LayerNorm
    float *embb;     // (C)
    float *headw;    // (C, C) pooler dense (bert) / classifier.dense (roberta)
    float *headb;    // (C)
    float *clsw;     // (NL, C) classifier / classifier.out_proj
    float *clsb;     // (NL)
} ls_params;
#define LS_N_PARAM_TENSORS 24

// Activations saved for the backward pass (per layer: (L, ...)) and scratch.
typedef struct {
    float *encoded;  // (B,T,C) embedding output, input of layer 0
    float *ln1;      // (L,B,T,C)
    float *ln1_mean; // (L,B,T) LayerNorm only
    float *ln1_rstd; // (L,B,T)
    float *qkv;      // (L,B,T,QKV) after RoPE
    float *att;      // (L, att floats of the backend): what attention_backward needs
                     // (CPU: probabilities (B,NH,T,T); engine/backend.h)
    float *atty;     // (L,B,T,C) attention output before the projection
    float *res2;     // (L,B,T,C) residual after attention
    float *ln2;      // (L,B,T,C)
    float *ln2_mean; // (L,B,T)
    float *ln2_rstd; // (L,B,T)
    float *fc;       // (L,B,T,F)
    float *act;      // (L,B,T,H) GELU / SwiGLU output
    float *res3;     // (L,B,T,C) layer output
    float *lnf;      // (B,T,C)
    float *lnf_mean; // (B,T)
    float *lnf_rstd; // (B,T)
    float *logits;   // (B,T,V); overwritten by dlogits in model_backward
    float *losses;   // (B,T)
    float *dlosses;  // (B,T)
    float *dres;     // (B,T,C) gradient of the residual stream
    float *dln;      // (B,T,C)
    float *datty;    // (B,T,C)
    float *dqkv;     // (B,T,QKV)
    float *datt;     // attention_backward's scratch (backend-sized)
    float *dfc;      // (B,T,F)
    float *dact;     // (B,T,H)
    float *tmp;      // (B,T,C) output projections before the residual add
    // encoder family: layer l's output is ln2 + l*N*C (post-LN); res2 and res3
    // hold the sums before the two LayerNorms; logits/lnf are not used.
    float *emb;      // (B,T,C) word + position + type embeddings, before their LayerNorm
    float *emb_mean; // (B,T)
    float *emb_rstd; // (B,T)
    float *pool_in;  // (B,C) the [CLS] row or the masked mean of the last layer
    float *pool_pre; // (B,C) head dense output (before tanh)
    float *pooled;   // (B,C) tanh of it
    float *clogits;  // (B,NL) classifier logits
    float *dpool;    // (B,C) scratch of the head's backward
    float *dpool2;   // (B,C)
    float *cls_in;   // (B,C) the classifier's input after hidden dropout (cls pooling; else pooled is)
} ls_acts;
#define LS_N_ACT_TENSORS 38

// A named view of one canonical checkpoint tensor inside the parameter buffer
// (and, with the same offset, inside the gradient buffer). Names as in
// io/checkpoint.h: "model.layers.3.self_attn.k_proj.weight" is a row block of
// qkvw, "transformer.h.0.attn.c_attn.weight" all of it.
typedef struct {
    char name[80];
    int ndim;
    int64_t shape[2];
    size_t offset;   // in floats, into params_memory / grads_memory
    size_t numel;
    int no_decay;    // biases and norm weights (excluded from weight decay by HF Trainer)
} ls_param_view;

// KV caches and per-token buffers of the generation path: `lanes` sequences
// (beam search's beams) decoded side by side, each with its own cache.
typedef struct {
    int n_ctx;       // capacity in positions (grown as decoding goes, <= max_seq_len)
    int lanes;       // capacity in sequences
    float *memory;   // one allocation
    float *k_cache;  // (L, lanes, n_ctx, NKV HS)
    float *v_cache;  // (L, lanes, n_ctx, NKV HS)
    float *x, *xb, *xb2, *qkv, *att, *fc, *act, *logits, *mean, *rstd; // one token per lane
    int *token;      // (lanes) backend buffer
    float *host_logits; // (lanes, V) host copy returned by model_decode / _lanes / model_prefill
} ls_decoder;

typedef struct ls_model {
    ls_model_config cfg;
    const ls_backend *be;
    // derived sizes
    int C, L, NH, NKV, HS, H, F, QKV, V, P;

    size_t param_sizes[LS_N_PARAM_TENSORS];
    size_t n_params;            // total floats in params_memory
    float *params_memory;
    ls_params params;
    float *grads_memory;        // NULL while the base is frozen
    ls_params grads;

    int n_views;
    ls_param_view *views;

    float *rope_cos, *rope_sin; // (P, HS/2) llama only

    // activations, sized by model_reserve for up to Bcap x Tcap tokens
    int Bcap, Tcap;
    // Decoders: the per-layer activations that only a weight gradient reads
    // (atty: the output projection's input; ln2: the MLP's input; act: the
    // down projection's input), kept for one layer only (shared by all) when
    // nothing trains that weight — no full or FT^Top2 weights, no LoRA site
    // on it. LS_LEAN_* bits; model_reserve sets it, a forward re-reserves
    // when what trains has grown since.
    int lean;
    size_t act_sizes[LS_N_ACT_TENSORS];
    size_t n_acts;
    float *acts_memory;
    ls_acts acts;
    int *tokens, *targets;      // (Bcap*Tcap) backend buffers
    float *host_weights;        // (Bcap*Tcap) loss weight of each position
    float *host_losses;         // (Bcap*Tcap)

    // last forward
    int B, T;
    int has_targets;
    double weight_sum;          // sum of loss weights of the last forward
    // model_set_loss_chunk: the LM head and the loss run over this many rows
    // at a time (0: all at once), so that acts.logits holds (chunk, V), not
    // (N, V); acts_loss_chunk is what the activations were sized with.
    int loss_chunk, acts_loss_chunk;
    int head_done;              // the last forward also ran the head's backward (fused, chunked)
    float head_smoothing;       // ... with this label smoothing
    double loss;                // mean loss of the last forward (0 without targets)

    int *types, *keymask;       // (Bcap*Tcap) backend buffers (encoder family)
    int grad_scope;             // ls_grad_scope: which base tensors get gradients when
                                // grads_memory is set (model_enable_grads_scope)
    int grad_top;               // LS_GRADS_TOP: the last grad_top layers train
    int head_pooler;            // bert: the pooler dense is in the head's modules_to_save too
    int head_initialised;       // encoder: the head was not in the checkpoint (model_init_head)

    int training;               // 1: LoRA dropout active (model_set_training)
    float hidden_dropout;       // encoder family: HF's hidden dropout while training (model_set_hidden_dropout)
    uint64_t dropout_seed;      // its masks' stream, set per micro-batch (model_set_dropout_seed)
    struct ls_lora *lora;       // attached adapter or NULL (not owned)
    struct ls_adapters *adapters; // attached Adapter^H / Adapter^L layers or NULL (adapters.h)
    int owns_adapters;          // 1: model_free frees them (a run's adapters loaded for eval, train/import.h)
    struct ls_prefix *prefix;   // attached prefix-layer vectors or NULL (prefix.h)
    int owns_prefix;            // 1: model_free frees it (a run's prefix loaded for eval, train/import.h)
    ls_decoder dec;
    struct ls_prompt *prompt;   // attached prefix-embedding (prompt tuning) vectors or NULL (prompt.h)
    int owns_prompt;            // 1: model_free frees it (a run's prompt loaded for eval, train/import.h)
} ls_model;

// ----------------------------------------------------------------------------
// build / free

// Checks that a configuration is one this engine runs (positive sizes, heads
// dividing dim, n_kv_heads dividing n_heads, even head size for RoPE).
// Returns 0, or -1 with ls_error() naming the field.
int model_config_check(const ls_model_config *cfg);

// Allocates the parameters of `cfg` and fills them with GPT-2's initialisation
// (weights N(0, 0.02), residual projections N(0, 0.02/sqrt(2L)), norm weights
// 1, biases 0) from `seed`. For tests and benchmarks. Returns 0 or -1.
int model_build_random(ls_model *m, const ls_model_config *cfg, uint64_t seed,
                       const ls_backend *be);

// Builds the model of a loaded checkpoint (ckpt_load), copying every tensor
// into the parameter buffer; the checkpoint may be freed afterwards. Returns
// 0, or -1 with ls_error() naming the missing or mis-shaped tensor.
int model_build_from_checkpoint(ls_model *m, const ls_checkpoint *ck, const ls_backend *be);

// Frees everything the model owns (not an attached LoRA; attached adapters
// only when owns_adapters).
void model_free(ls_model *m);

// Allocates (zeroed) the gradient buffer of the base parameters: full
// fine-tuning (scope LS_GRADS_ALL). Idempotent.
void model_enable_grads(ls_model *m);

// Allocates the gradient buffer (the whole layout, zeroed) and trains only
// the tensors of `scope` (top_layers: LS_GRADS_TOP's k, 1..L). Returns 0, or
// -1 with ls_error() for BitFit on a family without biases (llama) or k out
// of range.
int model_enable_grads_scope(ls_model *m, ls_grad_scope scope, int top_layers);

// The trainable tensors of the current scope as segments of params_memory /
// grads_memory in buffer order, decay flags as model_decay_segments (biases
// and norm weights undecayed), into segs (capacity LS_N_PARAM_TENSORS).
// Returns the count (0 while the base is frozen).
int model_trainable_segments(const ls_model *m, ls_param_segment *segs);

// Sizes the activations for batches of up to B sequences of up to T tokens
// (T <= max_seq_len). Reallocates only when the capacity grows; also sizes
// an attached LoRA's activations. Returns 0 or -1 (T too long).
int model_reserve(ls_model *m, int B, int T);

// Dropout (LoRA's, and the encoder's hidden dropout) is active only while
// training is 1 (default 0, as PyTorch's eval()).
void model_set_training(ls_model *m, int training);

// The encoder family's hidden dropout, HF's hidden_dropout_prob (default 0:
// none), at the places transformers applies it: the embeddings' LayerNorm
// output, each layer's attention and MLP output projections before their
// residual add, and the classifier's input (BERT: the pooled output;
// RoBERTa: also the [CLS] row before the head's dense; mean pooling: the
// mean). Not modelled: the dropout on attention probabilities
// (attention_probs_dropout_prob). Masks are ls_hash_uniform of the seed of
// model_set_dropout_seed, one stream per place, the same on every backend.
// Returns 0, or -1 with ls_error() (not an encoder, p outside [0, 1)), a
// message without a subject: the caller names its option.
int model_set_hidden_dropout(ls_model *m, float p);
void model_set_dropout_seed(ls_model *m, uint64_t seed);

// ----------------------------------------------------------------------------
// parameters by name

// The view of a canonical tensor name, or NULL.
const ls_param_view *model_find_view(const ls_model *m, const char *name);
// Copies a named tensor out of (or into) the parameter buffer; host memory of
// view->numel floats. Return 0, or -1 with ls_error() for an unknown name.
int model_get_tensor(const ls_model *m, const char *name, float *host_out);
int model_set_tensor(ls_model *m, const char *name, const float *host_in);
// Copies a named gradient out (full fine-tuning only; -1 if grads are off).
int model_get_grad(const ls_model *m, const char *name, float *host_out);

// ----------------------------------------------------------------------------
// training step

// Forward pass over tokens (B,T) (host ints in [0, V)). With targets (B,T)
// (host; < 0 means ignore, as PyTorch's ignore_index), computes the
// cross-entropy (label smoothing `smoothing`, usually 0) and returns the mean
// over the positions that count: sum_i w_i loss_i / sum_i w_i with
// w_i = mask[i] (or 1 when mask is NULL) where targets[i] >= 0, else 0.
// Without targets (NULL) only the logits are computed and 0 is returned.
// Logits are left in m->acts.logits (backend memory, (B,T,V)).
// Requires model_reserve(m, >=B, >=T) first; returns -1.0f with ls_error() on
// bad sizes or token ids.
float model_forward(ls_model *m, const int *tokens, const int *targets, const float *mask,
                    int B, int T, float smoothing);

// Backward pass of the last forward (which must have had targets), for the
// objective loss_scale * loss (pass 1/n_micro for gradient accumulation).
// ACCUMULATES into the base gradients (if enabled) and the attached LoRA's
// gradients; zero them with model_zero_grad / lora_zero_grad. Overwrites the
// logits with their gradient.
void model_backward(ls_model *m, float loss_scale, float smoothing);

// Zeroes the gradient buffer (under model_enable_head_grads: the head's part).
void model_zero_grad(ls_model *m);

// ----------------------------------------------------------------------------
// encoder family: sequence classification (engine/encoder.c)
//
// Embeddings: LN(word[tok] + position[t + position_offset] + type[type]) (HF
// RoBERTa numbers positions by the kept tokens: the same for right padding,
// which is what the key mask is meant for);
// layer l (post-LN, bidirectional attention over the kept keys):
//   x2 = LN1(x + O(attn(QKV(x), keymask)));  x3 = LN2(x2 + DOWN(gelu_erf(FC(x2))))
// Head (HF's BertForSequenceClassification / RobertaClassificationHead):
//   pooling cls: logits = W_cls tanh(W_head h[0] + b_head) + b_cls
//   pooling mean: logits = W_cls mean_kept(h) + b_cls
// HF's dropout layers are identities here (PyTorch's eval()) unless
// model_set_hidden_dropout gives them a probability; LoRA's own dropout and
// that hidden dropout apply while training.

// Forward over tokens (B,T) with token types (B,T) (NULL: all 0) and key
// padding mask (B,T) (1 = token, 0 = padding; NULL: all tokens), host ints.
// With labels (B) (host; < 0 ignores a sequence) returns the mean
// cross-entropy of the classifier logits over the counted sequences; without
// (NULL) returns 0. Logits stay in m->acts.clogits (B, num_labels), the hidden
// states of layer l in m->acts.ln2 + l*B*T*C (model_hidden_states).
// Requires an encoder model and model_reserve(m, >=B, >=T); returns -1.0f with
// ls_error() on bad sizes, ids, types or a family that is not an encoder.
float model_classify_forward(ls_model *m, const int *tokens, const int *types, const int *keymask,
                             const int *labels, int B, int T);

// Backward of the last model_classify_forward (which had labels) for
// loss_scale * loss: ACCUMULATES into the attached LoRA's gradients and into
// m's gradient buffer where enabled (all of it with model_enable_grads, the
// head's PEFT modules_to_save part with model_enable_head_grads).
void model_classify_backward(ls_model *m, float loss_scale);

// Hidden states of the last forward into host (B,T,C): layer = -1 the
// embeddings' output, 0..L-1 that layer's output. Returns 0 or -1.
int model_hidden_states(const ls_model *m, int layer, float *host_out);

// Classifier logits of the last forward into host (B, num_labels).
void model_class_logits(const ls_model *m, float *host_out);

// Encoder, LoRA training: allocates the gradient buffer but trains only
// PEFT's modules_to_save of the head (bert: classifier; roberta: the whole
// classifier head); the base stays frozen. Idempotent; model_enable_grads
// afterwards switches to full fine-tuning.
void model_enable_head_grads(ls_model *m);

// Bert: puts the pooler dense into the head's modules_to_save beside the
// classifier (PEFT's modules_to_save = ["classifier", "pooler"]), so that
// model_enable_head_grads trains it and model_head_to_adapter saves it. Call
// before model_enable_head_grads. Returns 0, or -1 with ls_error() for a
// model without a pooler (decoders; roberta's head dense is trained already).
int model_head_train_pooler(ls_model *m);

// The head's trainable tensors under model_enable_head_grads as segments
// (offsets into params_memory / grads_memory) with decay flags, into segs
// (capacity 4). Returns the count (0 for a decoder).
int model_head_segments(const ls_model *m, ls_param_segment *segs);

// Appends the head's PEFT modules_to_save tensors (bert: classifier.weight,
// classifier.bias, with bert.pooler.dense.* under model_head_train_pooler; roberta: classifier.dense.* and classifier.out_proj.*) to
// an adapter (io/adapter.h) as PEFT saves them. Returns 0, or -1 for a decoder.
int model_head_to_adapter(const ls_model *m, lora_adapter *a);

// Copies an adapter's saved head tensors into the model (shapes checked
// first: nothing is written on error). Returns 0, or -1 with ls_error().
int model_head_from_adapter(ls_model *m, const lora_adapter *a);

// (Re)initialises the classification head as HF does for a new head: weights
// N(0, init_range^2), biases 0, from `seed`. Only the classifier (and, for
// bert, the pooler only when `pooler_too`). Returns 0, or -1 for a decoder.
int model_init_head(ls_model *m, uint64_t seed, int pooler_too);

// ----------------------------------------------------------------------------
// generation (KV cache, one sequence)

// Runs token `token` at position `pos` (0-based, pos + model_cache_offset <
// max_seq_len) through the model, appending its keys/values to the cache
// (positions 0..pos-1 must have been run before, in order). Returns the host
// logits (V), valid until the next call. Uses the attached LoRA unless it is
// merged, and an attached prefix (prefix.h): at pos 0 its keys and values
// fill cache slots 0..l_p-1, and token pos sits at slot and position l_p + pos,
// as with transformers' cache. Attached virtual tokens (prompt.h) the same:
// at pos 0 their keys and values (prompt_cache_rows) fill slots 0..l_p-1.
// Returns NULL on bad input.
const float *model_decode(ls_model *m, int token, int pos);

// The same for nb sequences at once (beam search's beams), all at position
// pos: sequence b runs tokens[b] on the cache of lane lanes[b] (distinct,
// 0 <= lanes[b] < 256; its positions 0..pos-1 run before). One pass over the
// weights for all nb rows. Returns the host logits (nb, V), valid until the
// next call, or NULL on bad input. model_decode is lane 0 of it.
const float *model_decode_lanes(ls_model *m, int nb, const int *lanes, const int *tokens, int pos);

// Runs tokens[0..n) through the model in one forward (model_forward's path,
// B = 1) and leaves their keys and values (with a prefix's or the virtual
// tokens' before them) in lane `lane`'s cache, as n model_decode calls would;
// returns the host logits (V) after the last token, valid until the next
// call, or NULL. Uses the training activations (model_reserve for (1, n)).
const float *model_prefill(ls_model *m, const int *tokens, int n, int lane);

// Lane src's cache rows 0..rows-1 (every layer) -> lane dst (a beam's child
// taking its parent's history).
void model_copy_lane(ls_model *m, int dst, int src, int rows);

// Sizes the decode buffers for n_ctx positions and `lanes` sequences
// (model_decode grows them as needed; this avoids growing step by step).
void model_decode_reserve(ls_model *m, int n_ctx, int lanes);

// Training memory: the LM head and the loss run over `rows` rows at a time
// (0: all N at once), so that the (N, V) logits never exist whole. A forward
// with targets then computes the loss chunk by chunk; in training mode with
// the head frozen (LoRA, adapters, prefixes, BitFit) it also runs the head's
// backward for each chunk (d lnf, scaled by model_backward's loss_scale
// later), otherwise model_backward recomputes each chunk's logits. A forward
// without targets is refused (its callers read acts.logits whole): set 0
// first. Re-sizes the activations when they are allocated. Returns 0 or -1.
int model_set_loss_chunk(ls_model *m, int rows);
// The chunk `train` uses when the head is frozen: about 32M logits (128 MB)
// a chunk, at least 64 rows; an encoder has no LM head: 0.
int model_loss_chunk_rows(const ls_model *m);
// 1 when the LM head's weight trains (full fine-tuning), else 0.
int model_head_trains(const ls_model *m);

// Prompt tuning (prompt.h): l_p with virtual tokens attached, else 0. Real
// token t of a row sits at l_p + t of the model's sequence: in a forward's
// per-position outputs (acts.logits, host_losses, host_weights: rows of
// m->T = l_p + T) and in the KV cache (model_decode's pos stays the real
// token's index).
int model_virtual_tokens(const ls_model *m);

// Layer l's keys (RoPE applied) and values of positions 0..rows-1 of the first
// row of the last model_forward (B = 1: rows of m->T positions) -> keys,
// values (rows, NKV HS) in backend memory: the KV cache those positions leave.
void model_kv_rows(const ls_model *m, int l, int rows, float *keys, float *values);

// Cache slots before a sequence's first token: an attached prefix's or
// virtual tokens' l_p, else 0.
// Token pos's keys and values are cache row model_cache_offset(m) + pos.
int model_cache_offset(const ls_model *m);

typedef struct ls_sampler ls_sampler;

// llama2.c's generate(): starts from prompt[0] (usually BOS) at position 0;
// while pos < steps, runs the current token and takes as next token the
// prompt's next token while the prompt lasts (forced), else a sample
// (sampler NULL or temperature 0: argmax). Stops early when the next token is
// stop_token (-1: never); the stop token is not stored. out (capacity
// steps + 1) gets prompt[0] and every next token; returns how many tokens
// out holds, or -1 on bad input.
int model_generate(ls_model *m, const int *prompt, int n_prompt, int steps,
                   ls_sampler *sampler, int stop_token, int *out);

// ----------------------------------------------------------------------------
// optimiser support

// Fills segs (capacity LS_N_PARAM_TENSORS) with the parameter buffer split by
// tensor type: matrices and embeddings decayed, biases and norm weights not
// (HF Trainer's grouping). Pass to adamw_set_segments (optim.h) for full
// fine-tuning. Returns the number of segments.
int model_decay_segments(const ls_model *m, ls_param_segment *segs);

// ----------------------------------------------------------------------------
// counting

// Number of base parameters as HF counts them (a tied head counted once).
size_t model_num_params(const ls_model *m);

#endif
