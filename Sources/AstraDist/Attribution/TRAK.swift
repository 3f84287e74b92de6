/// TRAK for one model (spec §8; Park et al. 2023): `τ(m, q) = ψ_qᵀ (ΦᵀΦ + εI)⁻¹ φ_m · Q_mm`,
/// Φ the N×k projected training features, ψ the query features (`TRAKFeatures`).
///
/// Distributed: each rank projects its shard of the training set (Φ_r, rows × k), the Gram
/// matrix `ΦᵀΦ = Σ_r Φ_rᵀΦ_r` is summed in Double with one allreduce of k² values, every rank
/// solves `(ΦᵀΦ + εI) X = Ψᵀ` (Cholesky, k×k, identical input on every rank) and scores its
/// own shard. The projection is keyed by seed and layer, so the scores are the same on any
/// rank count up to the summation order of ΦᵀΦ.
public enum TRAK {
    public struct Options: Sendable {
        public var projection: TRAKProjection
        /// ε = ridgeScale·tr(ΦᵀΦ)/k (default 1e-6: ΦᵀΦ is singular whenever k > N).
        public var ridgeScale: Double
        /// Multiply by `Q_mm` (TRAK's re-weighting); off only for references.
        public var reweight: Bool
        public init(projection: TRAKProjection, ridgeScale: Double = TRAK.defaultRidgeScale, reweight: Bool = true) {
            self.projection = projection; self.ridgeScale = ridgeScale; self.reweight = reweight
        }
    }

    /// One rank's part: the kernel `ψ_qᵀ (ΦᵀΦ + εI)⁻¹ φ_m` for all queries × this rank's
    /// rows, the weights `Q_mm` of those rows (1 without re-weighting) and ε; the scores are
    /// `kernel[q, m]·weights[m]`. Kept apart for the ensemble rule (`TRAKStage`).
    public struct Part: Sendable {
        /// Q × rows.count, row-major.
        public var kernel: [Double]
        public var weights: [Double]
        public var ridge: Double
        /// Wall seconds of "features", "gram", "solve" and "scores", and their thread CPU
        /// seconds (`Stopwatch.cpuKey`).
        public var seconds: [String: Double]
        /// `kernel[q, m]·weights[m]`, Q × rows.count.
        public var scores: [Double] { TRAK.weighted(kernel: kernel, weights: weights) }
    }

    /// `kernel[q, m]·weights[m]` for a Q × N kernel (row-major) and N weights.
    public static func weighted<F: BinaryFloatingPoint>(kernel: [F], weights: [F]) -> [F] {
        let n = weights.count
        precondition(n == 0 ? kernel.isEmpty : kernel.count % n == 0, "TRAK.weighted: \(kernel.count) kernel values for \(n) weights")
        return kernel.indices.map { kernel[$0] * weights[$0 % n] }
    }

    /// ε's scale: ε = 1e-6·tr(ΦᵀΦ)/k (spec §8).
    public static let defaultRidgeScale = 1e-6

    /// The default k (spec §8): min(4096, P), and min(512, P) for Concrete (the paper's choice).
    public static func defaultProjectionDimension(parameters p: Int, setting: String) -> Int {
        min(setting == "concrete" ? 512 : 4096, p)
    }

    /// Collective over `comm`: every rank passes the same network, queries and options and
    /// its own `rows` of `train` (the shards together cover the training set once).
    /// - Throws: if ΦᵀΦ is zero or ΦᵀΦ + εI is not positive definite.
    /// Complexity: per rank the features (TRAKProjector) of its rows and the queries,
    /// rows·k² (Gram), k³/3 (Cholesky) and Q·k·(k + rows).
    public static func scores<T: BLASScalar>(network: Network<T>, train: Dataset, rows: Range<Int>, queries: Dataset,
                                             options: Options, comm: Communicator) throws -> Part {
        let k = options.projection.dimension, n = rows.count, q = queries.count
        let projector = TRAKProjector<T>(options.projection, shape: network.shape)
        var t = Stopwatch(), seconds: [String: Double] = [:]
        let (phi, w) = try TRAKFeatures.compute(network, train, rows: Array(rows), side: .training, projector: projector)
        let psi = try TRAKFeatures.compute(network, queries, rows: Array(0..<q), side: .query, projector: projector).features
        t.add(to: &seconds, "features")
        t = Stopwatch()
        var gram = [Double](repeating: 0, count: k * k)
        if n > 0 {
            phi.withUnsafeBufferPointer { p in gram.withUnsafeMutableBufferPointer { g in
                Double.syrkTransposed(n: k, k: n, alpha: 1, a: p.baseAddress!, lda: k, beta: 0, c: g.baseAddress!, ldc: k)
            } }
        }
        comm.allreduceSum(&gram)
        let trace = (0..<k).reduce(0.0) { $0 + gram[$1 * k + $1] }
        guard trace > 0, trace.isFinite else { throw AstraError("trak: the training features are all zero or non-finite (tr ΦᵀΦ = \(trace)); check the model") }
        let ridge = options.ridgeScale * trace / Double(k)
        for i in 0..<k { gram[i * k + i] += ridge }
        t.add(to: &seconds, "gram")
        guard q > 0 else { return Part(kernel: [], weights: options.reweight ? w : [Double](repeating: 1, count: n), ridge: ridge, seconds: seconds) }
        t = Stopwatch()
        // X = (ΦᵀΦ + εI)⁻¹ Ψᵀ, k × Q.
        guard let x = solveSPD(Matrix(rows: k, cols: k, data: gram), Matrix(rows: q, cols: k, data: psi).transposed) else {
            throw AstraError("trak: ΦᵀΦ + εI (ε = \(ridge)) is not positive definite; the features are degenerate")
        }
        t.add(to: &seconds, "solve")
        t = Stopwatch()
        var kernel = [Double](repeating: 0, count: q * n)
        if n > 0 {
            // kernel = Xᵀ Φᵀ (Q × rows).
            x.data.withUnsafeBufferPointer { xp in phi.withUnsafeBufferPointer { p in kernel.withUnsafeMutableBufferPointer { kp in
                Double.gemm(transA: true, transB: true, m: q, n: n, k: k, alpha: 1, a: xp.baseAddress!, lda: q, b: p.baseAddress!, ldb: k,
                            beta: 0, c: kp.baseAddress!, ldc: n)
            } } }
        }
        t.add(to: &seconds, "scores")
        return Part(kernel: kernel, weights: options.reweight ? w : [Double](repeating: 1, count: n), ridge: ridge, seconds: seconds)
    }
}
