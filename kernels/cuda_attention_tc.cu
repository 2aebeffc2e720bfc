// cuda_attention_tc: the attention of cuda_attention.cu on bf16 tensor cores
// (warp matrix multiply-accumulate, 16 x 16 x 16, fp32 accumulation), for
// precision bf16: causal with grouped-query heads and bidirectional under a
// key padding mask, forward and a deterministic backward (no atomics).
//
// The same contract as the CUDA-core kernels (cuda_attention.cu): inputs and
// outputs fp32; att holds lse (B,NH,T) and the output copy (B,NH,T,HS), so this
// path runs only where that copy exists (T > HS); D = rowsum(dO o O) comes
// from it. Q, K, V, dO are rounded to bf16 as tiles enter shared memory, and
// so are the probabilities P and dS = P (dP - D) before their products; every
// sum (scores, the online softmax's statistics, O, dQ, dK, dV) stays fp32.
//
// Layout. Tiles of 32 keys (forward, dQ) or 32 queries (dK/dV) pass through
// shared memory; each warp owns 16 rows (queries, or keys for dK/dV) and keeps
// its accumulators (O, dQ, dK, dV) in shared memory, fp32, loaded into and
// stored from accumulator fragments around each tile's products — fragment
// element layouts are unspecified, so every row-wise step (softmax, its
// rescaling, masking) runs on shared memory, a lane pair per row. Head sizes
// that are multiples of 16 up to 128, padded with zeros to the bucket (32,
// 64, 128); warps per block keep shared memory under the 48 KiB static limit.
// Every output element is written by one thread, in a fixed order: the same
// bits on every run.
#include "cuda_common.cuh"

namespace wmma = nvcuda::wmma;
typedef __nv_bfloat16 lsc_bf16;

#define TC_KT 32 // keys per tile (forward, dQ), queries per tile (dK/dV)

typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, lsc_bf16, wmma::row_major> tc_a;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, lsc_bf16, wmma::col_major> tc_bt; // B^T stored row-major
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, lsc_bf16, wmma::row_major> tc_b;
typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> tc_c;

// Warps per block of each kernel for head-size bucket HSP.
template <int HSP> struct tc_warps {
    static const int fwd = HSP <= 64 ? 4 : 2;
    static const int dq = HSP <= 32 ? 4 : HSP <= 64 ? 2 : 1;
    static const int dkv = HSP <= 64 ? 2 : 1;
};

// rows (rows, HSP) bf16 <- head `col` of rows r0.. of one sequence's qkv-like
// tensor (row stride `stride` floats, head offset col * HS); zeros past T or HS.
__device__ __forceinline__ void tc_load_rows(lsc_bf16 *dst, const float *src, size_t stride, int col, int r0,
                                             int rows, int T, int HS, int HSP, int tid, int nt) {
    for (int i = tid; i < rows * HSP; i += nt) {
        int r = i / HSP, d = i % HSP, t = r0 + r;
        dst[i] = __float2bfloat16(t < T && d < HS ? src[(size_t)t * stride + (size_t)col * HS + d] : 0.0f);
    }
}

// C (16, 16 n_tiles) of one warp, row-major with leading dimension ldc, =
// A (16, 16 k_tiles) B^T, A row-major (lda), B (16 n_tiles, 16 k_tiles) row-major (ldb).
__device__ __forceinline__ void tc_abt(float *C, int ldc, const lsc_bf16 *A, int lda, const lsc_bf16 *B, int ldb,
                                       int n_tiles, int k_tiles) {
    for (int n = 0; n < n_tiles; n++) {
        tc_c c;
        wmma::fill_fragment(c, 0.0f);
        for (int k = 0; k < k_tiles; k++) {
            tc_a a;
            tc_bt b;
            wmma::load_matrix_sync(a, A + k * 16, lda);
            wmma::load_matrix_sync(b, B + (size_t)n * 16 * ldb + k * 16, ldb);
            wmma::mma_sync(c, a, b, c);
        }
        wmma::store_matrix_sync(C + n * 16, c, ldc, wmma::mem_row_major);
    }
}

// C (16, 16 n_tiles) += A (16, 16 k_tiles) B, all row-major; C fp32 in shared memory.
__device__ __forceinline__ void tc_acc_ab(float *C, int ldc, const lsc_bf16 *A, int lda, const lsc_bf16 *B, int ldb,
                                          int n_tiles, int k_tiles) {
    for (int n = 0; n < n_tiles; n++) {
        tc_c c;
        wmma::load_matrix_sync(c, C + n * 16, ldc, wmma::mem_row_major);
        for (int k = 0; k < k_tiles; k++) {
            tc_a a;
            tc_b b;
            wmma::load_matrix_sync(a, A + k * 16, lda);
            wmma::load_matrix_sync(b, B + (size_t)k * 16 * ldb + n * 16, ldb);
            wmma::mma_sync(c, a, b, c);
        }
        wmma::store_matrix_sync(C + n * 16, c, ldc, wmma::mem_row_major);
    }
}

// ----------------------------------------------------------------------------
// forward: a block owns 16 W query rows of one (b, h); grid (query tiles, NH, B)

template <int HSP>
__global__ void tc_forward_kernel(float *out, float *lse, float *ostash, const float *qkv, const int *keymask,
                                  int causal, int T, int NH, int NKV, int HS, float scale) {
    const int W = tc_warps<HSP>::fwd, BR = 16 * W, NT = W * LSC_WARP;
    __shared__ __align__(32) lsc_bf16 Qs[BR * HSP];
    __shared__ __align__(32) lsc_bf16 Ks[TC_KT * HSP];
    __shared__ __align__(32) lsc_bf16 Vs[TC_KT * HSP];
    __shared__ __align__(32) float Ss[BR * TC_KT];
    __shared__ __align__(32) lsc_bf16 Ps[BR * TC_KT];
    __shared__ __align__(32) float Os[BR * HSP];
    __shared__ float Ms[BR], Ls[BR], Cs[BR]; // running max, running sum, this tile's rescaling
    int tid = (int)threadIdx.x, lane = tid % LSC_WARP, warp = tid / LSC_WARP, wr = warp * 16;
    int ntiles = (T + BR - 1) / BR, tile = ntiles - 1 - (int)blockIdx.x; // the longest rows first
    int h = (int)blockIdx.y, b = (int)blockIdx.z, kh = h / (NH / NKV), q0 = tile * BR;
    size_t row = (size_t)(NH + 2 * NKV) * HS;
    const float *base = qkv + (size_t)b * T * row;
    tc_load_rows(Qs, base, row, h, q0, BR, T, HS, HSP, tid, NT);
    for (int i = tid; i < BR * HSP; i += NT) Os[i] = 0.0f;
    for (int i = tid; i < BR; i += NT) {
        Ms[i] = -INFINITY;
        Ls[i] = 0.0f;
    }
    __syncthreads(); // a sequence without kept keys goes straight to the epilogue
    const int *km = keymask ? keymask + (size_t)b * T : NULL;
    int k_end = keys_end(km, T, causal, lsc_imin(q0 + BR, T) - 1);
    int pr = wr + lane / 2, half = lane % 2, t = q0 + pr; // this lane's row and half of the tile's keys
    for (int k0 = 0; k0 < k_end; k0 += TC_KT) {
        __syncthreads(); // the previous tile is consumed (and Qs, Os are ready)
        tc_load_rows(Ks, base, row, NH + kh, k0, TC_KT, T, HS, HSP, tid, NT);
        tc_load_rows(Vs, base, row, NH + NKV + kh, k0, TC_KT, T, HS, HSP, tid, NT);
        __syncthreads();
        tc_abt(Ss + wr * TC_KT, TC_KT, Qs + wr * HSP, HSP, Ks, HSP, TC_KT / 16, HSP / 16); // S = Q K^T
        __syncwarp();
        float s[16], mx = -INFINITY, sum = 0.0f;
        for (int j = 0; j < 16; j++) {
            int t2 = k0 + half * 16 + j;
            int valid = t < T && t2 < k_end && key_visible(km, causal, t, t2);
            s[j] = valid ? Ss[pr * TC_KT + half * 16 + j] * scale : -INFINITY;
            mx = fmaxf(mx, s[j]);
        }
        float m_old = Ms[pr], m_new = fmaxf(m_old, fmaxf(mx, __shfl_xor_sync(LSC_FULL_MASK, mx, 1)));
        for (int j = 0; j < 16; j++) {
            float p = s[j] == -INFINITY ? 0.0f : expf(s[j] - m_new);
            Ps[pr * TC_KT + half * 16 + j] = __float2bfloat16(p);
            sum += p;
        }
        sum += __shfl_xor_sync(LSC_FULL_MASK, sum, 1);
        // rows without a visible key so far keep m = -inf, l = 0: nothing becomes NaN
        float corr = m_old == -INFINITY ? 0.0f : expf(m_old - m_new);
        __syncwarp(); // both lanes of the pair have read Ms[pr]
        if (half == 0) {
            Ls[pr] = Ls[pr] * corr + sum;
            Ms[pr] = m_new;
            Cs[pr] = corr;
        }
        __syncwarp();
        for (int i = lane; i < 16 * HSP; i += LSC_WARP) Os[wr * HSP + i] *= Cs[wr + i / HSP];
        __syncwarp();
        tc_acc_ab(Os + wr * HSP, HSP, Ps + wr * TC_KT, TC_KT, Vs, HSP, HSP / 16, TC_KT / 16); // O += P V
    }
    __syncwarp();
    for (int i = lane; i < 16 * HSP; i += LSC_WARP) {
        int r = wr + i / HSP, d = i % HSP, tr = q0 + r;
        if (tr >= T || d >= HS) continue;
        float l = Ls[r], o = l > 0.0f ? Os[r * HSP + d] * (1.0f / l) : 0.0f; // no kept key: out = 0
        out[((size_t)b * T + tr) * NH * HS + (size_t)h * HS + d] = o;
        ostash[(((size_t)b * NH + h) * T + tr) * HS + d] = o;
    }
    if (lane < 16 && q0 + wr + lane < T) {
        int r = wr + lane;
        lse[((size_t)b * NH + h) * T + q0 + r] = Ls[r] > 0.0f ? Ms[r] + logf(Ls[r]) : -INFINITY;
    }
}

// ----------------------------------------------------------------------------
// backward: P = exp(S scale - lse), dP = dO V^T, dS = P (dP - D) scale;
// dQ = dS K, dK = dS^T Q, dV = P^T dO

// dQ of 16 W query rows of (b, h), over the key tiles in order. grid (query tiles, NH, B).
template <int HSP>
__global__ void tc_backward_dq_kernel(float *dqkv, const float *Dvec, const float *lse, const float *dout,
                                      const float *qkv, const int *keymask, int causal, int T, int NH, int NKV,
                                      int HS, float scale) {
    const int W = tc_warps<HSP>::dq, BR = 16 * W, NT = W * LSC_WARP;
    __shared__ __align__(32) lsc_bf16 Qs[BR * HSP];
    __shared__ __align__(32) lsc_bf16 dOs[BR * HSP];
    __shared__ __align__(32) lsc_bf16 Ks[TC_KT * HSP];
    __shared__ __align__(32) lsc_bf16 Vs[TC_KT * HSP];
    __shared__ __align__(32) float Ss[BR * TC_KT];
    __shared__ __align__(32) float dPs[BR * TC_KT];
    __shared__ __align__(32) lsc_bf16 dSs[BR * TC_KT];
    __shared__ __align__(32) float dQs[BR * HSP];
    int tid = (int)threadIdx.x, lane = tid % LSC_WARP, warp = tid / LSC_WARP, wr = warp * 16;
    int ntiles = (T + BR - 1) / BR, tile = ntiles - 1 - (int)blockIdx.x;
    int h = (int)blockIdx.y, b = (int)blockIdx.z, kh = h / (NH / NKV), q0 = tile * BR;
    size_t row = (size_t)(NH + 2 * NKV) * HS, orow = (size_t)NH * HS;
    const float *base = qkv + (size_t)b * T * row;
    tc_load_rows(Qs, base, row, h, q0, BR, T, HS, HSP, tid, NT);
    tc_load_rows(dOs, dout + (size_t)b * T * orow, orow, h, q0, BR, T, HS, HSP, tid, NT);
    for (int i = tid; i < BR * HSP; i += NT) dQs[i] = 0.0f;
    __syncthreads();
    const int *km = keymask ? keymask + (size_t)b * T : NULL;
    int k_end = keys_end(km, T, causal, lsc_imin(q0 + BR, T) - 1);
    int pr = wr + lane / 2, half = lane % 2, t = q0 + pr;
    size_t ri = ((size_t)b * NH + h) * T + t;
    float L = t < T ? lse[ri] : 0.0f, D = t < T ? Dvec[ri] : 0.0f;
    for (int k0 = 0; k0 < k_end; k0 += TC_KT) {
        __syncthreads();
        tc_load_rows(Ks, base, row, NH + kh, k0, TC_KT, T, HS, HSP, tid, NT);
        tc_load_rows(Vs, base, row, NH + NKV + kh, k0, TC_KT, T, HS, HSP, tid, NT);
        __syncthreads();
        tc_abt(Ss + wr * TC_KT, TC_KT, Qs + wr * HSP, HSP, Ks, HSP, TC_KT / 16, HSP / 16);   // S = Q K^T
        tc_abt(dPs + wr * TC_KT, TC_KT, dOs + wr * HSP, HSP, Vs, HSP, TC_KT / 16, HSP / 16); // dP = dO V^T
        __syncwarp();
        for (int j = 0; j < 16; j++) {
            int c = half * 16 + j, t2 = k0 + c;
            int valid = t < T && t2 < k_end && key_visible(km, causal, t, t2);
            float p = valid ? expf(Ss[pr * TC_KT + c] * scale - L) : 0.0f;
            dSs[pr * TC_KT + c] = __float2bfloat16(p * (dPs[pr * TC_KT + c] - D) * scale);
        }
        __syncwarp();
        tc_acc_ab(dQs + wr * HSP, HSP, dSs + wr * TC_KT, TC_KT, Ks, HSP, HSP / 16, TC_KT / 16); // dQ += dS K
    }
    __syncwarp();
    for (int i = lane; i < 16 * HSP; i += LSC_WARP) {
        int r = wr + i / HSP, d = i % HSP, tr = q0 + r;
        if (tr < T && d < HS) dqkv[((size_t)b * T + tr) * row + (size_t)h * HS + d] = dQs[r * HSP + d];
    }
}

// dK, dV of 16 W keys of (b, kv head kh), summed over the query heads of its
// group in head order and over the query tiles in order (causal: from the
// block's first key on; bidirectional: all, none past the last kept key).
// grid (key tiles, NKV, B).
template <int HSP>
__global__ void tc_backward_dkv_kernel(float *dqkv, const float *Dvec, const float *lse, const float *dout,
                                       const float *qkv, const int *keymask, int causal, int T, int NH, int NKV,
                                       int HS, float scale) {
    const int W = tc_warps<HSP>::dkv, BK = 16 * W, NT = W * LSC_WARP;
    __shared__ __align__(32) lsc_bf16 Ks[BK * HSP];
    __shared__ __align__(32) lsc_bf16 Vs[BK * HSP];
    __shared__ __align__(32) lsc_bf16 Qs[TC_KT * HSP];
    __shared__ __align__(32) lsc_bf16 dOs[TC_KT * HSP];
    __shared__ __align__(32) float Ss[BK * TC_KT];  // S^T: keys x queries
    __shared__ __align__(32) float dPs[BK * TC_KT]; // dP^T
    __shared__ __align__(32) lsc_bf16 Pb[BK * TC_KT];
    __shared__ __align__(32) lsc_bf16 dSb[BK * TC_KT];
    __shared__ __align__(32) float dKs[BK * HSP];
    __shared__ __align__(32) float dVs[BK * HSP];
    __shared__ float Lq[TC_KT], Dq[TC_KT];
    int tid = (int)threadIdx.x, lane = tid % LSC_WARP, warp = tid / LSC_WARP, wr = warp * 16;
    int kh = (int)blockIdx.y, b = (int)blockIdx.z, group = NH / NKV, k0 = (int)blockIdx.x * BK;
    size_t row = (size_t)(NH + 2 * NKV) * HS, orow = (size_t)NH * HS;
    const float *base = qkv + (size_t)b * T * row;
    const int *km = keymask ? keymask + (size_t)b * T : NULL;
    int k_end = keys_end(km, T, causal, T - 1);
    int q_first = causal ? k0 / TC_KT * TC_KT : k0 < k_end ? 0 : T;
    tc_load_rows(Ks, base, row, NH + kh, k0, BK, T, HS, HSP, tid, NT);
    tc_load_rows(Vs, base, row, NH + NKV + kh, k0, BK, T, HS, HSP, tid, NT);
    for (int i = tid; i < BK * HSP; i += NT) dKs[i] = dVs[i] = 0.0f;
    __syncthreads();
    int pr = wr + lane / 2, half = lane % 2, tk = k0 + pr; // this lane's key and half of the tile's queries
    for (int h = kh * group; h < (kh + 1) * group; h++) {
        for (int q0 = q_first; q0 < T; q0 += TC_KT) {
            __syncthreads();
            tc_load_rows(Qs, base, row, h, q0, TC_KT, T, HS, HSP, tid, NT);
            tc_load_rows(dOs, dout + (size_t)b * T * orow, orow, h, q0, TC_KT, T, HS, HSP, tid, NT);
            for (int i = tid; i < TC_KT; i += NT) {
                int tq = q0 + i;
                size_t ri = ((size_t)b * NH + h) * T + tq;
                Lq[i] = tq < T ? lse[ri] : 0.0f;
                Dq[i] = tq < T ? Dvec[ri] : 0.0f;
            }
            __syncthreads();
            tc_abt(Ss + wr * TC_KT, TC_KT, Ks + wr * HSP, HSP, Qs, HSP, TC_KT / 16, HSP / 16);   // S^T = K Q^T
            tc_abt(dPs + wr * TC_KT, TC_KT, Vs + wr * HSP, HSP, dOs, HSP, TC_KT / 16, HSP / 16); // dP^T = V dO^T
            __syncwarp();
            for (int j = 0; j < 16; j++) {
                int c = half * 16 + j, tq = q0 + c;
                int valid = tq < T && tk < k_end && key_visible(km, causal, tq, tk);
                float p = valid ? expf(Ss[pr * TC_KT + c] * scale - Lq[c]) : 0.0f;
                Pb[pr * TC_KT + c] = __float2bfloat16(p);
                dSb[pr * TC_KT + c] = __float2bfloat16(p * (dPs[pr * TC_KT + c] - Dq[c]) * scale);
            }
            __syncwarp();
            tc_acc_ab(dVs + wr * HSP, HSP, Pb + wr * TC_KT, TC_KT, dOs, HSP, HSP / 16, TC_KT / 16); // dV += P^T dO
            tc_acc_ab(dKs + wr * HSP, HSP, dSb + wr * TC_KT, TC_KT, Qs, HSP, HSP / 16, TC_KT / 16); // dK += dS^T Q
        }
    }
    __syncwarp();
    for (int i = lane; i < 16 * HSP; i += LSC_WARP) {
        int r = wr + i / HSP, d = i % HSP, t = k0 + r;
        if (t >= T || d >= HS) continue;
        dqkv[((size_t)b * T + t) * row + (size_t)(NH + kh) * HS + d] = dKs[r * HSP + d];
        dqkv[((size_t)b * T + t) * row + (size_t)(NH + NKV + kh) * HS + d] = dVs[r * HSP + d];
    }
}

// ----------------------------------------------------------------------------
// host side

int lsc_attention_tc_usable(int T, int HS) {
    return lsc.precision == LS_CUDA_BF16 && HS % 16 == 0 && HS <= 128 && T > HS;
}

template <int HSP>
static void tc_launch_forward(float *out, float *lse, float *ostash, const float *qkv, const int *keymask,
                              int causal, int B, int T, int NH, int NKV, int HS, float scale) {
    const int W = tc_warps<HSP>::fwd;
    dim3 grid(lsc_cdiv((size_t)T, 16 * W), (unsigned)NH, (unsigned)B);
    LSC_LAUNCH(tc_forward_kernel<HSP>, grid, W * LSC_WARP, out, lse, ostash, qkv, keymask, causal, T, NH, NKV, HS,
               scale);
}

template <int HSP>
static void tc_launch_backward(float *dqkv, const float *Dvec, const float *lse, const float *dout,
                               const float *qkv, const int *keymask, int causal, int B, int T, int NH, int NKV,
                               int HS, float scale) {
    const int WQ = tc_warps<HSP>::dq, WK = tc_warps<HSP>::dkv;
    dim3 gq(lsc_cdiv((size_t)T, 16 * WQ), (unsigned)NH, (unsigned)B);
    LSC_LAUNCH(tc_backward_dq_kernel<HSP>, gq, WQ * LSC_WARP, dqkv, Dvec, lse, dout, qkv, keymask, causal, T, NH,
               NKV, HS, scale);
    dim3 gk(lsc_cdiv((size_t)T, 16 * WK), (unsigned)NKV, (unsigned)B);
    LSC_LAUNCH(tc_backward_dkv_kernel<HSP>, gk, WK * LSC_WARP, dqkv, Dvec, lse, dout, qkv, keymask, causal, T, NH,
               NKV, HS, scale);
}

void lsc_attention_tc_forward(float *out, float *lse, float *ostash, const float *qkv, const int *keymask,
                              int causal, int B, int T, int NH, int NKV, int HS, float scale) {
    if (HS <= 32) tc_launch_forward<32>(out, lse, ostash, qkv, keymask, causal, B, T, NH, NKV, HS, scale);
    else if (HS <= 64) tc_launch_forward<64>(out, lse, ostash, qkv, keymask, causal, B, T, NH, NKV, HS, scale);
    else tc_launch_forward<128>(out, lse, ostash, qkv, keymask, causal, B, T, NH, NKV, HS, scale);
}

void lsc_attention_tc_backward(float *dqkv, const float *Dvec, const float *lse, const float *dout,
                               const float *qkv, const int *keymask, int causal, int B, int T, int NH, int NKV,
                               int HS, float scale) {
    if (HS <= 32)
        tc_launch_backward<32>(dqkv, Dvec, lse, dout, qkv, keymask, causal, B, T, NH, NKV, HS, scale);
    else if (HS <= 64)
        tc_launch_backward<64>(dqkv, Dvec, lse, dout, qkv, keymask, causal, B, T, NH, NKV, HS, scale);
    else tc_launch_backward<128>(dqkv, Dvec, lse, dout, qkv, keymask, causal, B, T, NH, NKV, HS, scale);
}
