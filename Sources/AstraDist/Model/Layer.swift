/// A layer owns every contraction that involves its own parameter structure, so solvers,
/// curvature and scoring never see how a layer multiplies. Buffers are row-major; `ā` is
/// the augmented input `[a; 1]` (B×(I+1)), `s` the pre-activation (B×O), `Ds` the gradient
/// with respect to `s` (B×O), and a parameter block is (Q·O)×(I+1).
///
/// `LinearLayer` is the implementation today; a convolution (K-FC: im2col patches, factors
/// averaged over positions) implements the same requirements.
public protocol Layer: Sendable {
    var inputs: Int { get }
    var outputs: Int { get }
    var parameterCount: Int { get }
    /// `s = ā W̄ᵀ`.
    func forward<T: BLASScalar>(abar: UnsafePointer<T>, weights: UnsafePointer<T>, s: UnsafeMutablePointer<T>, batch: Int)
    /// `Da = Ds W` (the input gradient, bias column dropped), B×I.
    func backwardInput<T: BLASScalar>(ds: UnsafePointer<T>, weights: UnsafePointer<T>, da: UnsafeMutablePointer<T>, batch: Int)
    /// `grad ← scale·Dsᵀ ā + beta·grad` (O×(I+1)): the summed weight gradient.
    func weightGradient<T: BLASScalar>(ds: UnsafePointer<T>, abar: UnsafePointer<T>, scale: T, beta: T, gradient: UnsafeMutablePointer<T>, batch: Int)
    /// Forward-mode tangent for Q directions: `dS[b,q,:] = dW̄_q ā_b + W Da[b,q,:]`, dS B×(Q·O);
    /// `da` is B×(Q·I) or nil for the first layer (the data has no tangent).
    func tangent<T: BLASScalar>(abar: UnsafePointer<T>, da: UnsafePointer<T>?, directions: UnsafePointer<T>, weights: UnsafePointer<T>,
                                ds: UnsafeMutablePointer<T>, batch: Int, queries: Int)
    /// Block gradient for Q cotangents: `out[q] ← Ds[:,q,:]ᵀ ā + beta·out[q]`, Ds B×(Q·O).
    func blockGradient<T: BLASScalar>(ds: UnsafePointer<T>, abar: UnsafePointer<T>, beta: T, out: UnsafeMutablePointer<T>, batch: Int, queries: Int)
    /// Block input gradient: `Da[b,q,:] = Ds[b,q,:] W`, Da (B·Q)×I.
    func blockBackwardInput<T: BLASScalar>(ds: UnsafePointer<T>, weights: UnsafePointer<T>, da: UnsafeMutablePointer<T>, batch: Int, queries: Int)
}

/// A fully connected layer `s = W̄ ā`, W̄ O×(I+1).
public struct LinearLayer: Layer, Equatable {
    public let inputs: Int
    public let outputs: Int
    public init(inputs: Int, outputs: Int) { self.inputs = inputs; self.outputs = outputs }
    public var parameterCount: Int { outputs * (inputs + 1) }
    /// Width of the augmented input `ā`.
    public var augmented: Int { inputs + 1 }

    public func forward<T: BLASScalar>(abar: UnsafePointer<T>, weights: UnsafePointer<T>, s: UnsafeMutablePointer<T>, batch: Int) {
        T.gemm(transA: false, transB: true, m: batch, n: outputs, k: augmented, alpha: 1,
               a: abar, lda: augmented, b: weights, ldb: augmented, beta: 0, c: s, ldc: outputs)
    }
    public func backwardInput<T: BLASScalar>(ds: UnsafePointer<T>, weights: UnsafePointer<T>, da: UnsafeMutablePointer<T>, batch: Int) {
        // ldb = I+1 skips the bias column of W̄.
        T.gemm(transA: false, transB: false, m: batch, n: inputs, k: outputs, alpha: 1,
               a: ds, lda: outputs, b: weights, ldb: augmented, beta: 0, c: da, ldc: inputs)
    }
    public func weightGradient<T: BLASScalar>(ds: UnsafePointer<T>, abar: UnsafePointer<T>, scale: T, beta: T, gradient: UnsafeMutablePointer<T>, batch: Int) {
        T.gemm(transA: true, transB: false, m: outputs, n: augmented, k: batch, alpha: scale,
               a: ds, lda: outputs, b: abar, ldb: augmented, beta: beta, c: gradient, ldc: augmented)
    }
    public func tangent<T: BLASScalar>(abar: UnsafePointer<T>, da: UnsafePointer<T>?, directions: UnsafePointer<T>, weights: UnsafePointer<T>,
                                       ds: UnsafeMutablePointer<T>, batch: Int, queries: Int) {
        // ā (B×(I+1)) · dW̄ᵀ ((I+1)×(Q·O)) → B×(Q·O)
        T.gemm(transA: false, transB: true, m: batch, n: queries * outputs, k: augmented, alpha: 1,
               a: abar, lda: augmented, b: directions, ldb: augmented, beta: 0, c: ds, ldc: queries * outputs)
        if let da {
            // Da ((B·Q)×I) · Wᵀ (I×O) → (B·Q)×O, the same memory as B×(Q·O)
            T.gemm(transA: false, transB: true, m: batch * queries, n: outputs, k: inputs, alpha: 1,
                   a: da, lda: inputs, b: weights, ldb: augmented, beta: 1, c: ds, ldc: outputs)
        }
    }
    public func blockGradient<T: BLASScalar>(ds: UnsafePointer<T>, abar: UnsafePointer<T>, beta: T, out: UnsafeMutablePointer<T>, batch: Int, queries: Int) {
        // Dsᵀ ((Q·O)×B) · ā (B×(I+1)) → (Q·O)×(I+1): every query's block in one GEMM
        T.gemm(transA: true, transB: false, m: queries * outputs, n: augmented, k: batch, alpha: 1,
               a: ds, lda: queries * outputs, b: abar, ldb: augmented, beta: beta, c: out, ldc: augmented)
    }
    public func blockBackwardInput<T: BLASScalar>(ds: UnsafePointer<T>, weights: UnsafePointer<T>, da: UnsafeMutablePointer<T>, batch: Int, queries: Int) {
        backwardInput(ds: ds, weights: weights, da: da, batch: batch * queries)
    }
}
