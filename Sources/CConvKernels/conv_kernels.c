#include "conv_kernels.h"
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,avx512vl,fma")))

bool astra_conv_direct_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma");
}

// `nb` consecutive output positions (ox0 ..< ox0 + nb of row oy), each one register of 16
// (or 8) outputs; per tap one kernel vector meets `nb` broadcast pixel values (about 95%
// of the SGEMM peak for 5×5 over 8 channels). Kernel row i of a patch is k·C contiguous
// values of the padded (y, x, c) image.
#define BLOCK(NAME, VEC, LOAD, STORE, ZERO, FMA, SET1, F)                                                        \
static inline __attribute__((always_inline)) AVX512                                                              \
void NAME(const float *padded, long pw, long c, long k, long s, long oy, long ox0, const float *w, float *out,   \
          long ldo, bool accumulate, const int nb) {                                                                      \
    VEC acc[14];                                                                                                  \
    for (int b = 0; b < nb; b++) acc[b] = accumulate ? LOAD(out + ldo * b) : ZERO();                                \
    const long run = k * c, step = s * c;                                                                         \
    for (long i = 0; i < k; i++) {                                                                                \
        const float *row = padded + ((oy * s + i) * pw + ox0 * s) * c;                                            \
        const float *wi = w + F * i * run;                                                                        \
        for (long jc = 0; jc < run; jc++) {                                                                       \
            const VEC wv = LOAD(wi + F * jc);                                                                     \
            for (int b = 0; b < nb; b++) acc[b] = FMA(SET1(row[b * step + jc]), wv, acc[b]);                      \
        }                                                                                                         \
    }                                                                                                             \
    for (int b = 0; b < nb; b++) STORE(out + ldo * b, acc[b]);                                                      \
}
BLOCK(block16, __m512, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_setzero_ps, _mm512_fmadd_ps, _mm512_set1_ps, 16)
BLOCK(block8, __m256, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_setzero_ps, _mm256_fmadd_ps, _mm256_set1_ps, 8)

// Blocks of constant width, so the accumulators stay in registers.
#define ROWS(BLOCKFN, F)                                                                                          \
    for (long oy = 0; oy < outHeight; oy++) {                                                                     \
        long ox = 0;                                                                                              \
        while (ox < outWidth) {                                                                                   \
            float *o = out + outStride * (oy * outWidth + ox);                                                            \
            const long left = outWidth - ox;                                                                      \
            const int nb = left >= 14 ? 14 : left >= 8 ? 8 : left >= 4 ? 4 : 1;                                   \
            switch (nb) {                                                                                         \
            case 14: BLOCKFN(padded, paddedWidth, channels, kernel, stride, oy, ox, tapKernel, o, outStride, accumulate, 14); break; \
            case 8: BLOCKFN(padded, paddedWidth, channels, kernel, stride, oy, ox, tapKernel, o, outStride, accumulate, 8); break;   \
            case 4: BLOCKFN(padded, paddedWidth, channels, kernel, stride, oy, ox, tapKernel, o, outStride, accumulate, 4); break;   \
            default: BLOCKFN(padded, paddedWidth, channels, kernel, stride, oy, ox, tapKernel, o, outStride, accumulate, 1); break;  \
            }                                                                                                     \
            ox += nb;                                                                                             \
        }                                                                                                         \
    }

AVX512 void astra_conv_direct(const float *padded, long paddedWidth, long channels, long kernel, long stride,
                              long outHeight, long outWidth, const float *tapKernel, long filters, float *out, long outStride, bool accumulate) {
    if (filters == 16) { ROWS(block16, 16) } else { ROWS(block8, 8) }
}

// `no` outputs (constant) of one 16-column block (mask m) of `out += aᵀ b`; per row t one
// vector of b meets `no` broadcast values of a.
static inline __attribute__((always_inline)) AVX512
void rank_block(const float *a, long lda, const float *b, long ldb, long count, float *out, long ldo, __mmask16 m, const int no) {
    __m512 acc[16];
    for (int o = 0; o < no; o++) acc[o] = _mm512_setzero_ps();
    for (long t = 0; t < count; t++) {
        const __m512 bv = _mm512_maskz_loadu_ps(m, b + t * ldb);
        const float *at = a + t * lda;
        for (int o = 0; o < no; o++) acc[o] = _mm512_fmadd_ps(_mm512_set1_ps(at[o]), bv, acc[o]);
    }
    for (int o = 0; o < no; o++) _mm512_mask_storeu_ps(out + o * ldo, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, out + o * ldo), acc[o]));
}

AVX512 void astra_rank_update(const float *a, long lda, long outputs, const float *b, long ldb, long width, long count, float *out, long ldo) {
    for (long k0 = 0; k0 < width; k0 += 16) {
        const long n = width - k0 < 16 ? width - k0 : 16;
        const __mmask16 m = (__mmask16)((1u << n) - 1);
        if (outputs == 16) rank_block(a, lda, b + k0, ldb, count, out + k0, ldo, m, 16);
        else rank_block(a, lda, b + k0, ldb, count, out + k0, ldo, m, 8);
    }
}

// One example's max-pool backward pass for disjoint windows (stride ≥ window), channels in
// runs of 16 (or 8) lanes: the running maximum is `v > m ? v : m` (MAXPS returns its second
// operand for NaN and equal zeros, so `max(v, m)` is exactly that select), and each window's
// winner is its first tap equal to the maximum (tap 0 if the maximum is NaN, which only a NaN
// tap 0 gives): the argmax of MaxPool2d.argmaxima, whose scatter onto zeros writes 0 + g.
// Full-width stores where the channels allow (masked stores are slow on some CPUs, AMD Zen 4).
#define POOL_RUN(VEC, LOAD, MAX, ADD, ZERO, CMP, MOVZ, STORE, MASK, ALL)                                      \
    {                                                                                                           \
        VEC m = LOAD(x + corner + c0);                                                                          \
        for (long i = 0; i < windowHeight; i++)                                                                 \
            for (long j = 0; j < windowWidth; j++)                                                              \
                if (i > 0 || j > 0) m = MAX(LOAD(x + corner + (i * width + j) * channels + c0), m);             \
        const VEC gv = ADD(ZERO(), LOAD(go + c0));                                                              \
        MASK taken = 0;                                                                                         \
        for (long i = 0; i < windowHeight; i++) {                                                               \
            for (long j = 0; j < windowWidth; j++) {                                                            \
                const long at = corner + (i * width + j) * channels + c0;                                       \
                MASK eq = CMP(LOAD(x + at), m, _CMP_EQ_OQ);                                                     \
                if (i == 0 && j == 0) eq |= CMP(m, m, _CMP_UNORD_Q);                                            \
                const MASK win = eq & (MASK)~taken & (MASK)ALL;                                                 \
                taken |= win;                                                                                   \
                STORE(out + at, MOVZ(win, gv));                                                                 \
            }                                                                                                   \
        }                                                                                                       \
    }

AVX512 void astra_maxpool_backward_disjoint(const float *x, const float *g, float *out, long height, long width, long channels,
                                            long windowHeight, long windowWidth, long stride) {
    const long outHeight = (height - windowHeight) / stride + 1, outWidth = (width - windowWidth) / stride + 1;
    for (long i = 0; i < height * width * channels; i++) out[i] = 0;
    for (long oy = 0; oy < outHeight; oy++) {
        for (long ox = 0; ox < outWidth; ox++) {
            const long corner = (oy * stride * width + ox * stride) * channels;
            const float *go = g + (oy * outWidth + ox) * channels;
            long c0 = 0;
            for (; c0 + 16 <= channels; c0 += 16)
                POOL_RUN(__m512, _mm512_loadu_ps, _mm512_max_ps, _mm512_add_ps, _mm512_setzero_ps, _mm512_cmp_ps_mask,
                         _mm512_maskz_mov_ps, _mm512_storeu_ps, __mmask16, 0xFFFF)
            for (; c0 + 8 <= channels; c0 += 8)
                POOL_RUN(__m256, _mm256_loadu_ps, _mm256_max_ps, _mm256_add_ps, _mm256_setzero_ps, _mm256_cmp_ps_mask,
                         _mm256_maskz_mov_ps, _mm256_storeu_ps, __mmask8, 0xFF)
            if (c0 < channels) {
                // The last channels < 8: masked loads and stores.
                const __mmask16 lanes = (__mmask16)((1u << (channels - c0)) - 1);
#define LOADM(p) _mm512_maskz_loadu_ps(lanes, p)
#define STOREM(p, v) _mm512_mask_storeu_ps(p, lanes, v)
                POOL_RUN(__m512, LOADM, _mm512_max_ps, _mm512_add_ps, _mm512_setzero_ps, _mm512_cmp_ps_mask,
                         _mm512_maskz_mov_ps, STOREM, __mmask16, lanes)
#undef LOADM
#undef STOREM
            }
        }
    }
}
