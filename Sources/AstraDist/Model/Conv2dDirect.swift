import CConvKernels

/// Direct convolutions of `Conv2dLayer` for Float on CPUs with AVX-512 (the C kernel in
/// Sources/CConvKernels; the Swift target is compiled for baseline x86-64): no patch rows at
/// all, each output a register accumulating its taps, one kernel vector per tap meeting 14
/// output positions (≈ 95% of the SGEMM peak for 5×5 over 8 channels, 16 filters, against
/// 30–40% for im2col and a 16-column GEMM). The forward pass `Ā W̄ᵀ` and the weight
/// gradient `Dsᵀ Ā` run from the kept rows (a 1×1 correlation, a rank update), and so do
/// the passes of a GGN product over B·Q tangents: the input tangents' term `patches(dA) Wᵀ` of `tangent`, its rows term `Ā dW̄_qᵀ`
/// (a 1×1 correlation of the rows, written query-major, so no permutation), the block
/// gradient `Σ Ds_qᵀ Ā` (a rank-T update per example and direction from the query-major Ds)
/// and, for stride 1, the input gradient `col2im(Ds W)`, which is the correlation of Ds,
/// zero-padded by k − 1 − p, with the flipped kernel (training's input gradient too, the
/// block input gradient of B·Q cotangents and the Hessian's directional input gradient).
/// Filters (channels, for the gradient) go in groups of 16, a last group of 8; other counts,
/// Double, and CPUs without AVX-512 keep BLAS and the tap-order patches
/// (Conv2dTapPatches.swift). The sums are the GEMMs' products in another order (float
/// reordering only).
extension Conv2dLayer {
    /// Whether the CPU runs the kernel (checked once).
    static let directKernels = astra_conv_direct_available()

    /// Whether the kernel computes `out` channels for T (groups of 16 and at most one of 8).
    private static func direct<T: BLASScalar>(_: T.Type, outputs: Int) -> Bool {
        T.self == Float.self && directKernels && outputs % 8 == 0
    }
    /// Whether `tangent` and `blockGradient` run directly.
    func directProducts<T: BLASScalar>(_: T.Type) -> Bool { Self.direct(T.self, outputs: filters) }
    /// Whether input gradients run directly (stride 1 and p < k, so the transpose is a correlation).
    func directGradient<T: BLASScalar>(_: T.Type) -> Bool { Self.direct(T.self, outputs: channels) && stride == 1 && padding < kernel }

    /// `s = Ā W̄ᵀ` (B·T×O): a 1×1 correlation of the B·T rows (K channels) with the weights.
    /// Precondition: `directProducts(T.self)`.
    func directForward<T: BLASScalar>(abar: UnsafePointer<T>, weights: UnsafePointer<T>, s: UnsafeMutablePointer<T>, batch: Int) {
        let rows = batch * positions, k = inputFactorDimension
        withRowKernels(weights, count: 1) { kernels in
            for (first, size) in filterGroups(filters) {
                astra_conv_direct(Self.floats(abar), rows, k, 1, 1, 1, rows, kernels + first * k, size, Self.floats(s) + first, filters, false)
            }
        }
    }

    /// `ds[e, q] = Ā_e dW̄_qᵀ` (T×O per example and direction, query-major) for Q directions
    /// (Q·O)×K: per example and direction a 1×1 correlation of the T rows (K channels) with
    /// the direction, written query-major at once (a GEMM over B·T rows wrote them
    /// position-major, then a permutation moved them). Precondition: `directProducts(T.self)`.
    func directRowsTangent<T: BLASScalar>(abar: UnsafePointer<T>, directions: UnsafePointer<T>, ds: UnsafeMutablePointer<T>, batch: Int, queries: Int) {
        let t = positions, o = filters, k = inputFactorDimension, rows = Self.floats(abar), out = Self.floats(ds)
        withRowKernels(directions, count: queries) { kernels in
            for e in 0..<batch {
                for q in 0..<queries {
                    for (first, size) in filterGroups(o) {
                        astra_conv_direct(rows + e * t * k, t, k, 1, 1, 1, t, kernels + (q * o + first) * k, size, out + (e * queries + q) * t * o + first, o, false)
                    }
                }
            }
        }
    }

    /// `body(kernels)` with `count` O×K parameter blocks (`w`, P apart) as the 1×1 kernels of
    /// the rows, tap-major per filter group: `kernels[(q·O + first)·K + c·size + f] = w_q[first + f][c]`.
    private func withRowKernels<T: BLASScalar>(_ w: UnsafePointer<T>, count: Int, _ body: (UnsafePointer<Float>) -> Void) {
        let o = filters, k = inputFactorDimension, p = parameterCount
        let kernels = UnsafeMutablePointer<Float>.allocate(capacity: count * p)
        defer { kernels.deallocate() }
        for q in 0..<count {
            for (first, size) in filterGroups(o) {
                for c in 0..<k { for f in 0..<size { kernels[(q * o + first) * k + c * size + f] = Float(w[q * p + (first + f) * k + c].asDouble) } }
            }
        }
        body(kernels)
    }

    /// `grad ← scale·Dsᵀ Ā + beta·grad` (O×K) over the B·T rows: rank updates of 256 rows
    /// each (the sums blocked as a GEMM blocks its depth). Precondition: `directProducts(T.self)`.
    func directWeightGradient<T: BLASScalar>(ds: UnsafePointer<T>, abar: UnsafePointer<T>, scale: T, beta: T, gradient: UnsafeMutablePointer<T>, batch: Int) {
        let rows = batch * positions, o = filters, k = inputFactorDimension, p = parameterCount
        withUnsafeTemporaryAllocation(of: Float.self, capacity: p) { buffer in
            let sum = buffer.baseAddress!
            sum.initialize(repeating: 0, count: p)
            for r0 in Swift.stride(from: 0, to: rows, by: 256) {
                for (first, size) in filterGroups(o) {
                    astra_rank_update(Self.floats(ds) + r0 * o + first, o, size, Self.floats(abar) + r0 * k, k, k, min(256, rows - r0), sum + first * k, k)
                }
            }
            for i in 0..<p { gradient[i] = scale * T(Double(sum[i])) + (beta == 0 ? 0 : beta * gradient[i]) }
        }
    }

    /// `out[q] += Σ_{b,t} Ds[b,q,t]ᵀ ā_{b,t}` ((Q·O)×K) straight from the query-major Ds: one
    /// rank-T update per example and direction (no permutation to position-major, no GEMM
    /// packing). Precondition: `directProducts(T.self)`.
    func directBlockGradient<T: BLASScalar>(ds: UnsafePointer<T>, abar: UnsafePointer<T>, out: UnsafeMutablePointer<T>, batch: Int, queries: Int) {
        let t = positions, o = filters, k = inputFactorDimension, p = parameterCount, g = Self.floats(ds), rows = Self.floats(abar), sum = Self.floats(out)
        let groups = filterGroups(o)
        for e in 0..<batch {
            for q in 0..<queries {
                for (first, size) in groups {
                    astra_rank_update(g + (e * queries + q) * t * o + first, o, size, rows + e * t * k, k, k, t, sum + q * p + first * k, k)
                }
            }
        }
    }

    /// `ds[e] += conv(da[e])` (T×O per image) for `images` input tangents (H·W·C apart),
    /// `w` the O×K weights (bias skipped). Precondition: `directProducts(T.self)`.
    func directInputTangent<T: BLASScalar>(_ da: UnsafePointer<T>, weights w: UnsafePointer<T>, images: Int, into ds: UnsafeMutablePointer<T>) {
        let k = kernel, c = channels, ld = inputFactorDimension
        // tap (i, j, c) of output o: w[o][(c·k + i)·k + j]
        correlate(Self.floats(da), imageStride: inputWidth, images: images, height: height, width: width, channels: c, kernel: k, padding: padding, stride: stride,
                  outputs: filters, kernelValue: { tap, o in
                      let i = tap / (k * c), j = tap / c % k, ch = tap % c
                      return w[o * ld + (ch * k + i) * k + j].asDouble
                  }, into: Self.floats(ds), outImageStride: positions * filters, accumulate: true)
    }

    /// `da[e] (+)= col2im(Ds_e W)` (H·W·C per example, `exampleStride` apart; added if
    /// `accumulate`) for `examples` output gradients (T·O apart), `w` O×K. Precondition:
    /// `directGradient(T.self)`.
    func directInputGradient<T: BLASScalar>(_ ds: UnsafePointer<T>, weights w: UnsafePointer<T>, examples: Int, into da: UnsafeMutablePointer<T>,
                                             exampleStride: Int, accumulate: Bool) {
        let k = kernel, o = filters, ld = inputFactorDimension
        // tap (i', j', o) of input channel c: the kernel flipped, w[o][(c·k + k−1−i')·k + k−1−j']
        correlate(Self.floats(ds), imageStride: positions * o, images: examples, height: outHeight, width: outWidth, channels: o,
                  kernel: k, padding: k - 1 - padding, stride: 1, outputs: channels, kernelValue: { tap, ch in
                      let i = tap / (k * o), j = tap / o % k, f = tap % o
                      return w[f * ld + (ch * k + k - 1 - i) * k + k - 1 - j].asDouble
                  }, into: Self.floats(da), outImageStride: exampleStride, accumulate: accumulate)
    }

    private static func floats<T>(_ p: UnsafePointer<T>) -> UnsafePointer<Float> { UnsafeRawPointer(p).assumingMemoryBound(to: Float.self) }
    private static func floats<T>(_ p: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<Float> { UnsafeMutableRawPointer(p).assumingMemoryBound(to: Float.self) }
}

/// `out[e] (+)= correlate(pad(image e), kernel)` for `images` images of height×width×channels
/// (`imageStride` apart; outputs `outImageStride` apart, (position, output) layout), a
/// `kernel`×`kernel` kernel given by `kernelValue(tap (i, j, c), output)`, in groups of 16 outputs
/// (a last one of 8). Each group's tap-major kernel is built once per call.
private func correlate(_ images: UnsafePointer<Float>, imageStride: Int, images count: Int, height: Int, width: Int, channels: Int, kernel: Int, padding: Int,
                       stride: Int, outputs: Int, kernelValue: (Int, Int) -> Double, into out: UnsafeMutablePointer<Float>, outImageStride: Int, accumulate: Bool) {
    guard count > 0 else { return }
    let taps = kernel * kernel * channels, k = kernel
    let ph = height + 2 * padding, pw = width + 2 * padding, oh = (ph - k) / stride + 1, ow = (pw - k) / stride + 1
    let kernels = UnsafeMutablePointer<Float>.allocate(capacity: taps * outputs)
    defer { kernels.deallocate() }
    let groups = filterGroups(outputs)
    for (first, size) in groups {
        for tap in 0..<taps { for f in 0..<size { kernels[first * taps + tap * size + f] = Float(kernelValue(tap, first + f)) } }
    }
    withUnsafeTemporaryAllocation(of: Float.self, capacity: ph * pw * channels) { buffer in
        let padded = buffer.baseAddress!
        padded.initialize(repeating: 0, count: ph * pw * channels)
        for e in 0..<count {
            copyIntoPadded(images + e * imageStride, height: height, width: width, channels: channels, padding: padding, into: padded)
            for (first, size) in groups {
                astra_conv_direct(padded, pw, channels, k, stride, oh, ow, kernels + first * taps, size, out + e * outImageStride + first, outputs, accumulate)
            }
        }
    }
}

/// `outputs` (a multiple of 8) in the kernels' groups: of 16, the last of 8 if one is left.
private func filterGroups(_ outputs: Int) -> [(first: Int, size: Int)] {
    Swift.stride(from: 0, to: outputs, by: 16).map { ($0, min(16, outputs - $0)) }
}
