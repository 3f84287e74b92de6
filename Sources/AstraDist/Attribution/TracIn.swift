/// TracInCP (spec §8; Pruthi et al. 2020): `τ(m, q) = Σ_c η_c ∇f_q(θ_c)·∇L_m(θ_c)` over the
/// training checkpoints θ_c, η_c the learning rate in force times the steps checkpoint c
/// stands for. An SGD step on m moves f_q by `−η ∇f_q·∇L_m`, so a positive score means m
/// helps q, as for every method.
///
/// Per checkpoint the query gradients form a block (scaled by η_c) that `ScoreContraction`
/// scores against the training rows through each layer's contraction (a linear layer: one
/// GEMM and a Hadamard reduction per batch), so no training example's gradient is formed.
/// No communication: each rank scores its rows.
public enum TracIn {
    /// One checkpoint: its network and its weight η_c.
    public struct Checkpoint<T: BLASScalar>: Sendable {
        public var network: Network<T>
        public var weight: Double
        public init(network: Network<T>, weight: Double) { self.network = network; self.weight = weight }
    }

    /// η_c for checkpoints after steps `k_1 < … < k_C` with learning rates `lr_c`:
    /// `lr_c·(k_c − k_{c−1})`, k_0 = 0 (checkpoint c stands for the steps since the previous one).
    /// Precondition: the steps increase.
    public static func weights(steps: [Int], learningRates: [Double]) -> [Double] {
        precondition(steps.count == learningRates.count && zip(steps, steps.dropFirst()).allSatisfy { $0 < $1 }, "TracIn.weights: increasing steps, one rate each")
        return steps.indices.map { learningRates[$0] * Double(steps[$0] - ($0 == 0 ? 0 : steps[$0 - 1])) }
    }

    /// τ for every query × `rows` of `train` (Q × rows.count, row-major), queries solved in
    /// blocks of at most `queryBlock` (each block holds Q·P values per checkpoint).
    /// Complexity: per checkpoint one backward pass over the queries and 2·Q·P·rows flops.
    public static func scores<T: BLASScalar>(checkpoints: [Checkpoint<T>], queries: Dataset, train: Dataset, rows: Range<Int>,
                                             queryBlock: Int = 128) -> [Float] {
        let q = queries.count, n = rows.count
        var sum = [Double](repeating: 0, count: q * n)
        var start = 0
        while start < q {
            let block = start..<min(start + queryBlock, q)
            let subset = queries.subset(Array(block))
            for c in checkpoints {
                var v = c.network.measurementGradients(queries: subset).parameterBlock()
                let eta = T(c.weight)
                for i in v.indices { v[i] *= eta }
                let tau = ScoreContraction(network: c.network, queries: block.count, featureCount: train.featureCount, targetWidth: train.targetWidth)
                    .scores(SolvedBlock(values: v, queries: block.count, eigenbasis: nil), train: train, rows: rows)
                for i in tau.indices { sum[start * n + i] += Double(tau[i]) }
            }
            start = block.upperBound
        }
        return sum.map { Float($0) }
    }
}
