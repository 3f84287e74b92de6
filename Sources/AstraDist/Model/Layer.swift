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

    // MARK: The EK-FAC eigenbasis: a block `Y` in eigen-coordinates is `W̄ = Q_S Y Q_Aᵀ`, so
    // `W̄ ā = Q_S Y (Q_Aᵀ ā)` and `Q_Sᵀ(Ds āᵀ)Q_A = (Q_Sᵀ Ds)(Q_Aᵀ ā)ᵀ`: rotating the batch
    // once serves every query.

    /// `out = Ā Q_A` (B×(I+1)): the augmented inputs in the input factor's eigenbasis.
    /// `qA` is (I+1)×(I+1) row-major, columns eigenvectors.
    func rotateInputs<T: BLASScalar>(abar: UnsafePointer<T>, eigenvectorsA qA: UnsafePointer<T>, batch: Int, into out: UnsafeMutablePointer<T>)
    /// `out = D Q_S` (into the output factor's eigenbasis) or, with `inverse`, `out = D Q_Sᵀ`
    /// (back), for `rows` output-side vectors D (rows×O; e.g. B·Q tangents).
    func rotateOutputs<T: BLASScalar>(_ d: UnsafePointer<T>, eigenvectorsS qS: UnsafePointer<T>, rows: Int, inverse: Bool,
                                      into out: UnsafeMutablePointer<T>)

    // MARK: Curvature (spec §3): Kronecker-factor statistics and the eigenvalue correction.

    /// Side of the input factor `A` (I+1 for a linear layer).
    var inputFactorDimension: Int { get }
    /// Side of the output factor `S` (O for a linear layer).
    var outputFactorDimension: Int { get }
    /// T scratch elements the curvature methods below need for a batch of B.
    func curvatureScratchCount(batch: Int) -> Int
    /// `sum += Σ_b ā_b ā_bᵀ` ((I+1)×(I+1), Double): one SYRK in T into `scratch`, then added
    /// to the Double accumulator.
    func accumulateInputFactor<T: BLASScalar>(abar: UnsafePointer<T>, batch: Int, scratch: UnsafeMutablePointer<T>, into sum: UnsafeMutablePointer<Double>)
    /// `sum += Σ_b Ds_b Ds_bᵀ` (O×O, Double), SYRK in T.
    func accumulateOutputFactor<T: BLASScalar>(ds: UnsafePointer<T>, batch: Int, scratch: UnsafeMutablePointer<T>, into sum: UnsafeMutablePointer<Double>)
    /// `u2[b,i] += ((Q_Sᵀ Ds_b)_i)²` (u2 B×O, in T; `qS` O×O row-major, columns eigenvectors).
    /// Called once per pseudo-gradient draw, so exact mode sums the squares over draws.
    func accumulateRotatedOutputSquares<T: BLASScalar>(ds: UnsafePointer<T>, eigenvectorsS qS: UnsafePointer<T>, batch: Int,
                                                       scratch: UnsafeMutablePointer<T>, into u2: UnsafeMutablePointer<T>)
    /// The EK-FAC correction of rank-one per-example gradients:
    /// `sum[i,j] += Σ_b u2[b,i] · ((Q_Aᵀ ā_b)_j)²` (O×(I+1), Double), i.e. one GEMM `(U²)ᵀ W²`.
    func accumulateEigenCorrection<T: BLASScalar>(abar: UnsafePointer<T>, rotatedOutputSquares u2: UnsafePointer<T>, eigenvectorsA qA: UnsafePointer<T>,
                                                  batch: Int, scratch: UnsafeMutablePointer<T>, into sum: UnsafeMutablePointer<Double>)

    // MARK: Second-order terms of the exact Hessian (R-operator; spec §12).

    /// `da[b,q,:] += Ds[b,:] dW_q` (dW_q the O×I weight part of direction q), da B×(Q·I), Ds B×O.
    func directionalBackwardInput<T: BLASScalar>(ds: UnsafePointer<T>, directions: UnsafePointer<T>, da: UnsafeMutablePointer<T>, batch: Int, queries: Int)
    /// `out[q][:, 0..<I] += Dsᵀ dA[:,q,:]` (the bias column gets nothing: `dā` ends in 0),
    /// Ds B×O, dA B×(Q·I), out (Q·O)×(I+1).
    func directionalWeightGradient<T: BLASScalar>(ds: UnsafePointer<T>, tangentInput da: UnsafePointer<T>, out: UnsafeMutablePointer<T>, batch: Int, queries: Int)
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
    public func rotateInputs<T: BLASScalar>(abar: UnsafePointer<T>, eigenvectorsA qA: UnsafePointer<T>, batch: Int, into out: UnsafeMutablePointer<T>) {
        T.gemm(transA: false, transB: false, m: batch, n: augmented, k: augmented, alpha: 1,
               a: abar, lda: augmented, b: qA, ldb: augmented, beta: 0, c: out, ldc: augmented)
    }
    public func rotateOutputs<T: BLASScalar>(_ d: UnsafePointer<T>, eigenvectorsS qS: UnsafePointer<T>, rows: Int, inverse: Bool,
                                             into out: UnsafeMutablePointer<T>) {
        T.gemm(transA: false, transB: inverse, m: rows, n: outputs, k: outputs, alpha: 1,
               a: d, lda: outputs, b: qS, ldb: outputs, beta: 0, c: out, ldc: outputs)
    }
}

// MARK: Curvature contractions of a fully connected layer (spec §3).
extension LinearLayer {
    public var inputFactorDimension: Int { augmented }
    public var outputFactorDimension: Int { outputs }
    public func curvatureScratchCount(batch: Int) -> Int {
        max(augmented * augmented, outputs * outputs, batch * outputs, batch * augmented + outputs * augmented)
    }
    public func accumulateInputFactor<T: BLASScalar>(abar: UnsafePointer<T>, batch: Int, scratch: UnsafeMutablePointer<T>, into sum: UnsafeMutablePointer<Double>) {
        guard batch > 0 else { return }
        T.syrkTransposed(n: augmented, k: batch, alpha: 1, a: abar, lda: augmented, beta: 0, c: scratch, ldc: augmented)
        for k in 0..<(augmented * augmented) { sum[k] += scratch[k].asDouble }
    }
    public func accumulateOutputFactor<T: BLASScalar>(ds: UnsafePointer<T>, batch: Int, scratch: UnsafeMutablePointer<T>, into sum: UnsafeMutablePointer<Double>) {
        guard batch > 0 else { return }
        T.syrkTransposed(n: outputs, k: batch, alpha: 1, a: ds, lda: outputs, beta: 0, c: scratch, ldc: outputs)
        for k in 0..<(outputs * outputs) { sum[k] += scratch[k].asDouble }
    }
    public func accumulateRotatedOutputSquares<T: BLASScalar>(ds: UnsafePointer<T>, eigenvectorsS qS: UnsafePointer<T>, batch: Int,
                                                              scratch: UnsafeMutablePointer<T>, into u2: UnsafeMutablePointer<T>) {
        guard batch > 0 else { return }
        // U = Ds Q_S (B×O): row b is (Q_Sᵀ Ds_b)ᵀ.
        rotateOutputs(ds, eigenvectorsS: qS, rows: batch, inverse: false, into: scratch)
        for k in 0..<(batch * outputs) { let u = scratch[k]; u2[k] += u * u }
    }
    public func accumulateEigenCorrection<T: BLASScalar>(abar: UnsafePointer<T>, rotatedOutputSquares u2: UnsafePointer<T>, eigenvectorsA qA: UnsafePointer<T>,
                                                         batch: Int, scratch: UnsafeMutablePointer<T>, into sum: UnsafeMutablePointer<Double>) {
        guard batch > 0 else { return }
        let w = scratch, lambda = scratch + batch * augmented
        // W = Ā Q_A (B×(I+1)), squared in place.
        rotateInputs(abar: abar, eigenvectorsA: qA, batch: batch, into: w)
        for k in 0..<(batch * augmented) { let v = w[k]; w[k] = v * v }
        // (U²)ᵀ W² (O×(I+1)): every example's rank-one correction in one GEMM.
        T.gemm(transA: true, transB: false, m: outputs, n: augmented, k: batch, alpha: 1,
               a: u2, lda: outputs, b: w, ldb: augmented, beta: 0, c: lambda, ldc: augmented)
        for k in 0..<(outputs * augmented) { sum[k] += lambda[k].asDouble }
    }
    public func directionalBackwardInput<T: BLASScalar>(ds: UnsafePointer<T>, directions: UnsafePointer<T>, da: UnsafeMutablePointer<T>, batch: Int, queries: Int) {
        for q in 0..<queries {
            // Ds (B×O) · dW_q (O×I, ldb = I+1 skips the bias column) → da[:, q, :] (ldc = Q·I).
            T.gemm(transA: false, transB: false, m: batch, n: inputs, k: outputs, alpha: 1,
                   a: ds, lda: outputs, b: directions + q * parameterCount, ldb: augmented, beta: 1, c: da + q * inputs, ldc: queries * inputs)
        }
    }
    public func directionalWeightGradient<T: BLASScalar>(ds: UnsafePointer<T>, tangentInput da: UnsafePointer<T>, out: UnsafeMutablePointer<T>, batch: Int, queries: Int) {
        for q in 0..<queries {
            // Dsᵀ (O×B) · dA[:, q, :] (B×I) → out[q][:, 0..<I].
            T.gemm(transA: true, transB: false, m: outputs, n: inputs, k: batch, alpha: 1,
                   a: ds, lda: outputs, b: da + q * inputs, ldb: queries * inputs, beta: 1, c: out + q * parameterCount, ldc: augmented)
        }
    }
}
