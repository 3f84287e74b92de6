/// The EK-FAC eigenvalue correction (spec §3), a second pass over the data:
/// `Λ_l[i,j] = (1/N) Σ_n Σ_draws ((Q_Sᵀ Ds_n)_i)² ((Q_Aᵀ ā_n)_j)²` (O×(I+1)), the diagonal of
/// the layer's GGN block in the Kronecker eigenbasis `Q_S[:,i] ⊗ Q_A[:,j]`.
///
/// Per batch and layer the layer contracts its per-example gradients in the eigenbasis
/// (`Layer.accumulateEigenCorrectionDraw` per draw, then `finishEigenCorrection`), added to
/// Double accumulators; a linear layer's rank-one gradients take one GEMM `(U²)ᵀ W²` per
/// batch, `U²` summed over the draws first.
public struct EigenvalueCorrection: Sendable {
    public var shape: NetworkShape
    /// Per layer, O×K, indexed `[S-eigenvector i, A-eigenvector j]`.
    public var lambda: [Matrix<Double>]
    public var exampleCount: Int
    public var isMean: Bool

    public init(shape: NetworkShape, lambda: [Matrix<Double>], exampleCount: Int, isMean: Bool) {
        self.shape = shape; self.lambda = lambda; self.exampleCount = exampleCount; self.isMean = isMean
    }

    /// Unnormalised sums over the examples at `shard` (positions in `data`), in the
    /// eigenbases `bases` (one per layer). Uses the same pseudo-gradient draws as the factor
    /// pass (same seed, keyed by global example index).
    /// Complexity: per example, Σ_l (O² + (I+1)² + O(I+1)) multiply-adds in GEMMs plus the
    /// backward passes of the draws.
    public static func shardSums<T: BLASScalar>(network: Network<T>, data: Dataset, shard: Range<Int>, bases: [LayerEigenbasis],
                                                mode: FisherMode, seed: UInt64, batchSize: Int,
                                                progress: ((Int) -> Void)? = nil) -> EigenvalueCorrection {
        let shape = network.shape, layers = shape.layers
        precondition(bases.count == layers.count, "EigenvalueCorrection: \(bases.count) eigenbases for \(layers.count) layers")
        let passes = PseudoGradientBatches(network: network, data: data, batchSize: max(1, min(batchSize, max(shard.count, 1))))
        let cap = passes.capacity
        // Eigenvectors in the working precision, converted once.
        let qA = bases.map { converted($0.qA, to: T.self) }, qS = bases.map { converted($0.qS, to: T.self) }
        var sums = layers.map { [Double](repeating: 0, count: $0.outputFactorDimension * $0.inputFactorDimension) }
        let state = layers.map { UnsafeMutablePointer<T>.allocate(capacity: $0.eigenCorrectionStateCount(batch: cap)) }
        let scratch = UnsafeMutablePointer<T>.allocate(capacity: passes.scratchCount)
        defer { state.forEach { $0.deallocate() }; scratch.deallocate() }
        let draws = mode.draws(outputs: shape.outputCount)
        var done = 0
        passes.forEachBatch(shard) { batch in
            let b = batch.count
            for (l, layer) in layers.enumerated() {
                qA[l].withUnsafeBufferPointer { layer.beginEigenCorrection(rows: passes.ws.abar[l], eigenvectorsA: $0.baseAddress!, batch: b, state: state[l]) }
            }
            for draw in 0..<draws {
                passes.backpropagate(draw: draw, positions: batch, mode: mode, seed: seed)
                for (l, layer) in layers.enumerated() {
                    qS[l].withUnsafeBufferPointer { s in qA[l].withUnsafeBufferPointer { a in sums[l].withUnsafeMutableBufferPointer { acc in
                        layer.accumulateEigenCorrectionDraw(ds: passes.ws.ds[l], rows: passes.ws.abar[l], eigenvectorsS: s.baseAddress!, eigenvectorsA: a.baseAddress!,
                                                            batch: b, state: state[l], scratch: scratch, into: acc.baseAddress!)
                    } } }
                }
            }
            for (l, layer) in layers.enumerated() {
                qA[l].withUnsafeBufferPointer { q in sums[l].withUnsafeMutableBufferPointer { acc in
                    layer.finishEigenCorrection(rows: passes.ws.abar[l], eigenvectorsA: q.baseAddress!, batch: b, state: state[l], scratch: scratch, into: acc.baseAddress!)
                } }
            }
            done += b
            progress?(done)
        }
        return EigenvalueCorrection(shape: shape, lambda: zip(layers, sums).map { Matrix(rows: $0.outputFactorDimension, cols: $0.inputFactorDimension, data: $1) },
                                    exampleCount: shard.count, isMean: false)
    }

    /// Adds another shard's sums (simulates the allreduce in tests).
    public mutating func add(_ other: EigenvalueCorrection) {
        precondition(!isMean && !other.isMean && shape == other.shape, "EigenvalueCorrection.add: only shard sums of one shape")
        for l in lambda.indices { for k in lambda[l].data.indices { lambda[l].data[k] += other.lambda[l].data[k] } }
        exampleCount += other.exampleCount
    }

    /// Sums over ranks (one allreduce per layer) and divides by the total N. Collective.
    public func reduced(over comm: Communicator) -> EigenvalueCorrection {
        precondition(!isMean, "EigenvalueCorrection.reduced: already a mean")
        let n = Int(comm.allreduceSum(Double(exampleCount)).rounded())
        var out = self
        out.exampleCount = n
        out.isMean = true
        let scale = 1 / Double(max(n, 1))
        for l in lambda.indices {
            comm.allreduceSum(&out.lambda[l].data)
            for k in out.lambda[l].data.indices { out.lambda[l].data[k] *= scale }
        }
        return out
    }
}
