/// A 2-D convolution (PyTorch's `nn.Conv2d` with groups 1 and dilation 1) as a GEMM over
/// im2col patches. Values are laid out (position, channel) per example: input
/// `[y, x, c]` (H·W·C), output `[t, o]` (T·O, t = oy·outWidth + ox), so the output is exactly
/// the rows times the kernel, `s = Ā W̄ᵀ` over B·T rows. A row `ā_{b,t}` is the patch under
/// output position t in PyTorch's column order (c, i, j) (so an imported PyTorch kernel
/// `[O, C, k, k]` is a reshape), zero outside the padded image, then a 1 if the layer has a
/// bias. `Flatten` converts the (position, channel) layout to PyTorch's NCHW order.
///
/// Per-example gradients `DW̄_b = Σ_t Ds_{b,t} ā_{b,t}ᵀ` are T rank-one terms: the curvature
/// statistics use K-FC's scaling (spec §3) and the eigenvalue correction squares whole
/// per-example gradients formed in the eigenbasis (cross-position terms kept).
public struct Conv2dLayer: Layer, Equatable {
    public let channels: Int
    public let height: Int
    public let width: Int
    /// Output channels O.
    public let filters: Int
    /// Square kernel side k.
    public let kernel: Int
    public let stride: Int
    public let padding: Int
    public let bias: Bool

    /// Precondition: positive sizes, padding ≥ 0, the kernel fits the padded image.
    public init(channels: Int, height: Int, width: Int, filters: Int, kernel: Int, stride: Int = 1, padding: Int = 0, bias: Bool = true) {
        precondition(channels > 0 && height > 0 && width > 0 && filters > 0 && kernel > 0 && stride > 0 && padding >= 0,
                     "Conv2dLayer: sizes must be positive and padding non-negative")
        precondition(kernel <= height + 2 * padding && kernel <= width + 2 * padding, "Conv2dLayer: kernel \(kernel) larger than the padded \(height)×\(width) image")
        self.channels = channels; self.height = height; self.width = width; self.filters = filters
        self.kernel = kernel; self.stride = stride; self.padding = padding; self.bias = bias
    }

    public var outHeight: Int { (height + 2 * padding - kernel) / stride + 1 }
    public var outWidth: Int { (width + 2 * padding - kernel) / stride + 1 }
    /// Values of one patch, C·k·k (the fan-in).
    public var patch: Int { channels * kernel * kernel }
    public var positions: Int { outHeight * outWidth }
    public var inputWidth: Int { height * width * channels }
    public var outputWidth: Int { positions * filters }
    public var inputFactorDimension: Int { patch + (bias ? 1 : 0) }
    public var outputFactorDimension: Int { filters }
    public var parameterCount: Int { filters * inputFactorDimension }

    // MARK: im2col and its adjoint: Conv2dPatches.swift

    /// Runs `body(first example, examples, scratch)` over `0..<total` in chunks whose scratch
    /// of `perExample` values per example stays near 256 K values (1 MB of Float: it stays in
    /// L2 between the GEMM that writes it and the copy that reads it; one allocation per call).
    func inChunks<T: BLASScalar>(_ total: Int, perExample: Int, _: T.Type, _ body: (Int, Int, UnsafeMutablePointer<T>) -> Void) {
        guard total > 0 else { return }
        let chunk = max(1, min(total, (1 << 18) / max(perExample, 1)))
        let scratch = UnsafeMutablePointer<T>.allocate(capacity: chunk * perExample)
        defer { scratch.deallocate() }
        var start = 0
        while start < total {
            let n = min(chunk, total - start)
            body(start, n, scratch)
            start += n
        }
    }

    /// `out[e, q, t, o] = src[e, t, q, o]` (or the reverse with `toQueryMajor` false) for
    /// `examples` examples of Q blocks of T×O. The runs of O values are copied inline, and
    /// positions go in blocks of 8 with the queries inside: the position-major side (8 rows
    /// of Q·O values, 26 KB for Q = 100, O = 8) stays in L1 while every query's 8·O values
    /// are one contiguous piece of the query-major side (query by query over all positions
    /// read each cache line of the position-major side Q·O/16 times from L3).
    func permute<T: BLASScalar>(_ src: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, examples: Int, queries: Int, toQueryMajor: Bool) {
        let t = positions, o = filters, block = 8
        for e in 0..<examples {
            for p0 in Swift.stride(from: 0, to: t, by: block) {
                for q in 0..<queries {
                    for p in p0..<min(p0 + block, t) {
                        let positionMajor = ((e * t + p) * queries + q) * o, queryMajor = ((e * queries + q) * t + p) * o
                        if toQueryMajor { copyRun(src + positionMajor, to: out + queryMajor, count: o) } else { copyRun(src + queryMajor, to: out + positionMajor, count: o) }
                    }
                }
            }
        }
    }

    // MARK: Forward, backward, tangents

    public func makeRows<T: BLASScalar>(input: UnsafePointer<T>, batch: Int, into rows: UnsafeMutablePointer<T>) {
        im2col(input, exampleStride: inputWidth, examples: batch, into: rows, ld: inputFactorDimension, one: bias)
    }
    public func forward<T: BLASScalar>(abar: UnsafePointer<T>, weights: UnsafePointer<T>, s: UnsafeMutablePointer<T>, batch: Int) {
        if directProducts(T.self) { return directForward(abar: abar, weights: weights, s: s, batch: batch) }
        let k = inputFactorDimension
        T.gemm(transA: false, transB: true, m: batch * positions, n: filters, k: k, alpha: 1,
               a: abar, lda: k, b: weights, ldb: k, beta: 0, c: s, ldc: filters)
    }
    /// `Da = col2im(Ds W)`, in chunks of examples (B×inputWidth, overwritten).
    public func backwardInput<T: BLASScalar>(ds: UnsafePointer<T>, weights: UnsafePointer<T>, da: UnsafeMutablePointer<T>, batch: Int) {
        addPatchGradients(ds: ds, kernel: weights, batch: batch, into: da, exampleStride: inputWidth, accumulate: false)
    }
    /// `da[e] (+)= col2im(Ds_e W)` for example e's T×O output gradient at `ds + e·T·O` and its
    /// input gradient at `da + e·exampleStride` (added if `accumulate`, else overwritten);
    /// `kernel` O×K (bias column skipped). A direct correlation where it applies
    /// (Conv2dDirect.swift), else patch gradients as scratch in tap order (Conv2dTapPatches.swift).
    private func addPatchGradients<T: BLASScalar>(ds: UnsafePointer<T>, kernel w: UnsafePointer<T>, batch: Int,
                                                   into da: UnsafeMutablePointer<T>, exampleStride: Int, accumulate: Bool) {
        if directGradient(T.self) {
            return directInputGradient(ds, weights: w, examples: batch, into: da, exampleStride: exampleStride, accumulate: accumulate)
        }
        let t = positions, pk = patch, o = filters
        withTapKernel(w, ld: inputFactorDimension) { tapKernel in
            inChunks(batch, perExample: t * pk, T.self) { e0, n, cols in
                T.gemm(transA: false, transB: false, m: n * t, n: pk, k: o, alpha: 1,
                       a: ds + e0 * t * o, lda: o, b: tapKernel, ldb: pk, beta: 0, c: cols, ldc: pk)
                addTapPatches(cols, examples: n, into: da + e0 * exampleStride, exampleStride: exampleStride, accumulate: accumulate)
            }
        }
    }
    public func weightGradient<T: BLASScalar>(ds: UnsafePointer<T>, abar: UnsafePointer<T>, scale: T, beta: T, gradient: UnsafeMutablePointer<T>, batch: Int) {
        if directProducts(T.self) { return directWeightGradient(ds: ds, abar: abar, scale: scale, beta: beta, gradient: gradient, batch: batch) }
        let k = inputFactorDimension
        T.gemm(transA: true, transB: false, m: filters, n: k, k: batch * positions, alpha: scale,
               a: ds, lda: filters, b: abar, ldb: k, beta: beta, c: gradient, ldc: k)
    }
    /// `dS[b,q] = Ā_b dW̄_qᵀ + patches(dA[b,q]) Wᵀ` (dS B×(Q·T·O), query-major per example):
    /// one GEMM over B·T rows for every direction, permuted to query-major, then one over
    /// B·Q·T patch rows of the input tangents (scratch, in tap order); both terms run as
    /// direct correlations where they apply (Conv2dDirect.swift).
    public func tangent<T: BLASScalar>(abar: UnsafePointer<T>, da: UnsafePointer<T>?, directions: UnsafePointer<T>, weights: UnsafePointer<T>,
                                       ds: UnsafeMutablePointer<T>, batch: Int, queries: Int) {
        if directProducts(T.self) {
            directRowsTangent(abar: abar, directions: directions, ds: ds, batch: batch, queries: queries)
            if let da { directInputTangent(da, weights: weights, images: batch * queries, into: ds) }
            return
        }
        let t = positions, o = filters, k = inputFactorDimension, pk = patch, qo = queries * o
        inChunks(batch, perExample: t * qo, T.self) { e0, n, scratch in
            T.gemm(transA: false, transB: true, m: n * t, n: qo, k: k, alpha: 1,
                   a: abar + e0 * t * k, lda: k, b: directions, ldb: k, beta: 0, c: scratch, ldc: qo)
            permute(scratch, into: ds + e0 * t * qo, examples: n, queries: queries, toQueryMajor: true)
        }
        guard let da else { return }
        withTapKernel(weights, ld: k) { tapKernel in
            inChunks(batch * queries, perExample: t * pk, T.self) { e0, n, cols in
                tapPatches(da + e0 * inputWidth, exampleStride: inputWidth, examples: n, into: cols)
                T.gemm(transA: false, transB: true, m: n * t, n: o, k: pk, alpha: 1,
                       a: cols, lda: pk, b: tapKernel, ldb: pk, beta: 1, c: ds + e0 * t * o, ldc: o)
            }
        }
    }
    /// `out[q] ← Σ_{b,t} Ds[b,q,t]ᵀ ā_{b,t} + beta·out[q]`: directly where it applies
    /// (Conv2dDirect.swift), else Ds permuted to position-major so every query's block is one
    /// GEMM over B·T rows.
    public func blockGradient<T: BLASScalar>(ds: UnsafePointer<T>, abar: UnsafePointer<T>, beta: T, out: UnsafeMutablePointer<T>, batch: Int, queries: Int) {
        let t = positions, k = inputFactorDimension, qo = queries * filters
        if directProducts(T.self) {
            if beta == 0 { out.initialize(repeating: 0, count: queries * parameterCount) } else if beta != 1 { for i in 0..<(queries * parameterCount) { out[i] *= beta } }
            return directBlockGradient(ds: ds, abar: abar, out: out, batch: batch, queries: queries)
        }
        if batch == 0 { for i in 0..<(queries * parameterCount) { out[i] *= beta } }
        inChunks(batch, perExample: t * qo, T.self) { e0, n, scratch in
            permute(ds + e0 * t * qo, into: scratch, examples: n, queries: queries, toQueryMajor: false)
            T.gemm(transA: true, transB: false, m: qo, n: k, k: n * t, alpha: 1,
                   a: scratch, lda: qo, b: abar + e0 * t * k, ldb: k, beta: e0 == 0 ? beta : 1, c: out, ldc: k)
        }
    }
}

// MARK: Curvature contractions of a convolution (spec §3, K-FC).
extension Conv2dLayer {
    public func curvatureScratchCount(batch: Int) -> Int {
        let k = inputFactorDimension
        return max(k * k, filters * filters, batch * positions * filters + filters * k)
    }
    /// `sum += (1/T) Σ_{b,t} ā_{b,t} ā_{b,t}ᵀ`: averaged over positions (K-FC).
    public func accumulateInputFactor<T: BLASScalar>(abar: UnsafePointer<T>, batch: Int, scratch: UnsafeMutablePointer<T>, into sum: UnsafeMutablePointer<Double>) {
        accumulateGram(abar, rows: batch * positions, width: inputFactorDimension, scale: 1 / Double(positions), scratch: scratch, into: sum)
    }
    /// `sum += Σ_{b,t} Ds_{b,t} Ds_{b,t}ᵀ`: summed over positions (K-FC).
    public func accumulateOutputFactor<T: BLASScalar>(ds: UnsafePointer<T>, batch: Int, scratch: UnsafeMutablePointer<T>, into sum: UnsafeMutablePointer<Double>) {
        accumulateGram(ds, rows: batch * positions, width: filters, scale: 1, scratch: scratch, into: sum)
    }
    /// The state is the batch's rows in the input eigenbasis, `Ā Q_A` (B·T×K), shared by the draws.
    public func eigenCorrectionStateCount(batch: Int) -> Int { batch * positions * inputFactorDimension }
    public func beginEigenCorrection<T: BLASScalar>(rows abar: UnsafePointer<T>, eigenvectorsA qA: UnsafePointer<T>, batch: Int, state w: UnsafeMutablePointer<T>) {
        rotateInputs(abar: abar, eigenvectorsA: qA, batch: batch * positions, into: w)
    }
    /// Per example `(Q_Sᵀ DW̄_b Q_A) = (Ds_b Q_S)ᵀ (Ā_b Q_A)`, an O×T by T×K GEMM, squared
    /// whole into the sum: the cross-position terms stay (it is not K-FC's assumption).
    public func accumulateEigenCorrectionDraw<T: BLASScalar>(ds: UnsafePointer<T>, rows abar: UnsafePointer<T>, eigenvectorsS qS: UnsafePointer<T>,
                                                             eigenvectorsA qA: UnsafePointer<T>, batch: Int, state w: UnsafeMutablePointer<T>,
                                                             scratch: UnsafeMutablePointer<T>, into sum: UnsafeMutablePointer<Double>) {
        let t = positions, o = filters, k = inputFactorDimension
        let u = scratch, g = scratch + batch * t * o
        rotateOutputs(ds, eigenvectorsS: qS, rows: batch * t, inverse: false, into: u)
        for e in 0..<batch {
            T.gemm(transA: true, transB: false, m: o, n: k, k: t, alpha: 1, a: u + e * t * o, lda: o, b: w + e * t * k, ldb: k, beta: 0, c: g, ldc: k)
            for i in 0..<(o * k) { let v = g[i].asDouble; sum[i] += v * v }
        }
    }
    public func finishEigenCorrection<T: BLASScalar>(rows abar: UnsafePointer<T>, eigenvectorsA qA: UnsafePointer<T>, batch: Int,
                                                     state: UnsafeMutablePointer<T>, scratch: UnsafeMutablePointer<T>, into sum: UnsafeMutablePointer<Double>) {}

    /// `da[b,q] += col2im(Ds_b dW_q)` (dW_q without its bias column).
    public func directionalBackwardInput<T: BLASScalar>(ds: UnsafePointer<T>, directions: UnsafePointer<T>, da: UnsafeMutablePointer<T>, batch: Int, queries: Int) {
        for q in 0..<queries {
            addPatchGradients(ds: ds, kernel: directions + q * parameterCount, batch: batch,
                              into: da + q * inputWidth, exampleStride: queries * inputWidth, accumulate: true)
        }
    }
    /// `out[q][:, 0..<C·k·k] += Σ_{b,t} Ds_{b,t} patches(dA[b,q])_tᵀ`.
    public func directionalWeightGradient<T: BLASScalar>(ds: UnsafePointer<T>, tangentInput da: UnsafePointer<T>, out: UnsafeMutablePointer<T>, batch: Int, queries: Int) {
        let t = positions, pk = patch, k = inputFactorDimension
        for q in 0..<queries {
            inChunks(batch, perExample: t * pk, T.self) { e0, n, cols in
                im2col(da + (e0 * queries + q) * inputWidth, exampleStride: queries * inputWidth, examples: n, into: cols, ld: pk, one: false)
                T.gemm(transA: true, transB: false, m: filters, n: pk, k: n * t, alpha: 1,
                       a: ds + e0 * t * filters, lda: filters, b: cols, ldb: pk, beta: 1, c: out + q * parameterCount, ldc: k)
            }
        }
    }
}

// MARK: Per-example gradients and scores of a convolution.
extension Conv2dLayer {
    /// `DW̄_e = Ds_eᵀ Ā_e`, one O×T by T×K GEMM.
    public func exampleGradient<T: BLASScalar>(ds: UnsafePointer<T>, rows abar: UnsafePointer<T>, example e: Int, into out: UnsafeMutablePointer<T>) {
        let t = positions, k = inputFactorDimension
        T.gemm(transA: true, transB: false, m: filters, n: k, k: t, alpha: 1, a: ds + e * t * filters, lda: filters, b: abar + e * t * k, ldb: k,
               beta: 0, c: out, ldc: k)
    }
    /// Examples whose gradients one scoring chunk forms (about 1 M values).
    func scoreChunk(batch: Int) -> Int { max(1, min(batch, (1 << 20) / parameterCount)) }
    public func scoreScratchCount(batch: Int) -> Int { scoreChunk(batch: batch) * parameterCount }
    /// `τ[q,b] += ⟨X_q, DW̄_b⟩`: the gradients of a chunk of examples are formed (T·O·K
    /// multiply-adds each, never kept beyond the chunk), then one GEMM `X Gᵀ` scores every
    /// query: 2·B·O·K·(T + Q) in all, against 2·B·T·O·K·Q for contracting `X Āᵀ` per position.
    public func accumulateScores<T: BLASScalar>(block x: UnsafePointer<T>, rows abar: UnsafePointer<T>, ds: UnsafePointer<T>, batch b: Int, queries qn: Int,
                                                scratch g: UnsafeMutablePointer<T>, into tau: UnsafeMutablePointer<T>) {
        let chunk = scoreChunk(batch: b), p = parameterCount
        var e0 = 0
        while e0 < b {
            let n = min(chunk, b - e0)
            for e in 0..<n { exampleGradient(ds: ds, rows: abar, example: e0 + e, into: g + e * p) }
            T.gemm(transA: false, transB: true, m: qn, n: n, k: p, alpha: 1, a: x, lda: p, b: g, ldb: p, beta: 1, c: tau + e0, ldc: b)
            e0 += n
        }
    }
}

/// `out = M Q` or, with `transpose`, `out = M Qᵀ`, for `rows` rows of M (rows×width) and Q
/// width×width: vectors into (or out of) an eigenbasis whose columns are Q's.
@inline(__always)
func rotateRows<T: BLASScalar>(_ m: UnsafePointer<T>, by q: UnsafePointer<T>, rows: Int, width: Int, transpose: Bool, into out: UnsafeMutablePointer<T>) {
    T.gemm(transA: false, transB: transpose, m: rows, n: width, k: width, alpha: 1, a: m, lda: width, b: q, ldb: width, beta: 0, c: out, ldc: width)
}
