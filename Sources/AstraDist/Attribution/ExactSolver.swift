import Foundation

/// The exact damped solve `x = (G + λI)⁻¹ v` with the dense GGN (spec §5 reference, small
/// networks only): G built in Double from explicit Jacobians, every rank its contiguous
/// shard of examples, one allreduce of P² doubles, then one Cholesky solve for all Q columns.
public enum ExactSolver {
    /// The dense GGN `G = (1/N) Σ_n J_nᵀ H_L,n J_n` (P×P) of `network` on `data`, sharded over
    /// ranks (`blockRange`). Collective. Memory: a few P×P doubles.
    /// Complexity: N·C·P²/ranks multiply-adds per rank plus the allreduce.
    public static func denseGGN(network: Network<Double>, data: Dataset, comm: Communicator) -> Matrix<Double> {
        let n = data.count, shard = blockRange(count: n, rank: comm.rank, size: comm.size)
        var g = DenseCurvature.denseGGN(network: network, data: data.subset(Array(shard)))  // mean over the shard
        let weight = Double(shard.count) / Double(max(n, 1))
        for i in g.data.indices { g.data[i] *= weight }
        comm.allreduceSum(&g.data)
        return g
    }

    /// `x = (G + λI)⁻¹ v` for a block of Q vectors (Q·P values, layout of `NetworkShape`).
    /// Throws if P exceeds `limit` or `G + λI` is not positive definite. Collective.
    /// Complexity: N·C·P² (dense GGN) + P³/3 (Cholesky) + Q·P² (solves).
    public static func solve<T: BLASScalar>(_ v: [T], queries: Int, network: Network<T>, train: Dataset, damping: Double,
                                            limit: Int, comm: Communicator, progress: ((String) -> Void)? = nil) throws -> [T] {
        let shape = network.shape, p = shape.parameterCount
        guard p <= limit else {
            throw AstraError("exact solver: the network has \(p) parameters and the exact solver is limited to \(limit) (it builds a dense \(p)×\(p) GGN); use --method ekfac or astra, or raise --exact-limit")
        }
        precondition(v.count == queries * p, "ExactSolver: \(v.count) values for \(queries) vectors of \(p)")
        progress?("exact: dense \(p)×\(p) GGN over \(train.count) examples on \(comm.size) rank(s)")
        var g = denseGGN(network: network.converted(to: Double.self), data: train, comm: comm)
        for i in 0..<p { g[i, i] += damping }
        var b = Matrix<Double>(rows: p, cols: queries)
        for q in 0..<queries { for i in 0..<p { b[i, q] = v[DenseCurvature.blockIndex(shape, queries: queries, query: q, parameter: i)].asDouble } }
        progress?("exact: Cholesky solve for \(queries) right-hand sides")
        guard let x = solveSPD(g, b) else {
            throw AstraError("exact solver: G + λI is not positive definite (λ = \(damping)); raise --damping")
        }
        var out = [T](repeating: 0, count: v.count)
        for q in 0..<queries { for i in 0..<p { out[DenseCurvature.blockIndex(shape, queries: queries, query: q, parameter: i)] = T(x[i, q]) } }
        return out
    }
}
