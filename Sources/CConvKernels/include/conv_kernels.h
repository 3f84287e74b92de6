// Direct convolution kernels for astra-dist's Conv2dLayer (Conv2dDirect.swift), in C for the
// AVX-512 FMA instructions the Swift target (baseline x86-64) cannot emit; callers check
// `astra_conv_direct_available()` and keep their BLAS path for other CPUs and shapes.
#ifndef ASTRA_CONV_KERNELS_H
#define ASTRA_CONV_KERNELS_H
#include <stdbool.h>

/// Whether this CPU runs `astra_conv_direct` (AVX-512F and FMA).
bool astra_conv_direct_available(void);

/// One image's correlation with F = `filters` (8 or 16) filters into `out` (T rows of
/// `outStride` ≥ F values, t = oy·outWidth + ox; columns 0..<F written):
/// `out[t][f] = (accumulate ? out[t][f] : 0)
///     + Σ_{i,j,c} padded[((oy·stride + i)·paddedWidth + ox·stride + j)·channels + c] · tapKernel[((i·kernel + j)·channels + c)·F + f]`,
/// `padded` a zero-padded image in (y, x, c) layout, `tapKernel` (k·k·C)×F in tap order.
/// Each output adds its terms in tap order. Precondition: `astra_conv_direct_available()`.
void astra_conv_direct(const float *padded, long paddedWidth, long channels, long kernel, long stride,
                       long outHeight, long outWidth, const float *tapKernel, long filters, float *out, long outStride, bool accumulate);

/// `out[o][k] += Σ_{t < count} a[t·lda + o] · b[t·ldb + k]` for o < `outputs` (8 or 16) and
/// k < `width` (`out` rows `ldo` apart): a rank-`count` update, each output summing over t
/// in order, then added. Precondition: `astra_conv_direct_available()`.
void astra_rank_update(const float *a, long lda, long outputs, const float *b, long ldb, long width, long count, float *out, long ldo);

/// One example's max-pool backward pass for disjoint windows (stride ≥ window height and
/// width): `out` (H·W·C, (y, x, c) layout) is 0 except at each window's maximum of `x` (ties:
/// the first in row-major window order; a NaN first tap wins), where it is `0 + g[o]`.
/// Bit-identical to scattering g through MaxPool2d's argmax. Precondition:
/// `astra_conv_direct_available()`.
void astra_maxpool_backward_disjoint(const float *x, const float *g, float *out, long height, long width, long channels,
                                     long windowHeight, long windowWidth, long stride);
#endif
