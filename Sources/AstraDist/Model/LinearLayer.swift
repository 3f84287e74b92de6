/// A fully connected layer `s = W̄ ā`, W̄ O×(I+1): one row `ā = [a; 1]` per example, so
/// every per-example gradient is rank one, `Ds āᵀ`, and fit, correction and scoring
/// contract with its two factors instead of forming it.
public struct LinearLayer: Layer, Equatable {
    public let inputs: Int
    public let outputs: Int
    public init(inputs: Int, outputs: Int) { self.inputs = inputs; self.outputs = outputs }
    public var parameterCount: Int { outputs * (inputs + 1) }
    /// Width of the augmented input `ā`.
    public var augmented: Int { inputs + 1 }
    public var inputWidth: Int { inputs }
    public var outputWidth: Int { outputs }
    public var positions: Int { 1 }

    public func makeRows<T: BLASScalar>(input: UnsafePointer<T>, batch: Int, into rows: UnsafeMutablePointer<T>) {
        for b in 0..<batch {
            (rows + b * augmented).update(from: input + b * inputs, count: inputs)
            rows[b * augmented + inputs] = 1
        }
    }

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
}

// MARK: Curvature contractions of a fully connected layer (spec §3).
extension LinearLayer {
    public var inputFactorDimension: Int { augmented }
    public var outputFactorDimension: Int { outputs }
    public func curvatureScratchCount(batch: Int) -> Int {
        max(augmented * augmented, outputs * outputs, batch * outputs, batch * augmented + outputs * augmented)
    }
    public func accumulateInputFactor<T: BLASScalar>(abar: UnsafePointer<T>, batch: Int, scratch: UnsafeMutablePointer<T>, into sum: UnsafeMutablePointer<Double>) {
        accumulateGram(abar, rows: batch, width: augmented, scale: 1, scratch: scratch, into: sum)
    }
    public func accumulateOutputFactor<T: BLASScalar>(ds: UnsafePointer<T>, batch: Int, scratch: UnsafeMutablePointer<T>, into sum: UnsafeMutablePointer<Double>) {
        accumulateGram(ds, rows: batch, width: outputs, scale: 1, scratch: scratch, into: sum)
    }
    public func eigenCorrectionStateCount(batch: Int) -> Int { batch * outputs }
    public func beginEigenCorrection<T: BLASScalar>(rows: UnsafePointer<T>, eigenvectorsA qA: UnsafePointer<T>, batch: Int, state u2: UnsafeMutablePointer<T>) {
        u2.initialize(repeating: 0, count: batch * outputs)
    }
    /// Rank one: `Σ_draws (u_d ⊗ w)² = (Σ_d u_d²) ⊗ w²`, so a draw only adds `u² = (Ds Q_S)²`
    /// into the state and `finishEigenCorrection` does one GEMM for all draws.
    public func accumulateEigenCorrectionDraw<T: BLASScalar>(ds: UnsafePointer<T>, rows abar: UnsafePointer<T>, eigenvectorsS qS: UnsafePointer<T>,
                                                             eigenvectorsA qA: UnsafePointer<T>, batch: Int, state u2: UnsafeMutablePointer<T>,
                                                             scratch: UnsafeMutablePointer<T>, into sum: UnsafeMutablePointer<Double>) {
        guard batch > 0 else { return }
        // U = Ds Q_S (B×O): row b is (Q_Sᵀ Ds_b)ᵀ.
        rotateOutputs(ds, eigenvectorsS: qS, rows: batch, inverse: false, into: scratch)
        for k in 0..<(batch * outputs) { let u = scratch[k]; u2[k] += u * u }
    }
    public func finishEigenCorrection<T: BLASScalar>(rows abar: UnsafePointer<T>, eigenvectorsA qA: UnsafePointer<T>, batch: Int,
                                                     state u2: UnsafeMutablePointer<T>, scratch: UnsafeMutablePointer<T>, into sum: UnsafeMutablePointer<Double>) {
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

// MARK: Per-example gradients and scores of a fully connected layer: rank one.
extension LinearLayer {
    public func exampleGradient<T: BLASScalar>(ds: UnsafePointer<T>, rows abar: UnsafePointer<T>, example e: Int, into out: UnsafeMutablePointer<T>) {
        let d = ds + e * outputs, a = abar + e * augmented
        for r in 0..<outputs { let dr = d[r]; for c in 0..<augmented { out[r * augmented + c] = dr * a[c] } }
    }

    /// Values of the GEMM result kept per query chunk (about 1 MiB of floats: within L2).
    static var scoreCacheValues: Int { 256 * 1024 }
    public func scoreScratchCount(batch: Int) -> Int { max(Self.scoreCacheValues, outputs * batch) + outputs * batch }

    /// `τ[q,b] += Ds_bᵀ X_q ā_b`: one GEMM `M = X Āᵀ` ((Q·O)×B) per query chunk, then a
    /// Hadamard reduction with `Ds` over O.
    public func accumulateScores<T: BLASScalar>(block x: UnsafePointer<T>, rows abar: UnsafePointer<T>, ds: UnsafePointer<T>, batch b: Int, queries qn: Int,
                                                scratch: UnsafeMutablePointer<T>, into tau: UnsafeMutablePointer<T>) {
        let o = outputs, a = augmented, m = scratch, dsT = scratch + max(Self.scoreCacheValues, o * b)
        // Dsᵀ (O×B) so the reduction below runs over contiguous rows.
        for i in 0..<b { for r in 0..<o { dsT[r * b + i] = ds[i * o + r] } }
        // Queries in chunks whose M = X_chunk Āᵀ ((chunk·O)×B) stays in cache for the reduction.
        let chunk = max(1, min(qn, Self.scoreCacheValues / max(o * b, 1)))
        var q0 = 0
        while q0 < qn {
            let qc = min(chunk, qn - q0)
            T.gemm(transA: false, transB: true, m: qc * o, n: b, k: a, alpha: 1,
                   a: x + q0 * parameterCount, lda: a, b: abar, ldb: a, beta: 0, c: m, ldc: b)
            for q in 0..<qc {
                let t = tau + (q0 + q) * b
                for r in 0..<o {
                    let row = m + (q * o + r) * b, d = dsT + r * b
                    for i in 0..<b { t[i] += row[i] * d[i] }
                }
            }
            q0 += qc
        }
    }
}
