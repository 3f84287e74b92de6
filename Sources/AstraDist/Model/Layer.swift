/// A parameterised operation of a network. It owns every contraction that involves its own
/// parameter structure, so the network walk, solvers, curvature and scoring never see how a
/// layer multiplies (spec §3, the kronfluence design): it turns its input value into *rows*
/// `ā` (positions per example × K, K = `inputFactorDimension`, the augmented input `[a; 1]`
/// for a linear layer, im2col patches for a convolution), and its output `s` and the
/// gradient `Ds` with respect to it are positions per example × O. Parameters are O×K
/// row-major (bias last), a block of Q directions (Q·O)×K. Buffers are row-major; "B×O"
/// below reads "B·positions×O" for a layer with several positions per example.
///
/// Implementations: `LinearLayer`, `Conv2dLayer`. A new kind is one file conforming to this protocol, a
/// case of `NetworkLayer` and an entry in `OperationConformanceTests`.
public protocol Layer: Sendable {
    /// Width of the input value per example.
    var inputWidth: Int { get }
    /// Width of the output value per example (positions·O).
    var outputWidth: Int { get }
    /// Rows per example (1 for a linear layer, output positions for a convolution).
    var positions: Int { get }
    var parameterCount: Int { get }
    /// `rows = ā` from the input value (B×inputWidth): B·positions×K.
    func makeRows<T: BLASScalar>(input: UnsafePointer<T>, batch: Int, into rows: UnsafeMutablePointer<T>)
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
    /// `sum += Σ_b ā_b ā_bᵀ` (K×K, Double): one SYRK in T into `scratch`, then added to the
    /// Double accumulator. A layer with several positions averages over them (K-FC, spec §3).
    func accumulateInputFactor<T: BLASScalar>(abar: UnsafePointer<T>, batch: Int, scratch: UnsafeMutablePointer<T>, into sum: UnsafeMutablePointer<Double>)
    /// `sum += Σ_b Ds_b Ds_bᵀ` (O×O, Double), SYRK in T; summed over positions.
    func accumulateOutputFactor<T: BLASScalar>(ds: UnsafePointer<T>, batch: Int, scratch: UnsafeMutablePointer<T>, into sum: UnsafeMutablePointer<Double>)
    /// The EK-FAC correction `sum[i,j] += Σ_b Σ_draws ((Q_Sᵀ DW̄_b Q_A)_ij)²` (O×K, Double) of
    /// the per-example gradients `DW̄_b` of a batch, in three calls: `beginEigenCorrection`
    /// once, `accumulateEigenCorrectionDraw` per pseudo-gradient draw (Ds of that draw), and
    /// `finishEigenCorrection`. `state` (`eigenCorrectionStateCount` values of T) carries what
    /// the layer keeps between them; `qS` O×O and `qA` K×K row-major, columns eigenvectors.
    func eigenCorrectionStateCount(batch: Int) -> Int
    /// `rows` and `qA` as in the draws, so a layer can rotate the rows once for all of them.
    func beginEigenCorrection<T: BLASScalar>(rows: UnsafePointer<T>, eigenvectorsA qA: UnsafePointer<T>, batch: Int, state: UnsafeMutablePointer<T>)
    func accumulateEigenCorrectionDraw<T: BLASScalar>(ds: UnsafePointer<T>, rows: UnsafePointer<T>, eigenvectorsS qS: UnsafePointer<T>,
                                                      eigenvectorsA qA: UnsafePointer<T>, batch: Int, state: UnsafeMutablePointer<T>,
                                                      scratch: UnsafeMutablePointer<T>, into sum: UnsafeMutablePointer<Double>)
    func finishEigenCorrection<T: BLASScalar>(rows: UnsafePointer<T>, eigenvectorsA qA: UnsafePointer<T>, batch: Int,
                                              state: UnsafeMutablePointer<T>, scratch: UnsafeMutablePointer<T>, into sum: UnsafeMutablePointer<Double>)

    // MARK: Per-example gradients and scores (spec §6).

    /// Writes example e's gradient `DW̄_e = Σ_t Ds_{e,t} ā_{e,t}ᵀ` (O×K) to `out` (queries'
    /// gradients and the dense references; never formed for the training set).
    func exampleGradient<T: BLASScalar>(ds: UnsafePointer<T>, rows: UnsafePointer<T>, example e: Int, into out: UnsafeMutablePointer<T>)
    /// T scratch elements `accumulateScores` needs for a batch of B.
    func scoreScratchCount(batch: Int) -> Int
    /// `τ[q,b] += ⟨X_q, DW̄_b⟩` for a block X ((Q·O)×K; in the eigenbasis pass rotated rows
    /// and Ds) and every example b of the batch (τ Q×B), without forming `DW̄_b`.
    func accumulateScores<T: BLASScalar>(block: UnsafePointer<T>, rows: UnsafePointer<T>, ds: UnsafePointer<T>, batch: Int, queries: Int,
                                         scratch: UnsafeMutablePointer<T>, into tau: UnsafeMutablePointer<T>)

    // MARK: Second-order terms of the exact Hessian (R-operator; spec §12).

    /// `da[b,q,:] += Ds[b,:] dW_q` (dW_q the O×I weight part of direction q), da B×(Q·I), Ds B×O.
    func directionalBackwardInput<T: BLASScalar>(ds: UnsafePointer<T>, directions: UnsafePointer<T>, da: UnsafeMutablePointer<T>, batch: Int, queries: Int)
    /// `out[q][:, 0..<I] += Dsᵀ dA[:,q,:]` (the bias column gets nothing: `dā` ends in 0),
    /// Ds B×O, dA B×(Q·I), out (Q·O)×(I+1).
    func directionalWeightGradient<T: BLASScalar>(ds: UnsafePointer<T>, tangentInput da: UnsafePointer<T>, out: UnsafeMutablePointer<T>, batch: Int, queries: Int)
}


extension Layer {
    /// Rows times the eigenvectors (K = `inputFactorDimension` wide): every layer's rows are
    /// plain K-vectors, so this default serves all kinds.
    public func rotateInputs<T: BLASScalar>(abar: UnsafePointer<T>, eigenvectorsA qA: UnsafePointer<T>, batch: Int, into out: UnsafeMutablePointer<T>) {
        rotateRows(abar, by: qA, rows: batch, width: inputFactorDimension, transpose: false, into: out)
    }
    public func rotateOutputs<T: BLASScalar>(_ d: UnsafePointer<T>, eigenvectorsS qS: UnsafePointer<T>, rows: Int, inverse: Bool,
                                             into out: UnsafeMutablePointer<T>) {
        rotateRows(d, by: qS, rows: rows, width: outputFactorDimension, transpose: inverse, into: out)
    }

    /// Block input gradient: `Da[b,q,:] = Ds[b,q,:] W`, Da (B·Q)×inputWidth: the input
    /// gradient of B·Q examples.
    @inline(__always)
    public func blockBackwardInput<T: BLASScalar>(ds: UnsafePointer<T>, weights: UnsafePointer<T>, da: UnsafeMutablePointer<T>, batch: Int, queries: Int) {
        backwardInput(ds: ds, weights: weights, da: da, batch: batch * queries)
    }
}

/// `sum += scale · Mᵀ M` (width×width, Double) for `rows` rows of M: one SYRK in T into
/// `scratch` (width² values), then added to the Double accumulator (scale 1 is exact).
@inline(__always)
func accumulateGram<T: BLASScalar>(_ m: UnsafePointer<T>, rows: Int, width: Int, scale: Double, scratch: UnsafeMutablePointer<T>,
                                   into sum: UnsafeMutablePointer<Double>) {
    guard rows > 0 else { return }
    T.syrkTransposed(n: width, k: rows, alpha: 1, a: m, lda: width, beta: 0, c: scratch, ldc: width)
    for k in 0..<(width * width) { sum[k] += scratch[k].asDouble * scale }
}
