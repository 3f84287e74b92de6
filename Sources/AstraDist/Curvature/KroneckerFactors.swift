import Foundation

/// The K-FAC factors of every layer (spec §3): `A_l = (1/N) Σ_n ā_n ā_nᵀ` ((I+1)×(I+1)) and
/// `S_l = (1/N) Σ_n Ds_n Ds_nᵀ` (O×O), so that `G_ll ≈ S_l ⊗ A_l` for row-major `vec(W̄_l)`.
///
/// Built in two steps so that sharding changes only the summation order: `shardSums` adds
/// up a rank's shard (Double accumulators fed by per-batch SYRKs in T), `reduced` sums the
/// shards over the communicator (one allreduce per layer) and divides by N.
public struct KroneckerFactors: Sendable {
    public var shape: NetworkShape
    /// Per layer, (I+1)×(I+1).
    public var a: [Matrix<Double>]
    /// Per layer, O×O.
    public var s: [Matrix<Double>]
    /// Examples summed over (shard sums) or averaged over (after `reduced`).
    public var exampleCount: Int
    /// False for shard sums, true once divided by N.
    public var isMean: Bool

    public init(shape: NetworkShape, a: [Matrix<Double>], s: [Matrix<Double>], exampleCount: Int, isMean: Bool) {
        self.shape = shape; self.a = a; self.s = s; self.exampleCount = exampleCount; self.isMean = isMean
    }

    /// Unnormalised sums over the examples at `shard` (positions in `data`).
    /// Complexity: per example, Σ_l ((I+1)² + draws·O²)/2 multiply-adds in SYRKs plus
    /// draws backward passes (draws = 1 sampled, C exact).
    public static func shardSums<T: BLASScalar>(network: Network<T>, data: Dataset, shard: Range<Int>, mode: FisherMode, seed: UInt64,
                                                batchSize: Int, progress: ((Int) -> Void)? = nil) -> KroneckerFactors {
        let shape = network.shape, layers = shape.layers
        let passes = PseudoGradientBatches(network: network, data: data, batchSize: max(1, min(batchSize, max(shard.count, 1))))
        var aSum = layers.map { [Double](repeating: 0, count: $0.inputFactorDimension * $0.inputFactorDimension) }
        var sSum = layers.map { [Double](repeating: 0, count: $0.outputFactorDimension * $0.outputFactorDimension) }
        let scratch = UnsafeMutablePointer<T>.allocate(capacity: passes.scratchCount)
        defer { scratch.deallocate() }
        let draws = mode.draws(outputs: shape.outputCount)
        var done = 0
        passes.forEachBatch(shard) { batch in
            let b = batch.count
            for (l, layer) in layers.enumerated() {
                aSum[l].withUnsafeMutableBufferPointer { layer.accumulateInputFactor(abar: passes.ws.abar[l], batch: b, scratch: scratch, into: $0.baseAddress!) }
            }
            for draw in 0..<draws {
                passes.backpropagate(draw: draw, positions: batch, mode: mode, seed: seed)
                for (l, layer) in layers.enumerated() {
                    sSum[l].withUnsafeMutableBufferPointer { layer.accumulateOutputFactor(ds: passes.ws.ds[l], batch: b, scratch: scratch, into: $0.baseAddress!) }
                }
            }
            done += b
            progress?(done)
        }
        return KroneckerFactors(
            shape: shape,
            a: zip(layers, aSum).map { Matrix(rows: $0.inputFactorDimension, cols: $0.inputFactorDimension, data: $1) },
            s: zip(layers, sSum).map { Matrix(rows: $0.outputFactorDimension, cols: $0.outputFactorDimension, data: $1) },
            exampleCount: shard.count, isMean: false)
    }

    /// Adds another shard's sums (simulates the allreduce in tests).
    public mutating func add(_ other: KroneckerFactors) {
        precondition(!isMean && !other.isMean && shape == other.shape, "KroneckerFactors.add: only shard sums of one shape")
        for l in a.indices {
            for k in a[l].data.indices { a[l].data[k] += other.a[l].data[k] }
            for k in s[l].data.indices { s[l].data[k] += other.s[l].data[k] }
        }
        exampleCount += other.exampleCount
    }

    /// Sums the shards of every rank (one allreduce per layer, A and S packed together) and
    /// divides by the total N. Collective.
    public func reduced(over comm: Communicator) -> KroneckerFactors {
        precondition(!isMean, "KroneckerFactors.reduced: already a mean")
        let n = Int(comm.allreduceSum(Double(exampleCount)).rounded())
        var out = self
        out.exampleCount = n
        out.isMean = true
        let scale = 1 / Double(max(n, 1))
        for l in a.indices {
            var packed = a[l].data + s[l].data
            comm.allreduceSum(&packed)
            let na = a[l].data.count
            out.a[l].data = packed[0..<na].map { $0 * scale }
            out.s[l].data = packed[na...].map { $0 * scale }
            // SYRK mirrors its triangle and sums keep symmetry; enforce it exactly for dsyevd.
            out.a[l] = symmetrized(out.a[l]); out.s[l] = symmetrized(out.s[l])
        }
        return out
    }

    /// `shardSums(...).reduced(over: comm)`.
    public static func compute<T: BLASScalar>(network: Network<T>, data: Dataset, shard: Range<Int>, comm: Communicator, mode: FisherMode,
                                             seed: UInt64, batchSize: Int) -> KroneckerFactors {
        shardSums(network: network, data: data, shard: shard, mode: mode, seed: seed, batchSize: batchSize).reduced(over: comm)
    }
}

/// The eigendecompositions of one layer's factors: `A = Q_A diag(λ_A) Q_Aᵀ`,
/// `S = Q_S diag(λ_S) Q_Sᵀ` (float64; columns are eigenvectors, eigenvalues ascending,
/// clamped at 0 because the factors are positive semidefinite and negatives are rounding).
public struct LayerEigenbasis: Sendable, Equatable {
    public var qA: Matrix<Double>
    public var lambdaA: [Double]
    public var qS: Matrix<Double>
    public var lambdaS: [Double]
    public init(qA: Matrix<Double>, lambdaA: [Double], qS: Matrix<Double>, lambdaS: [Double]) {
        self.qA = qA; self.lambdaA = lambdaA; self.qS = qS; self.lambdaS = lambdaS
    }
}

extension KroneckerFactors {
    /// Eigendecomposes every `A_l` and `S_l`, spread over the ranks by cost (d³, greedy
    /// longest-processing-time), each result broadcast from its owner so every rank ends
    /// with all of them. Collective; throws on every rank if any decomposition failed.
    public func eigendecomposed(comm: Communicator) throws -> [LayerEigenbasis] {
        precondition(isMean, "eigendecomposed: reduce the factors first")
        let matrices = a.indices.flatMap { [a[$0], s[$0]] }  // item 2l = A_l, 2l+1 = S_l
        let owner = Self.longestProcessingTime(costs: matrices.map { pow(Double($0.rows), 3) }, ranks: comm.size)
        var results = [SymmetricEigen?](repeating: nil, count: matrices.count)
        var failure: String?
        for (i, m) in matrices.enumerated() where owner[i] == comm.rank && failure == nil {
            do { results[i] = try SymmetricEigen(m) } catch {
                failure = "eigendecomposition of \(i % 2 == 0 ? "A" : "S") of layer \(i / 2) failed: \(error) (the factors hold NaN or Inf: check the model file and data, then re-run `astra-dist fit`)"
            }
        }
        if let message = comm.firstFailure(failure) { throw AstraError(message) }
        var bases: [LayerEigenbasis] = []
        var decoded: [(Matrix<Double>, [Double])] = []
        for (i, m) in matrices.enumerated() {
            let d = m.rows
            // One broadcast per matrix: d eigenvalues then d² eigenvector entries.
            var buffer = results[i].map { $0.values + $0.vectors.data } ?? [Double](repeating: 0, count: d + d * d)
            comm.broadcast(&buffer, root: owner[i])
            decoded.append((Matrix(rows: d, cols: d, data: Array(buffer[d...])), buffer[0..<d].map { max($0, 0) }))
        }
        for l in a.indices {
            bases.append(LayerEigenbasis(qA: decoded[2 * l].0, lambdaA: decoded[2 * l].1, qS: decoded[2 * l + 1].0, lambdaS: decoded[2 * l + 1].1))
        }
        return bases
    }

    /// Greedy longest-processing-time assignment: items by descending cost (ties by index),
    /// each to the least-loaded rank (ties to the lowest rank). Deterministic, so every rank
    /// computes the same owners. Returns the owner rank of each item.
    public static func longestProcessingTime(costs: [Double], ranks: Int) -> [Int] {
        precondition(ranks > 0)
        var load = [Double](repeating: 0, count: ranks)
        var owner = [Int](repeating: 0, count: costs.count)
        for i in costs.indices.sorted(by: { costs[$0] != costs[$1] ? costs[$0] > costs[$1] : $0 < $1 }) {
            let r = load.indices.min { load[$0] != load[$1] ? load[$0] < load[$1] : $0 < $1 }!
            owner[i] = r
            load[r] += costs[i]
        }
        return owner
    }
}

/// `(M + Mᵀ)/2`.
func symmetrized(_ m: Matrix<Double>) -> Matrix<Double> {
    var out = m
    for i in 0..<m.rows { for j in 0..<i { let v = 0.5 * (m[i, j] + m[j, i]); out[i, j] = v; out[j, i] = v } }
    return out
}
