import Foundation

/// The ladder's numbers for one trained network against its ground truth (spec §12).
public struct LadderResult: Codable, Sendable {
    /// The LDS of influence with `(M + λI)⁻¹` under one inversion rule.
    public struct Influence: Codable, Sendable {
        public var damping: Double
        public var rule: InversionRule
        /// Mean ± standard error over queries (and the per-query values).
        public var lds: LDSResult
        /// 95% bootstrap interval over subsets (nil bounds when undefined).
        public var ciLow: Double?
        public var ciHigh: Double?
    }
    public struct Entry: Codable, Sendable {
        public var matrix: LadderMatrix
        /// `‖M − H‖_F / ‖H‖_F` and `‖M − G‖_F / ‖G‖_F`.
        public var errorToHessian: Double
        public var errorToGGN: Double
        /// Eigenvalues of M below 0 (clipped by the `clipped` rule).
        public var negativeEigenvalues: Int
        public var smallestEigenvalue: Double
        /// Per layer block, spec §12's eigenvalue overlap with G's block.
        public var blockOverlap: [Double]
        /// Per layer block, `‖M_b − G_b‖_F`.
        public var blockDistanceToGGN: [Double]
        public var influence: [Influence]
    }
    public var parameters: Int
    public var trainExamples: Int
    public var queries: Int
    /// `‖H − G‖_F / ‖H‖_F` (the seed's Figure 5).
    public var residualShare: Double
    public var entries: [Entry]
    /// One decomposition per (damping, rule), along `LadderMatrix.path`.
    public var decompositions: [Decomposition]

    public struct Decomposition: Codable, Sendable {
        public var damping: Double
        public var rule: InversionRule
        public var decomposition: ErrorDecomposition
    }

    public func entry(_ m: LadderMatrix) -> Entry? { entries.first { $0.matrix == m } }
}

/// Runs the ladder: the matrices are spread over ranks (matrix k on rank k mod K, each
/// decomposed, inverted and scored by that rank alone), their results broadcast, so every
/// number is computed the same way on any rank count; only H and G are sums over shards.
public enum CurvatureLadderRun {
    public static let seedDamping = 1e-4

    /// Collective. `dampings` are the λ of `(M + λI)⁻¹` (spec §12: 1e-4 and the preset's).
    public static func run(network: Network<Double>, train: Dataset, queries: Dataset, masks: SubsetMasks, groundTruth: [Double],
                           dampings: [Double], bootstrap: Int, comm: Communicator, seed: UInt64,
                           progress: ((String) -> Void)? = nil) throws -> LadderResult {
        let ladder = try CurvatureLadder.compute(network: network, train: train, comm: comm, seed: seed, progress: progress)
        let q = queries.count
        let gradients = network.measurementGradients(queries: queries).parameterBlock()
        let v = denseColumns(gradients, shape: network.shape, queries: q)
        let hNorm = ladder.hessian.frobeniusNorm, gNorm = ladder.ggn.frobeniusNorm
        let gBlocks = try ladder.blockEigenvalues(ladder.ggn, spectrum: nil)
        let scorer = ScoreContraction<Double>(network: network, queries: q, featureCount: train.featureCount, targetWidth: train.targetWidth)

        var entries: [LadderResult.Entry] = []
        var failure: String? = nil
        for (k, m) in LadderMatrix.allCases.enumerated() {
            let owner = k % comm.size
            var bytes: [UInt8] = []
            if owner == comm.rank && failure == nil {
                do {
                    progress?("curvature: \(m.rawValue) on rank \(comm.rank)")
                    let dense = ladder.matrix(m)
                    let spectrum = try ladder.spectrum(m, dense: dense)
                    var influence: [LadderResult.Influence] = []
                    for damping in dampings {
                        for rule in InversionRule.allCases {
                            let x = spectrum.inverseApplied(to: v, damping: damping, rule: rule)
                            let solved = SolvedBlock<Double>(values: blockLayout(x, shape: network.shape), queries: q, eigenbasis: nil)
                            let scores = scorer.scores(solved, train: train, rows: 0..<train.count)
                            let gamma = LDS.predictions(masks: masks, scores: scores, queries: q)
                            let lds = LDS.evaluate(groundTruth: groundTruth, predictions: gamma, subsets: masks.count, queries: q)
                            let ci = BootstrapInterval(groundTruth: groundTruth, predictions: gamma, subsets: masks.count, queries: q, resamples: bootstrap)
                            influence.append(.init(damping: damping, rule: rule, lds: lds, ciLow: ci.low.isFinite ? ci.low : nil, ciHigh: ci.high.isFinite ? ci.high : nil))
                        }
                    }
                    let blocks = try ladder.blockEigenvalues(dense, spectrum: spectrum)
                    let entry = LadderResult.Entry(
                        matrix: m, errorToHessian: dense.frobeniusDistance(to: ladder.hessian) / hNorm, errorToGGN: dense.frobeniusDistance(to: ladder.ggn) / gNorm,
                        negativeEigenvalues: spectrum.negativeCount, smallestEigenvalue: spectrum.values.min() ?? 0,
                        blockOverlap: zip(blocks, gBlocks).map { CurvatureLadder.overlap($0, $1) },
                        blockDistanceToGGN: ladder.blockDistancesToGGN(dense), influence: influence)
                    bytes = Array(try JSONEncoder().encode(entry))
                } catch { failure = "\(error)" }
            }
            if let message = comm.firstFailure(failure) { throw AstraError(message) }
            entries.append(try JSONDecoder().decode(LadderResult.Entry.self, from: Data(comm.broadcastBytes(bytes, root: owner))))
        }
        let path = LadderMatrix.path.compactMap { m in entries.first { $0.matrix == m } }
        var decompositions: [LadderResult.Decomposition] = []
        for (i, inf) in path[0].influence.enumerated() {
            decompositions.append(.init(damping: inf.damping, rule: inf.rule, decomposition: ErrorDecomposition(
                names: path.map(\.matrix.rawValue), errors: path.map(\.errorToHessian),
                lds: path.map { $0.influence[i].lds.mean }, standardErrors: path.map { $0.influence[i].lds.standardError })))
        }
        return LadderResult(parameters: network.shape.parameterCount, trainExamples: train.count, queries: q,
                            residualShare: ladder.hessian.frobeniusDistance(to: ladder.ggn) / hNorm, entries: entries, decompositions: decompositions)
    }

    /// Block layout (Q vectors, `NetworkShape`) → P×Q matrix, column q the vector of query q.
    static func denseColumns<T: BLASScalar>(_ block: [T], shape: NetworkShape, queries q: Int) -> Matrix<Double> {
        var m = Matrix<Double>(rows: shape.parameterCount, cols: q)
        for j in 0..<q { for i in 0..<shape.parameterCount { m[i, j] = block[DenseCurvature.blockIndex(shape, queries: q, query: j, parameter: i)].asDouble } }
        return m
    }

    /// The inverse of `denseColumns`.
    static func blockLayout(_ m: Matrix<Double>, shape: NetworkShape) -> [Double] {
        var out = [Double](repeating: 0, count: m.rows * m.cols)
        for j in 0..<m.cols { for i in 0..<m.rows { out[DenseCurvature.blockIndex(shape, queries: m.cols, query: j, parameter: i)] = m[i, j] } }
        return out
    }
}
