import Foundation

/// The matrices of the curvature ladder (spec §12), each a dense P×P approximation of H.
public enum LadderMatrix: String, Codable, Sendable, CaseIterable {
    case hessian, ggn
    case blockGGN = "block-ggn"
    /// EK-FAC with the exact Fisher (every label weighted by p): Λ exact in the K-FAC eigenbasis.
    case ekfac
    /// EK-FAC with one sampled pseudo-label per example (the production fit).
    case ekfacSampled = "ekfac-sampled"
    /// K-FAC from the exact-Fisher factors: the same eigenbasis as `ekfac`, Λ = λ_S λ_Aᵀ.
    case kfac
    /// K-FAC from the sampled factors (curvlinops' one-sample Monte-Carlo K-FAC, the seed's).
    case kfacSampled = "kfac-sampled"

    /// The decomposition path `H → G → block-GGN → EK-FAC → K-FAC` (exact Fisher throughout,
    /// so each step changes one thing).
    public static let path: [LadderMatrix] = [.hessian, .ggn, .blockGGN, .ekfac, .kfac]

    /// Whether the matrix is block-diagonal over layers (decomposed block by block).
    public var isBlockDiagonal: Bool { self != .hessian && self != .ggn }
}

/// H, G and the two EK-FAC fits of one network on its whole training set, from which every
/// `LadderMatrix` is built densely. H and G are sums over each rank's shard of examples,
/// allreduced (P² doubles each); the fits are `FitRunner`'s, sharded the same way.
public struct CurvatureLadder: Sendable {
    public let shape: NetworkShape
    /// Mean training-loss Hessian (R-operator, no weight decay).
    public let hessian: Matrix<Double>
    /// GGN `(1/N) Σ J_nᵀ H_L J_n`.
    public let ggn: Matrix<Double>
    public let exactFit: EKFAC
    public let sampledFit: EKFAC

    /// Collective. `seed` keys the sampled pseudo-labels.
    /// Complexity: about 9·N·P² multiply-adds over the ranks plus two EK-FAC fits.
    public static func compute(network: Network<Double>, train: Dataset, comm: Communicator, seed: UInt64,
                               progress: ((String) -> Void)? = nil) throws -> CurvatureLadder {
        let p = network.shape.parameterCount, shard = blockRange(count: train.count, rank: comm.rank, size: comm.size)
        progress?("curvature: dense \(p)×\(p) Hessian (R-operator) over \(train.count) examples on \(comm.size) rank(s)")
        let h = shardedMean(train.count, shard, comm) { DenseCurvature.denseHessian(network: network, data: train.subset(Array(shard))) }
        progress?("curvature: dense GGN")
        let g = ExactSolver.denseGGN(network: network, data: train, comm: comm)
        let exact = try FitRunner.fit(network: network, data: train, shard: shard, comm: comm, mode: .exact, seed: seed, batchSize: 256)
        let sampled = try FitRunner.fit(network: network, data: train, shard: shard, comm: comm, mode: .sampled, seed: seed, batchSize: 256)
        return CurvatureLadder(shape: network.shape, hessian: h, ggn: g, exactFit: exact, sampledFit: sampled)
    }

    /// `(|shard|/N) · mean over the shard`, allreduced: the mean over all N examples.
    static func shardedMean(_ n: Int, _ shard: Range<Int>, _ comm: Communicator, _ shardMean: () -> Matrix<Double>) -> Matrix<Double> {
        var m = shardMean()
        let weight = Double(shard.count) / Double(max(n, 1))
        for i in m.data.indices { m.data[i] *= weight }
        comm.allreduceSum(&m.data)
        for i in 0..<m.rows { for j in 0..<i { let s = 0.5 * (m[i, j] + m[j, i]); m[i, j] = s; m[j, i] = s } }
        return m
    }

    public init(shape: NetworkShape, hessian: Matrix<Double>, ggn: Matrix<Double>, exactFit: EKFAC, sampledFit: EKFAC) {
        self.shape = shape; self.hessian = hessian; self.ggn = ggn; self.exactFit = exactFit; self.sampledFit = sampledFit
    }

    /// The layer blocks `offset(l)..<offset(l+1)`.
    public var layerBlocks: [Range<Int>] { (0..<shape.layerCount).map { shape.offset($0)..<shape.offset($0 + 1) } }

    /// The dense matrix. Memory: one more P×P.
    public func matrix(_ m: LadderMatrix) -> Matrix<Double> {
        switch m {
        case .hessian: return hessian
        case .ggn: return ggn
        case .blockGGN: return DenseCurvature.blockDiagonal(ggn, shape: shape)
        case .ekfac: return exactFit.denseMatrix()
        case .ekfacSampled: return sampledFit.denseMatrix()
        case .kfac: return exactFit.denseMatrix(kfac: true)
        case .kfacSampled: return sampledFit.denseMatrix(kfac: true)
        }
    }

    /// The matrix's eigendecomposition, per layer block where it is block-diagonal.
    public func spectrum(_ m: LadderMatrix, dense: Matrix<Double>) throws -> SpectralBlocks {
        try SpectralBlocks(dense, blocks: m.isBlockDiagonal ? layerBlocks : [0..<shape.parameterCount])
    }

    /// Sorted eigenvalues of each layer block of `dense` (taken from `spectrum` when it is
    /// already per block).
    public func blockEigenvalues(_ dense: Matrix<Double>, spectrum: SpectralBlocks?) throws -> [[Double]] {
        if let s = spectrum, s.blocks == layerBlocks { return s.eigen.map { $0.values.sorted() } }
        return try layerBlocks.map { try SymmetricEigen(dense.block($0)).values.sorted() }
    }

    /// Spec §12's eigenvalue overlap of a block: `1 − ‖sort λ(M_b) − sort λ(G_b)‖₂ / ‖sort λ(G_b)‖₂`
    /// (1 = the same spectrum; can be negative).
    public static func overlap(_ m: [Double], _ g: [Double]) -> Double {
        precondition(m.count == g.count, "overlap: spectra of different sizes")
        let a = m.sorted(), b = g.sorted()
        let diff = zip(a, b).reduce(0.0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
        let norm = b.reduce(0.0) { $0 + $1 * $1 }.squareRoot()
        return 1 - diff / max(norm, .leastNormalMagnitude)
    }

    /// Per layer block `‖M_b − G_b‖_F` (the George et al. comparison).
    public func blockDistancesToGGN(_ dense: Matrix<Double>) -> [Double] {
        layerBlocks.map { dense.block($0).frobeniusDistance(to: ggn.block($0)) }
    }
}
