/// Exact mini-batch GGN products `G̃_B V = (1/|B|) Σ_{n∈B} J_nᵀ H_L,n J_n V` for a block of
/// Q vectors (spec §4), with every step a GEMM over the block:
/// forward pass; forward-mode tangents of the network walk (`dS_l = dW̄_l ā_l + W_l dA_l`
/// (B×Q×O) per layer, `f'(v) ∘ dv` per pointwise operation); output tangents times `H_L`;
/// the transposed walk of that block with per-layer block gradients.
///
/// In the EK-FAC eigenbasis (`eigenbasis` given) the block holds eigen-coordinates `Y`
/// (`dW̄ = Q_S Y Q_Aᵀ`) and the product is `Rᵀ G̃_B R Y`, R the block rotation. The batch is
/// rotated instead of the block: `Ā Q_A` once per batch for all queries, the tangents
/// `dS Q_S ⇄ dS` (B·Q·O² per layer each way) around the pointwise operations, and the weights
/// `Q_Sᵀ W̄` once. That is about a third more work than the product itself, against
/// Q·Σ_l 2·O(I+1)(O+I+1) to rotate the block in and out.
///
/// Distributed use: every rank passes its slice of one batch (the same `totalBatch` on all
/// ranks); slices are summed by one allreduce of Q·P values and divided by `totalBatch`, so
/// the result does not depend on the rank count (up to summation order).
///
/// Buffers are allocated once in `init`; `apply` allocates nothing.
public final class GGNProduct<T: BLASScalar> {
    public let network: Network<T>
    public let data: Dataset
    /// Q, vectors per block.
    public let queries: Int
    /// Largest number of examples forwarded at once (longer slices run in chunks).
    public let maxBatch: Int
    /// The factors whose eigen-coordinates the blocks use (nil: parameter coordinates).
    public let eigenbasis: EKFAC?
    private let ws: Workspace<T>
    private let x: UnsafeMutablePointer<T>
    private let y: UnsafeMutablePointer<T>
    /// Per value B×(Q·width): tangents on the way forward, cotangents on the way back.
    private let tangents: TangentBuffers<T>
    /// Eigenbasis only: `Q_Sᵀ W̄` (P values), per layer `Ā Q_A` (B×(I+1)), and one B×(Q·O) buffer.
    private let rotatedWeights: [T]
    private let rotatedInputs: [UnsafeMutablePointer<T>]
    private let rotated: UnsafeMutablePointer<T>

    /// Memory: maxBatch·(D + Q·Σ_l O_l) values of T plus a `Workspace`; in the eigenbasis
    /// also P + maxBatch·(Σ_l (I_l+1) + Q·max_l O_l).
    public init(network: Network<T>, data: Dataset, queries: Int, maxBatch: Int, eigenbasis: EKFAC? = nil) {
        precondition(queries > 0 && maxBatch > 0, "GGNProduct: queries and maxBatch must be positive")
        precondition(data.featureCount == network.shape.inputCount && data.outputCount == network.shape.outputCount,
                     "GGNProduct: data (D \(data.featureCount), C \(data.outputCount)) does not fit network \(network.shape)")
        precondition(eigenbasis.map { $0.shape == network.shape } ?? true, "GGNProduct: factors for another network")
        self.network = network; self.data = data; self.queries = queries; self.maxBatch = maxBatch; self.eigenbasis = eigenbasis
        let layers = network.shape.layers
        ws = Workspace(shape: network.shape, capacity: maxBatch)
        x = .allocate(capacity: maxBatch * data.featureCount)
        y = .allocate(capacity: maxBatch * data.targetWidth)
        tangents = TangentBuffers(shape: network.shape, batch: maxBatch, queries: queries, inPlace: true)
        if let eigenbasis {
            rotatedWeights = network.parameters.withUnsafeBufferPointer { eigenbasis.outputRotatedWeights($0.baseAddress!) }
            rotatedInputs = layers.map { .allocate(capacity: maxBatch * $0.positions * $0.inputFactorDimension) }
            rotated = .allocate(capacity: maxBatch * queries * layers.map(\.outputWidth).max()!)
        } else {
            rotatedWeights = []; rotatedInputs = []; rotated = .allocate(capacity: 1)
        }
    }
    deinit { x.deallocate(); y.deallocate(); rotatedInputs.forEach { $0.deallocate() }; rotated.deallocate() }

    /// Examples per chunk for slices of up to `widest` examples. GEMMs are efficient from a
    /// few hundred rows, and a layer has `positions` rows per example, so a chunk holds 256
    /// examples of an MLP (one position per layer) but only 4096/T of a convolutional network
    /// (5 for the 28×28 CNN): its Q tangents of a chunk are then about 25 MB instead of 1.3 GB
    /// (Q = 100) and stay in cache between the GEMMs and the element-wise passes.
    public static func chunkExamples(_ shape: NetworkShape, widest: Int) -> Int {
        let rows = shape.layers.map(\.positions).max() ?? 1
        return max(1, min(256, widest, 4096 / rows))
    }

    /// Values in one block: Q·P.
    public var blockCount: Int { queries * network.shape.parameterCount }

    /// `out = (1/totalBatch) Σ_ranks Σ_{n∈indices} J_nᵀ H_L,n J_n v` for the block `v`
    /// (Q·P values, layout of `NetworkShape`; eigen-coordinates if `eigenbasis` is set).
    /// `indices` are positions in `data` (repeats allowed; may be empty on some ranks).
    /// Collective over `comm` if given.
    /// Complexity: about 6·|indices|·Q·P multiply-adds, in GEMMs (eigenbasis: plus
    /// 2·|indices|·Q·Σ_l O_l²).
    public func apply(_ v: UnsafePointer<T>, indices: ArraySlice<Int>, into out: UnsafeMutablePointer<T>, comm: Communicator?, totalBatch: Int) {
        precondition(totalBatch > 0, "GGNProduct.apply: totalBatch must be positive")
        let shape = network.shape, q = queries, count = blockCount
        if indices.isEmpty { out.initialize(repeating: 0, count: count) }
        var first = true
        forEachChunk(of: v, indices: indices) { b, w in
            let cotangent = tangents.output
            network.loss.applyOutputHessian(y: ws.output, dy: cotangent, batch: b, queries: q, outputs: shape.outputCount)
            // 1/|B| on the output cotangents (B·Q·C values) rather than on the Q·P result.
            let scale = 1 / T(totalBatch)
            for k in 0..<(b * q * shape.outputCount) { cotangent[k] *= scale }
            // Backward of the block; later chunks add into `out`.
            network.transposeTangents(batch: b, queries: q, workspace: ws, tangents: tangents) { l, layer, dsOut, daIn in
                withBasis(l) { _, qS in
                    var ds = dsOut, abar = UnsafePointer(ws.abar[l])
                    if let qS {
                        layer.rotateOutputs(ds, eigenvectorsS: qS, rows: b * q * layer.positions, inverse: false, into: rotated)
                        ds = UnsafePointer(rotated); abar = UnsafePointer(rotatedInputs[l])
                    }
                    layer.blockGradient(ds: ds, abar: abar, beta: first ? 0 : 1, out: out + q * shape.offset(l), batch: b, queries: q)
                    if let daIn { layer.blockBackwardInput(ds: ds, weights: w + shape.offset(l), da: daIn, batch: b, queries: q) }
                }
            }
            first = false
        }
        comm?.allreduceSum(out, count: count)
    }

    /// `vᵀ G_S v` of every query (Q values, in Double) over the fixed set S, this rank
    /// passing its slice `indices` of it and `totalBatch` = |S| on every rank: the quadratic
    /// form needs only the forward tangents, `(1/|S|) Σ_n (J_n v)ᵀ H_L,n (J_n v)`, so it costs
    /// about half of `apply` and its allreduce carries Q values instead of Q·P. Collective
    /// over `comm` if given.
    public func quadraticForms(_ v: UnsafePointer<T>, indices: ArraySlice<Int>, comm: Communicator?, totalBatch: Int) -> [Double] {
        precondition(totalBatch > 0, "GGNProduct.quadraticForms: totalBatch must be positive")
        let c = network.shape.outputCount
        var forms = [Double](repeating: 0, count: queries)
        forms.withUnsafeMutableBufferPointer { f in
            forEachChunk(of: v, indices: indices) { b, _ in
                network.loss.addOutputHessianForms(y: ws.output, dy: tangents.output, batch: b, queries: queries, outputs: c, into: f.baseAddress!)
            }
        }
        for k in 0..<queries { forms[k] /= Double(totalBatch) }
        comm?.allreduceSum(&forms)
        return forms
    }

    /// For each chunk of at most `maxBatch` of `indices`: the forward pass (into `ws`) and the
    /// forward-mode tangents of the block `v` (the output tangents in `tangents.output`), then
    /// `body(chunk size, weights in the block's coordinates)`.
    private func forEachChunk(of v: UnsafePointer<T>, indices: ArraySlice<Int>, _ body: (Int, UnsafePointer<T>) -> Void) {
        let shape = network.shape, q = queries
        var start = indices.startIndex
        let weights = eigenbasis == nil ? network.parameters : rotatedWeights
        weights.withUnsafeBufferPointer { wp in
            let w = wp.baseAddress!
            while start < indices.endIndex {
                let end = min(start + maxBatch, indices.endIndex), b = end - start
                data.gather(indices[start..<end], x: x, y: y)
                network.forward(x, batch: b, workspace: ws)
                network.forwardTangents(batch: b, queries: q, workspace: ws, tangents: tangents) { l, layer, da, ds in
                    withBasis(l) { qA, qS in
                        let dirs = v + q * shape.offset(l), wl = w + shape.offset(l)
                        if let qA, let qS {
                            layer.rotateInputs(abar: ws.abar[l], eigenvectorsA: qA, batch: b * layer.positions, into: rotatedInputs[l])
                            layer.tangent(abar: rotatedInputs[l], da: da, directions: dirs, weights: wl, ds: rotated, batch: b, queries: q)
                            layer.rotateOutputs(rotated, eigenvectorsS: qS, rows: b * q * layer.positions, inverse: true, into: ds)
                        } else {
                            layer.tangent(abar: ws.abar[l], da: da, directions: dirs, weights: wl, ds: ds, batch: b, queries: q)
                        }
                    }
                }
                body(b, w)
                start = end
            }
        }
    }

    /// Runs `body` with layer l's eigenvector pointers (nil, nil in parameter coordinates).
    @inline(__always)
    private func withBasis(_ l: Int, _ body: (UnsafePointer<T>?, UnsafePointer<T>?) -> Void) {
        if let e = eigenbasis { e.layers[l].withEigenvectors(T.self) { body($0, $1) } } else { body(nil, nil) }
    }

    /// Array form of `apply` (Q·P values in and out).
    public func apply(_ v: [T], indices: ArraySlice<Int>, comm: Communicator? = nil, totalBatch: Int? = nil) -> [T] {
        precondition(v.count == blockCount, "GGNProduct.apply: \(v.count) values for a block of \(blockCount)")
        var out = [T](repeating: 0, count: blockCount)
        v.withUnsafeBufferPointer { vp in out.withUnsafeMutableBufferPointer {
            apply(vp.baseAddress!, indices: indices, into: $0.baseAddress!, comm: comm, totalBatch: totalBatch ?? indices.count)
        } }
        return out
    }

    /// The mini-batch of `iteration`: `size` positions drawn uniformly with replacement from
    /// `0..<population`, from `CounterRandom(seed, .ggnBatch, index: iteration)` (the same
    /// batch on every rank and for any rank count).
    public static func sampleBatch(seed: UInt64, iteration: Int, size: Int, population: Int) -> [Int] {
        precondition(population > 0 && size >= 0)
        var rng = CounterRandom(seed: seed, purpose: .ggnBatch, index: UInt64(iteration))
        return (0..<size).map { _ in rng.nextInt(below: population) }
    }
}
