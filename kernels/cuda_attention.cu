// cuda_attention: causal self-attention with grouped-query heads (Ainslie et
// al. 2023), and the encoder family's bidirectional self-attention under a key
// padding mask (Devlin et al. 2019), flash style (Dao et al. 2022): tiled over
// queries and keys with an online softmax, so no T x T matrix ever reaches
// global memory. Both run the same three kernels; only which keys a query
// sees differs (see key_visible).
//
// Storage contract with the model (see cuda_backend.h, and the att buffer
// contract in engine/backend.h; lsc_attention_sizes states the sizes):
// attention_forward writes into `att` only
//   lse (B,NH,T)       logsumexp of the scaled scores of each query row, and,
//   o   (B,NH,T,HS)    a copy of the output, when T > HS (it then fits after lse),
// and attention_backward recomputes P = exp(S - lse) tile by tile. It needs
// D_i = sum_j P_ij dP_ij = dO_i . O_i: from the copy of O when there is one,
// else by one more pass over the keys. D goes to datt[0 .. B*NH*T).
//
// Bidirectional attention (attention_bidir_*, NKV = NH): every query row,
// padding rows too, sees every key the mask keeps, as the CPU backend
// (ops_cpu_encoder.c). Keys after a sequence's last kept key are never
// loaded; a sequence with no kept key gets out = 0 and zero gradients (its
// rows keep l = 0, lse = -inf, and no key is ever visible to them).
//
// Parallel layout. Forward and dQ: a block owns BR query rows of one (b, h),
// a warp RW of them; keys come in tiles of 32 through shared memory, lane j
// scoring key j, then lane d accumulating output dims d, d+32, ... dK/dV: a
// block owns BR keys of one (b, kv head) and loops over the query heads that
// share it and over the query tiles after it; lane i scores query i. Every
// output element is written by exactly one thread: no atomics, the same bits
// on every run. Head sizes up to 128 (buckets 32, 64, 128; shared memory stays
// under the 48 KiB static limit). At precision bf16, where the tensor-core
// kernels apply (cuda_attention_tc.cu: T > HS, HS a multiple of 16), they
// run instead, under the same contract.
#include "cuda_common.cuh"

#define ATT_WARPS 4
#define ATT_THREADS (ATT_WARPS * LSC_WARP)
#define ATT_KT 32 // keys per tile (forward, dQ) and queries per tile (dK/dV)

// Rows per warp of each kernel for head-size bucket HSP.
template <int HSP> struct att_rows {
    static const int fwd = HSP <= 64 ? 8 : 4;
    static const int dq = HSP <= 64 ? 8 : 2;
    static const int dkv = HSP <= 64 ? 8 : 2;
};

// ----------------------------------------------------------------------------
// forward

// qkv (B,T,NH+2NKV,HS) -> out (B,T,NH,HS), lse (B,NH,T), ostash (B,NH,T,HS) or NULL.
// grid (query tiles, NH, B), ATT_THREADS threads.
// keymask (B,T) or NULL and causal = 0 for the bidirectional attention.
template <int HSP>
__global__ void attention_forward_kernel(float *out, float *lse, float *ostash, const float *qkv,
                                         const int *keymask, int causal, int T, int NH, int NKV,
                                         int HS, float scale) {
    const int D = HSP / LSC_WARP, RW = att_rows<HSP>::fwd, BR = ATT_WARPS * RW;
    __shared__ float Qs[BR][HSP];
    __shared__ float Ks[ATT_KT][HSP + 1]; // +1: lane j reads row j without bank conflicts
    __shared__ float Vs[ATT_KT][HSP];
    int tid = (int)threadIdx.x, lane = tid % LSC_WARP, warp = tid / LSC_WARP;
    int ntiles = (T + BR - 1) / BR;
    int tile = ntiles - 1 - (int)blockIdx.x; // the longest rows first
    int h = (int)blockIdx.y, b = (int)blockIdx.z, kh = h / (NH / NKV);
    size_t row = (size_t)(NH + 2 * NKV) * HS;
    const float *base = qkv + (size_t)b * T * row;
    int q0 = tile * BR;

    for (int i = tid; i < BR * HSP; i += ATT_THREADS) {
        int r = i / HSP, d = i % HSP, t = q0 + r;
        Qs[r][d] = t < T && d < HS ? base[(size_t)t * row + (size_t)h * HS + d] : 0.0f;
    }
    float m[RW], l[RW], acc[RW][D];
    LSC_UNROLL
    for (int i = 0; i < RW; i++) {
        m[i] = -INFINITY;
        l[i] = 0.0f;
        LSC_UNROLL
        for (int dd = 0; dd < D; dd++) acc[i][dd] = 0.0f;
    }
    const int *km = keymask ? keymask + (size_t)b * T : NULL;
    int k_end = keys_end(km, T, causal, lsc_imin(q0 + BR, T) - 1);
    for (int k0 = 0; k0 < k_end; k0 += ATT_KT) {
        __syncthreads(); // the previous tile is consumed (and Qs is loaded)
        for (int i = tid; i < ATT_KT * HSP; i += ATT_THREADS) {
            int j = i / HSP, d = i % HSP, t2 = k0 + j;
            int ok = t2 < T && d < HS;
            Ks[j][d] = ok ? base[(size_t)t2 * row + (size_t)(NH + kh) * HS + d] : 0.0f;
            Vs[j][d] = ok ? base[(size_t)t2 * row + (size_t)(NH + NKV + kh) * HS + d] : 0.0f;
        }
        __syncthreads();
        int t2 = k0 + lane, key_in = t2 < k_end;
        LSC_UNROLL
        for (int i = 0; i < RW; i++) {
            int r = warp * RW + i, t = q0 + r;
            float s = 0.0f;
            for (int d = 0; d < HS; d++) s += Qs[r][d] * Ks[lane][d];
            s *= scale;
            int valid = t < T && key_in && key_visible(km, causal, t, t2);
            s = valid ? s : -INFINITY;
            float m_new = fmaxf(m[i], lsc_warp_max(s));
            float p = valid ? expf(s - m_new) : 0.0f;
            // rows past T (and rows of a sequence without kept keys) see no
            // valid key: m stays -inf, and nothing becomes NaN
            float corr = m[i] == -INFINITY ? 0.0f : expf(m[i] - m_new);
            l[i] = l[i] * corr + lsc_warp_sum(p);
            m[i] = m_new;
            LSC_UNROLL
            for (int dd = 0; dd < D; dd++) acc[i][dd] *= corr;
            for (int j = 0; j < ATT_KT; j++) {
                float pj = __shfl_sync(LSC_FULL_MASK, p, j);
                LSC_UNROLL
                for (int dd = 0; dd < D; dd++) acc[i][dd] += pj * Vs[j][lane + LSC_WARP * dd];
            }
        }
    }
    LSC_UNROLL
    for (int i = 0; i < RW; i++) {
        int t = q0 + warp * RW + i;
        if (t >= T) continue;
        float inv = l[i] > 0.0f ? 1.0f / l[i] : 0.0f; // no kept key: out = 0
        LSC_UNROLL
        for (int dd = 0; dd < D; dd++) {
            int d = lane + LSC_WARP * dd;
            if (d >= HS) continue;
            float o = acc[i][dd] * inv;
            out[((size_t)b * T + t) * NH * HS + (size_t)h * HS + d] = o;
            if (ostash) ostash[(((size_t)b * NH + h) * T + t) * HS + d] = o;
        }
        if (lane == 0) lse[((size_t)b * NH + h) * T + t] = l[i] > 0.0f ? m[i] + logf(l[i]) : -INFINITY;
    }
}

// ----------------------------------------------------------------------------
// backward

// D (B,NH,T) = rowwise dot of dout (B,T,NH,HS) with ostash (B,NH,T,HS); a warp per row
__global__ void attention_delta_kernel(float *Dvec, const float *dout, const float *ostash, int B,
                                       int T, int NH, int HS) {
    int lane = (int)threadIdx.x % LSC_WARP;
    size_t r = (size_t)blockIdx.x * (blockDim.x / LSC_WARP) + threadIdx.x / LSC_WARP;
    if (r >= (size_t)B * NH * T) return;
    int t = (int)(r % T);
    size_t bh = r / T;
    int h = (int)(bh % NH), b = (int)(bh / NH);
    const float *o = ostash + r * HS;
    const float *g = dout + ((size_t)b * T + t) * NH * HS + (size_t)h * HS;
    float s = 0.0f;
    for (int d = lane; d < HS; d += LSC_WARP) s += g[d] * o[d];
    s = lsc_warp_sum(s);
    if (lane == 0) Dvec[r] = s;
}

// dQ of BR query rows of (b, h): dQ_i = sum_j P_ij (dP_ij - D_i) scale K_j.
// With compute_d, first D_i = sum_j P_ij dP_ij by a pass over the keys (written
// to Dvec for the dK/dV kernel). grid (query tiles, NH, B).
template <int HSP>
__global__ void attention_backward_dq_kernel(float *dqkv, float *Dvec, const float *lse,
                                             const float *dout, const float *qkv,
                                             const int *keymask, int causal, int T, int NH,
                                             int NKV, int HS, float scale, int compute_d) {
    const int D = HSP / LSC_WARP, RW = att_rows<HSP>::dq, BR = ATT_WARPS * RW;
    __shared__ float Qs[BR][HSP];
    __shared__ float dOs[BR][HSP];
    __shared__ float Ks[ATT_KT][HSP + 1];
    __shared__ float Vs[ATT_KT][HSP + 1];
    int tid = (int)threadIdx.x, lane = tid % LSC_WARP, warp = tid / LSC_WARP;
    int ntiles = (T + BR - 1) / BR;
    int tile = ntiles - 1 - (int)blockIdx.x;
    int h = (int)blockIdx.y, b = (int)blockIdx.z, kh = h / (NH / NKV);
    size_t row = (size_t)(NH + 2 * NKV) * HS;
    const float *base = qkv + (size_t)b * T * row;
    int q0 = tile * BR;

    for (int i = tid; i < BR * HSP; i += ATT_THREADS) {
        int r = i / HSP, d = i % HSP, t = q0 + r;
        int ok = t < T && d < HS;
        Qs[r][d] = ok ? base[(size_t)t * row + (size_t)h * HS + d] : 0.0f;
        dOs[r][d] = ok ? dout[((size_t)b * T + t) * NH * HS + (size_t)h * HS + d] : 0.0f;
    }
    float L[RW], Dr[RW], acc[RW][D];
    LSC_UNROLL
    for (int i = 0; i < RW; i++) {
        int t = q0 + warp * RW + i;
        size_t ri = ((size_t)b * NH + h) * T + t;
        L[i] = t < T ? lse[ri] : 0.0f;
        Dr[i] = t < T && !compute_d ? Dvec[ri] : 0.0f;
        LSC_UNROLL
        for (int dd = 0; dd < D; dd++) acc[i][dd] = 0.0f;
    }
    const int *km = keymask ? keymask + (size_t)b * T : NULL;
    int k_end = keys_end(km, T, causal, lsc_imin(q0 + BR, T) - 1);
    for (int pass = compute_d ? 0 : 1; pass < 2; pass++) {
        float part[RW];
        LSC_UNROLL
        for (int i = 0; i < RW; i++) part[i] = 0.0f;
        for (int k0 = 0; k0 < k_end; k0 += ATT_KT) {
            __syncthreads();
            for (int i = tid; i < ATT_KT * HSP; i += ATT_THREADS) {
                int j = i / HSP, d = i % HSP, t2 = k0 + j;
                int ok = t2 < T && d < HS;
                Ks[j][d] = ok ? base[(size_t)t2 * row + (size_t)(NH + kh) * HS + d] : 0.0f;
                Vs[j][d] = ok ? base[(size_t)t2 * row + (size_t)(NH + NKV + kh) * HS + d] : 0.0f;
            }
            __syncthreads();
            int t2 = k0 + lane, key_in = t2 < k_end;
            LSC_UNROLL
            for (int i = 0; i < RW; i++) {
                int r = warp * RW + i, t = q0 + r;
                float s = 0.0f, dp = 0.0f;
                for (int d = 0; d < HS; d++) {
                    s += Qs[r][d] * Ks[lane][d];
                    dp += dOs[r][d] * Vs[lane][d];
                }
                s *= scale;
                int valid = t < T && key_in && key_visible(km, causal, t, t2);
                float p = valid ? expf(s - L[i]) : 0.0f;
                if (pass == 0) {
                    part[i] += p * dp;
                    continue;
                }
                float ds = p * (dp - Dr[i]) * scale;
                for (int j = 0; j < ATT_KT; j++) {
                    float dsj = __shfl_sync(LSC_FULL_MASK, ds, j);
                    LSC_UNROLL
                    for (int dd = 0; dd < D; dd++) acc[i][dd] += dsj * Ks[j][lane + LSC_WARP * dd];
                }
            }
        }
        if (pass == 0) {
            LSC_UNROLL
            for (int i = 0; i < RW; i++) {
                int t = q0 + warp * RW + i;
                Dr[i] = lsc_warp_sum(part[i]);
                if (lane == 0 && t < T) Dvec[((size_t)b * NH + h) * T + t] = Dr[i];
            }
        }
    }
    LSC_UNROLL
    for (int i = 0; i < RW; i++) {
        int t = q0 + warp * RW + i;
        if (t >= T) continue;
        LSC_UNROLL
        for (int dd = 0; dd < D; dd++) {
            int d = lane + LSC_WARP * dd;
            if (d < HS) dqkv[((size_t)b * T + t) * row + (size_t)h * HS + d] = acc[i][dd];
        }
    }
}

// dK, dV of BR keys of (b, kv head kh), summed over the query heads of its
// group in head order and over query tiles in order:
//   dV_j = sum_i P_ij dO_i,  dK_j = sum_i P_ij (dP_ij - D_i) scale Q_i.
// Causal: only the query tiles from the block's first key on; bidirectional:
// all of them, and none for a block past the last kept key (zeros).
// grid (key tiles, NKV, B).
template <int HSP>
__global__ void attention_backward_dkv_kernel(float *dqkv, const float *Dvec, const float *lse,
                                              const float *dout, const float *qkv,
                                              const int *keymask, int causal, int T, int NH,
                                              int NKV, int HS, float scale) {
    const int D = HSP / LSC_WARP, RW = att_rows<HSP>::dkv, BR = ATT_WARPS * RW;
    __shared__ float Ks[BR][HSP];
    __shared__ float Vs[BR][HSP];
    __shared__ float Qs[ATT_KT][HSP + 1];
    __shared__ float dOs[ATT_KT][HSP + 1];
    __shared__ float Ls[ATT_KT];
    __shared__ float Ds[ATT_KT];
    int tid = (int)threadIdx.x, lane = tid % LSC_WARP, warp = tid / LSC_WARP;
    int kh = (int)blockIdx.y, b = (int)blockIdx.z, group = NH / NKV;
    size_t row = (size_t)(NH + 2 * NKV) * HS;
    const float *base = qkv + (size_t)b * T * row;
    int k0 = (int)blockIdx.x * BR; // the first keys have the most queries: they start first
    const int *km = keymask ? keymask + (size_t)b * T : NULL;
    int k_end = keys_end(km, T, causal, T - 1);
    int q_first = causal ? k0 / ATT_KT * ATT_KT : k0 < k_end ? 0 : T;

    for (int i = tid; i < BR * HSP; i += ATT_THREADS) {
        int r = i / HSP, d = i % HSP, t = k0 + r;
        int ok = t < T && d < HS;
        Ks[r][d] = ok ? base[(size_t)t * row + (size_t)(NH + kh) * HS + d] : 0.0f;
        Vs[r][d] = ok ? base[(size_t)t * row + (size_t)(NH + NKV + kh) * HS + d] : 0.0f;
    }
    float dk[RW][D], dv[RW][D];
    LSC_UNROLL
    for (int i = 0; i < RW; i++)
        LSC_UNROLL
        for (int dd = 0; dd < D; dd++) dk[i][dd] = dv[i][dd] = 0.0f;

    for (int h = kh * group; h < (kh + 1) * group; h++) {
        for (int q0 = q_first; q0 < T; q0 += ATT_KT) {
            __syncthreads();
            for (int i = tid; i < ATT_KT * HSP; i += ATT_THREADS) {
                int r = i / HSP, d = i % HSP, t = q0 + r;
                int ok = t < T && d < HS;
                Qs[r][d] = ok ? base[(size_t)t * row + (size_t)h * HS + d] : 0.0f;
                dOs[r][d] = ok ? dout[((size_t)b * T + t) * NH * HS + (size_t)h * HS + d] : 0.0f;
            }
            if (tid < ATT_KT) {
                int t = q0 + tid;
                size_t ri = ((size_t)b * NH + h) * T + t;
                Ls[tid] = t < T ? lse[ri] : 0.0f;
                Ds[tid] = t < T ? Dvec[ri] : 0.0f;
            }
            __syncthreads();
            int tq = q0 + lane;
            LSC_UNROLL
            for (int i = 0; i < RW; i++) {
                int r = warp * RW + i, tk = k0 + r;
                float s = 0.0f, dp = 0.0f;
                for (int d = 0; d < HS; d++) {
                    s += Qs[lane][d] * Ks[r][d];
                    dp += dOs[lane][d] * Vs[r][d];
                }
                s *= scale;
                int valid = tq < T && tk < k_end && key_visible(km, causal, tq, tk);
                float p = valid ? expf(s - Ls[lane]) : 0.0f;
                float ds = p * (dp - Ds[lane]) * scale;
                for (int qi = 0; qi < ATT_KT; qi++) {
                    float pq = __shfl_sync(LSC_FULL_MASK, p, qi);
                    float dsq = __shfl_sync(LSC_FULL_MASK, ds, qi);
                    LSC_UNROLL
                    for (int dd = 0; dd < D; dd++) {
                        dv[i][dd] += pq * dOs[qi][lane + LSC_WARP * dd];
                        dk[i][dd] += dsq * Qs[qi][lane + LSC_WARP * dd];
                    }
                }
            }
        }
    }
    LSC_UNROLL
    for (int i = 0; i < RW; i++) {
        int tk = k0 + warp * RW + i;
        if (tk >= T) continue;
        LSC_UNROLL
        for (int dd = 0; dd < D; dd++) {
            int d = lane + LSC_WARP * dd;
            if (d >= HS) continue;
            dqkv[((size_t)b * T + tk) * row + (size_t)(NH + kh) * HS + d] = dk[i][dd];
            dqkv[((size_t)b * T + tk) * row + (size_t)(NH + NKV + kh) * HS + d] = dv[i][dd];
        }
    }
}

// ----------------------------------------------------------------------------
// decode: one query token against the cache, one block per query head

// q (NH,HS), k_cache, v_cache (n_ctx,NKV,HS) -> out (NH,HS); att (NH,n_ctx) scratch
__global__ void attention_decode_kernel(float *out, float *att, const float *q,
                                        const float *k_cache, const float *v_cache, int n_ctx,
                                        int NH, int NKV, int HS, float scale) {
    __shared__ float sh[32];
    int tid = (int)threadIdx.x, nt = (int)blockDim.x;
    int h = (int)blockIdx.x, kh = h / (NH / NKV);
    size_t row = (size_t)NKV * HS;
    const float *qh = q + (size_t)h * HS;
    float *a = att + (size_t)h * n_ctx;
    float mx = -INFINITY;
    for (int t = tid; t < n_ctx; t += nt) {
        const float *k = k_cache + (size_t)t * row + (size_t)kh * HS;
        float s = 0.0f;
        for (int i = 0; i < HS; i++) s += qh[i] * k[i];
        s *= scale;
        a[t] = s;
        mx = fmaxf(mx, s);
    }
    mx = lsc_block_max(mx, sh);
    float sum = 0.0f;
    for (int t = tid; t < n_ctx; t += nt) {
        float e = expf(a[t] - mx);
        a[t] = e;
        sum += e;
    }
    sum = lsc_block_sum(sum, sh); // its barriers also publish every a[t]
    float inv = 1.0f / sum;
    for (int d = tid; d < HS; d += nt) {
        float o = 0.0f;
        for (int t = 0; t < n_ctx; t++) {
            float w = a[t] * inv;
            o += w * v_cache[(size_t)t * row + (size_t)kh * HS + d];
        }
        out[(size_t)h * HS + d] = o;
    }
}

// ----------------------------------------------------------------------------
// host side

static int head_bucket(int HS) {
    if (HS <= 32) return 32;
    if (HS <= 64) return 64;
    if (HS <= 128) return 128;
    char msg[96];
    snprintf(msg, sizeof msg, "head size %d exceeds 128, the limit of the CUDA kernels", HS);
    lsc_die("attention", msg, __FILE__, __LINE__);
    return 0;
}

// Which keys a query sees: keymask (B,T) or NULL, causal 1 for the decoder.
typedef struct {
    const int *keymask;
    int causal;
} att_keys;

template <int HSP>
static void launch_forward(float *out, float *lse, float *ostash, const float *qkv, att_keys k,
                           int B, int T, int NH, int NKV, int HS, float scale) {
    const int BR = ATT_WARPS * att_rows<HSP>::fwd;
    dim3 grid(lsc_cdiv((size_t)T, BR), (unsigned)NH, (unsigned)B);
    LSC_LAUNCH(attention_forward_kernel<HSP>, grid, ATT_THREADS, out, lse, ostash, qkv, k.keymask,
               k.causal, T, NH, NKV, HS, scale);
}

template <int HSP>
static void launch_backward(float *dqkv, float *Dvec, const float *lse, const float *dout,
                            const float *qkv, att_keys k, int B, int T, int NH, int NKV, int HS,
                            float scale, int compute_d) {
    const int BQ = ATT_WARPS * att_rows<HSP>::dq, BK = ATT_WARPS * att_rows<HSP>::dkv;
    dim3 gq(lsc_cdiv((size_t)T, BQ), (unsigned)NH, (unsigned)B);
    LSC_LAUNCH(attention_backward_dq_kernel<HSP>, gq, ATT_THREADS, dqkv, Dvec, lse, dout, qkv,
               k.keymask, k.causal, T, NH, NKV, HS, scale, compute_d);
    dim3 gk(lsc_cdiv((size_t)T, BK), (unsigned)NKV, (unsigned)B);
    LSC_LAUNCH(attention_backward_dkv_kernel<HSP>, gk, ATT_THREADS, dqkv, Dvec, lse, dout, qkv,
               k.keymask, k.causal, T, NH, NKV, HS, scale);
}

// The output copy is kept when T > HS: where, with att sized (B,NH,T,T) as
// the CPU's probabilities, it fitted after lse. For T <= HS the backward
// computes D with one more pass over the keys instead; keeping that rule keeps
// the bits of every shape.
static int has_output_copy(int T, int HS) { return T > HS; }

// att: lse (B,NH,T) [+ the output copy (B,NH,T,HS)]; datt: D (B,NH,T).
void lsc_attention_sizes(int B, int T, int NH, int HS, size_t *att, size_t *datt) {
    size_t rows = (size_t)B * NH * T;
    *att = rows * (has_output_copy(T, HS) ? 1 + (size_t)HS : 1);
    *datt = rows;
}

// qkv (B,T,NH+2NKV,HS) -> out (B,T,NH,HS); att receives lse (+ a copy of out)
static void attention_forward(float *out, float *att, const float *qkv, att_keys k, int B, int T,
                              int NH, int NKV, int HS) {
    if (B <= 0 || T <= 0) return;
    size_t rows = (size_t)B * NH * T;
    float *lse = att, *ostash = has_output_copy(T, HS) ? att + rows : NULL;
    float scale = 1.0f / sqrtf((float)HS);
    if (lsc_attention_tc_usable(T, HS)) { // bf16 tensor cores (cuda_attention_tc.cu)
        lsc_attention_tc_forward(out, lse, ostash, qkv, k.keymask, k.causal, B, T, NH, NKV, HS, scale);
        return;
    }
    switch (head_bucket(HS)) {
    case 32: launch_forward<32>(out, lse, ostash, qkv, k, B, T, NH, NKV, HS, scale); break;
    case 64: launch_forward<64>(out, lse, ostash, qkv, k, B, T, NH, NKV, HS, scale); break;
    default: launch_forward<128>(out, lse, ostash, qkv, k, B, T, NH, NKV, HS, scale); break;
    }
}

// dout (B,T,NH,HS) -> dqkv (B,T,NH+2NKV,HS) overwritten; datt scratch holds D
static void attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv,
                               const float *att, att_keys k, int B, int T, int NH, int NKV,
                               int HS) {
    if (B <= 0 || T <= 0) return;
    size_t rows = (size_t)B * NH * T;
    const float *lse = att;
    float *Dvec = datt;
    float scale = 1.0f / sqrtf((float)HS);
    int compute_d = !has_output_copy(T, HS);
    if (!compute_d)
        LSC_LAUNCH(attention_delta_kernel, lsc_cdiv(rows, 8), 256, Dvec, dout, att + rows, B, T,
                   NH, HS);
    if (lsc_attention_tc_usable(T, HS)) { // bf16 tensor cores (cuda_attention_tc.cu)
        lsc_attention_tc_backward(dqkv, Dvec, lse, dout, qkv, k.keymask, k.causal, B, T, NH, NKV, HS, scale);
        return;
    }
    switch (head_bucket(HS)) {
    case 32: launch_backward<32>(dqkv, Dvec, lse, dout, qkv, k, B, T, NH, NKV, HS, scale, compute_d); break;
    case 64: launch_backward<64>(dqkv, Dvec, lse, dout, qkv, k, B, T, NH, NKV, HS, scale, compute_d); break;
    default: launch_backward<128>(dqkv, Dvec, lse, dout, qkv, k, B, T, NH, NKV, HS, scale, compute_d); break;
    }
}

void lsc_attention_forward(float *out, float *att, const float *qkv, int B, int T, int NH,
                           int NKV, int HS) {
    att_keys k = {NULL, 1};
    attention_forward(out, att, qkv, k, B, T, NH, NKV, HS);
}

void lsc_attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv,
                            const float *att, int B, int T, int NH, int NKV, int HS) {
    att_keys k = {NULL, 1};
    attention_backward(dqkv, datt, dout, qkv, att, k, B, T, NH, NKV, HS);
}

// qkv (B,T,3NH,HS), keymask (B,T) or NULL -> out (B,T,NH,HS); att as the causal
// forward's (lse and the output copy: the same attention_sizes), not the CPU's
// probabilities
void lsc_attention_bidir_forward(float *out, float *att, const float *qkv, const int *keymask,
                                 int B, int T, int NH, int HS) {
    att_keys k = {keymask, 0};
    attention_forward(out, att, qkv, k, B, T, NH, NH, HS);
}

// dout (B,T,NH,HS) -> dqkv (B,T,3NH,HS) overwritten; datt scratch holds D
void lsc_attention_bidir_backward(float *dqkv, float *datt, const float *dout, const float *qkv,
                                  const float *att, const int *keymask, int B, int T, int NH,
                                  int HS) {
    att_keys k = {keymask, 0};
    attention_backward(dqkv, datt, dout, qkv, att, k, B, T, NH, NH, HS);
}

void lsc_attention_decode(float *out, float *att, const float *q, const float *k_cache,
                          const float *v_cache, int n_ctx, int NH, int NKV, int HS) {
    if (n_ctx <= 0 || NH <= 0) return;
    float scale = 1.0f / sqrtf((float)HS);
    LSC_LAUNCH(attention_decode_kernel, (unsigned)NH, 128, out, att, q, k_cache, v_cache, n_ctx,
               NH, NKV, HS, scale);
}
