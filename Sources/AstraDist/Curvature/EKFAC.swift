import Foundation

/// The fitted EK-FAC (and K-FAC) preconditioner `P` (spec §3): block-diagonal over layers,
/// layer block `(Q_S ⊗ Q_A) diag(vec Λ) (Q_S ⊗ Q_A)ᵀ` for row-major `vec(W̄)`, with
/// `Λ[i,j]` the corrected eigenvalue of `Q_S[:,i] ⊗ Q_A[:,j]` (K-FAC: `λ_S[i]·λ_A[j]`).
///
/// Blocks of Q vectors use the layout of `NetworkShape` (per layer (Q·O)×(I+1), layers
/// concatenated, Q·P values). The *eigenbasis layout* of a block is the same shape, entry
/// `[q, i, j]` the coefficient of eigenvector `Q_S[:,i] ⊗ Q_A[:,j]`.
public struct EKFAC: Sendable {
    /// One layer's factors, keyed by their dimensions (K = `inputFactorDimension`,
    /// O = `outputFactorDimension`; `inputs` is K − 1). Eigenvalues are float64; eigenvectors are kept in float64 and,
    /// for the production path, in float32.
    public struct LayerFactors: Sendable {
        public let inputs: Int
        public let outputs: Int
        /// (I+1)×(I+1), columns are eigenvectors of A.
        public let qA: Matrix<Double>
        /// I+1 eigenvalues of A (ascending).
        public let lambdaA: [Double]
        /// O×O, columns are eigenvectors of S.
        public let qS: Matrix<Double>
        /// O eigenvalues of S (ascending).
        public let lambdaS: [Double]
        /// O×(I+1) corrected eigenvalues `Λ[i,j]`.
        public let lambda: Matrix<Double>
        /// O×(I+1) K-FAC eigenvalues `λ_S[i]·λ_A[j]`.
        public let kfacLambda: Matrix<Double>
        let qAFloat: [Float]
        let qSFloat: [Float]

        public init(qA: Matrix<Double>, lambdaA: [Double], qS: Matrix<Double>, lambdaS: [Double], lambda: Matrix<Double>) {
            precondition(qA.rows == qA.cols && qS.rows == qS.cols && lambdaA.count == qA.rows && lambdaS.count == qS.rows
                         && lambda.rows == qS.rows && lambda.cols == qA.rows, "EKFAC.LayerFactors: inconsistent shapes")
            inputs = qA.rows - 1; outputs = qS.rows
            self.qA = qA; self.lambdaA = lambdaA; self.qS = qS; self.lambdaS = lambdaS; self.lambda = lambda
            var k = Matrix<Double>(rows: qS.rows, cols: qA.rows)
            for i in 0..<qS.rows { for j in 0..<qA.rows { k[i, j] = lambdaS[i] * lambdaA[j] } }
            kfacLambda = k
            qAFloat = qA.data.map { Float($0) }; qSFloat = qS.data.map { Float($0) }
        }
        public var parameterCount: Int { outputs * (inputs + 1) }

        /// Eigenvector pointers in T (Float or Double), valid inside `body`.
        func withEigenvectors<T: BLASScalar, R>(_: T.Type, _ body: (_ qA: UnsafePointer<T>, _ qS: UnsafePointer<T>) -> R) -> R {
            if T.self == Float.self {
                return qAFloat.withUnsafeBytes { a in qSFloat.withUnsafeBytes { s in
                    body(a.baseAddress!.assumingMemoryBound(to: T.self), s.baseAddress!.assumingMemoryBound(to: T.self))
                } }
            }
            precondition(T.self == Double.self, "EKFAC: unsupported scalar \(T.self)")
            return qA.data.withUnsafeBytes { a in qS.data.withUnsafeBytes { s in
                body(a.baseAddress!.assumingMemoryBound(to: T.self), s.baseAddress!.assumingMemoryBound(to: T.self))
            } }
        }
    }

    public let shape: NetworkShape
    public let layers: [LayerFactors]
    /// N, the number of training examples the factors average over.
    public let exampleCount: Int
    public let mode: FisherMode
    /// Provenance written with the factors (model hash, config hash, seed…); empty if none.
    public let meta: [String: String]

    public init(shape: NetworkShape, layers: [LayerFactors], exampleCount: Int, mode: FisherMode, meta: [String: String] = [:]) {
        precondition(layers.count == shape.layerCount
                     && zip(layers, shape.layers).allSatisfy { $0.qA.rows == $1.inputFactorDimension && $0.qS.rows == $1.outputFactorDimension },
                     "EKFAC: factors do not match shape \(shape)")
        self.shape = shape; self.layers = layers; self.exampleCount = exampleCount; self.mode = mode; self.meta = meta
    }

    /// Assembles the preconditioner from the eigenbases and the eigenvalue correction.
    public init(shape: NetworkShape, bases: [LayerEigenbasis], correction: EigenvalueCorrection, mode: FisherMode, meta: [String: String] = [:]) {
        precondition(correction.isMean && bases.count == correction.lambda.count)
        self.init(shape: shape,
                  layers: zip(bases, correction.lambda).map { LayerFactors(qA: $0.qA, lambdaA: $0.lambdaA, qS: $0.qS, lambdaS: $0.lambdaS, lambda: $1) },
                  exampleCount: correction.exampleCount, mode: mode, meta: meta)
    }

    /// Same factors with other provenance.
    public func with(meta: [String: String]) -> EKFAC { EKFAC(shape: shape, layers: layers, exampleCount: exampleCount, mode: mode, meta: meta) }

    // MARK: Apply

    /// Rotates a block of Q vectors into the eigenbasis: per layer and vector
    /// `out_q = Q_Sᵀ V_q Q_A`. `v` and `out` hold Q·P values and may be the same buffer.
    /// Complexity: Q·Σ_l O(I+1)(O + I+1) multiply-adds, in GEMMs.
    public func toEigenbasis<T: BLASScalar>(_ v: UnsafePointer<T>, queries: Int, into out: UnsafeMutablePointer<T>) {
        let temp = UnsafeMutablePointer<T>.allocate(capacity: max(1, queries * (layers.map(\.parameterCount).max() ?? 1)))
        defer { temp.deallocate() }
        for (l, f) in layers.enumerated() {
            let o = f.outputs, k = f.inputs + 1, base = queries * shape.offset(l)
            f.withEigenvectors(T.self) { qA, qS in
                // V Q_A for all queries at once ((Q·O)×(I+1)), then Q_Sᵀ per query.
                T.gemm(transA: false, transB: false, m: queries * o, n: k, k: k, alpha: 1, a: v + base, lda: k, b: qA, ldb: k, beta: 0, c: temp, ldc: k)
                for q in 0..<queries {
                    T.gemm(transA: true, transB: false, m: o, n: k, k: o, alpha: 1, a: qS, lda: o, b: temp + q * o * k, ldb: k,
                           beta: 0, c: out + base + q * o * k, ldc: k)
                }
            }
        }
    }

    /// Network parameters with each layer's output side in the eigenbasis, `Q_Sᵀ W̄_l` (P
    /// values): tangents of an eigen-coordinate block then come out rotated,
    /// `dA Wᵀ Q_S = dA (Q_Sᵀ W)ᵀ`, and `Ds W = (Ds Q_S)(Q_Sᵀ W)`.
    public func outputRotatedWeights<T: BLASScalar>(_ w: UnsafePointer<T>) -> [T] {
        var out = [T](repeating: 0, count: shape.parameterCount)
        out.withUnsafeMutableBufferPointer { op in
            for (l, f) in layers.enumerated() {
                let o = f.outputs, k = f.inputs + 1, base = shape.offset(l)
                f.withEigenvectors(T.self) { _, qS in
                    T.gemm(transA: true, transB: false, m: o, n: k, k: o, alpha: 1, a: qS, lda: o, b: w + base, ldb: k,
                           beta: 0, c: op.baseAddress! + base, ldc: k)
                }
            }
        }
        return out
    }

    /// The inverse rotation: per layer and vector `out_q = Q_S Y_q Q_Aᵀ`. May run in place.
    public func fromEigenbasis<T: BLASScalar>(_ y: UnsafePointer<T>, queries: Int, into out: UnsafeMutablePointer<T>) {
        let temp = UnsafeMutablePointer<T>.allocate(capacity: max(1, queries * (layers.map(\.parameterCount).max() ?? 1)))
        defer { temp.deallocate() }
        for (l, f) in layers.enumerated() {
            let o = f.outputs, k = f.inputs + 1, base = queries * shape.offset(l)
            f.withEigenvectors(T.self) { qA, qS in
                for q in 0..<queries {
                    T.gemm(transA: false, transB: false, m: o, n: k, k: o, alpha: 1, a: qS, lda: o, b: y + base + q * o * k, ldb: k,
                           beta: 0, c: temp + q * o * k, ldc: k)
                }
                T.gemm(transA: false, transB: true, m: queries * o, n: k, k: k, alpha: 1, a: temp, lda: k, b: qA, ldb: k, beta: 0, c: out + base, ldc: k)
            }
        }
    }

    /// `out = (P + λI)⁻¹ v` for a block of Q vectors: per layer and vector
    /// `Q_S [(Q_Sᵀ V Q_A) ⊘ (Λ + λ)] Q_Aᵀ` (K-FAC: `Λ = λ_S λ_Aᵀ`). May run in place.
    /// Precondition: `Λ + λ > 0` everywhere (λ > 0 suffices).
    public func apply<T: BLASScalar>(_ v: UnsafePointer<T>, queries: Int, damping: Double, kfac: Bool = false, into out: UnsafeMutablePointer<T>) {
        toEigenbasis(v, queries: queries, into: out)
        scaleInEigenbasis(out, queries: queries, damping: damping, kfac: kfac, power: -1)
        fromEigenbasis(UnsafePointer(out), queries: queries, into: out)
    }

    /// Multiplies a block in the eigenbasis layout by `(Λ + λ)^power` (power −1: the inverse,
    /// +1: the operator itself).
    public func scaleInEigenbasis<T: BLASScalar>(_ y: UnsafeMutablePointer<T>, queries: Int, damping: Double, kfac: Bool = false, power: Int) {
        precondition(power == 1 || power == -1, "scaleInEigenbasis: power must be ±1")
        scaleInEigenbasis(y, queries: queries, kfac: kfac) { power == 1 ? $0 + damping : 1 / ($0 + damping) }
    }

    /// Multiplies a block in the eigenbasis layout by `function(Λ)`, entry by entry: any
    /// function of the preconditioner (SOURCE's `exp(−tΛ)`, `(1 − exp(−tΛ))/Λ`).
    public func scaleInEigenbasis<T: BLASScalar>(_ y: UnsafeMutablePointer<T>, queries: Int, kfac: Bool = false, by function: (Double) -> Double) {
        for (l, f) in layers.enumerated() {
            let e = kfac ? f.kfacLambda.data : f.lambda.data, n = f.parameterCount, base = y + queries * shape.offset(l)
            let scale = e.map { T(function($0)) }
            scale.withUnsafeBufferPointer { s in
                for q in 0..<queries { let b = base + q * n; for k in 0..<n { b[k] *= s[k] } }
            }
        }
    }

    /// Array form of `apply` (Q·P values in and out).
    public func apply<T: BLASScalar>(_ v: [T], queries: Int, damping: Double, kfac: Bool = false) -> [T] {
        precondition(v.count == queries * shape.parameterCount, "EKFAC.apply: \(v.count) values for \(queries) vectors of \(shape.parameterCount)")
        var out = v
        v.withUnsafeBufferPointer { vp in out.withUnsafeMutableBufferPointer { apply(vp.baseAddress!, queries: queries, damping: damping, kfac: kfac, into: $0.baseAddress!) } }
        return out
    }

    /// Eigenvalues of `P + λI` in the eigenbasis layout of one vector (P values):
    /// per layer `Λ[i,j] + λ` row-major (K-FAC: `λ_S[i]λ_A[j] + λ`).
    public func diagonal(damping: Double = 0, kfac: Bool = false) -> [Double] {
        layers.flatMap { (kfac ? $0.kfacLambda : $0.lambda).data.map { $0 + damping } }
    }

    /// The explicit P×P matrix `P` (block-diagonal). Small networks only: O(Σ_l P_l³).
    public func denseMatrix(kfac: Bool = false) -> Matrix<Double> {
        let p = shape.parameterCount
        var m = Matrix<Double>(rows: p, cols: p)
        for (l, f) in layers.enumerated() {
            let k = kroneckerProduct(f.qS, f.qA), n = f.parameterCount, e = (kfac ? f.kfacLambda : f.lambda).data
            var scaled = k
            for r in 0..<n { for c in 0..<n { scaled[r, c] *= e[c] } }
            let block = scaled.multiplied(by: k, transposeOther: true)
            let o = shape.offset(l)
            for r in 0..<n { for c in 0..<n { m[o + r, o + c] = 0.5 * (block[r, c] + block[c, r]) } }
        }
        return m
    }
}

/// `A ⊗ B`: entry `[(i·rows_B + k), (j·cols_B + l)] = A[i,j]·B[k,l]`.
public func kroneckerProduct(_ a: Matrix<Double>, _ b: Matrix<Double>) -> Matrix<Double> {
    var k = Matrix<Double>(rows: a.rows * b.rows, cols: a.cols * b.cols)
    for i in 0..<a.rows { for j in 0..<a.cols {
        let v = a[i, j]
        for r in 0..<b.rows { for c in 0..<b.cols { k[i * b.rows + r, j * b.cols + c] = v * b[r, c] } }
    } }
    return k
}
