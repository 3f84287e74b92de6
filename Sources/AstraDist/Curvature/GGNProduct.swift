/// Exact mini-batch GGN products `G̃_B V = (1/|B|) Σ_{n∈B} J_nᵀ H_L,n J_n V` for a block of
/// Q vectors (spec §4), with every step a GEMM over the block:
/// forward pass; forward-mode tangents `dS_l = dW̄_l ā_l + W_l dA_l` (B×Q×O), `dA_{l+1} =
/// 1[s_l > 0] ∘ dS_l`; output tangents times `H_L`; backward of that block through the same
/// linearisation with per-layer block gradients.
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
    private let ws: Workspace<T>
    private let x: UnsafeMutablePointer<T>
    private let y: UnsafeMutablePointer<T>
    /// Per layer B×(Q·O): tangents on the way forward, cotangents on the way back.
    private let tangents: [UnsafeMutablePointer<T>]

    /// Memory: maxBatch·(D + Q·Σ_l O_l) values of T plus a `Workspace`.
    public init(network: Network<T>, data: Dataset, queries: Int, maxBatch: Int) {
        precondition(queries > 0 && maxBatch > 0, "GGNProduct: queries and maxBatch must be positive")
        precondition(data.featureCount == network.shape.inputCount && data.outputCount == network.shape.outputCount,
                     "GGNProduct: data (D \(data.featureCount), C \(data.outputCount)) does not fit network \(network.shape)")
        self.network = network; self.data = data; self.queries = queries; self.maxBatch = maxBatch
        ws = Workspace(shape: network.shape, capacity: maxBatch)
        x = .allocate(capacity: maxBatch * data.featureCount)
        y = .allocate(capacity: maxBatch * data.targetWidth)
        tangents = network.shape.layers.map { .allocate(capacity: maxBatch * queries * $0.outputs) }
    }
    deinit { x.deallocate(); y.deallocate(); tangents.forEach { $0.deallocate() } }

    /// Values in one block: Q·P.
    public var blockCount: Int { queries * network.shape.parameterCount }

    /// `out = (1/totalBatch) Σ_ranks Σ_{n∈indices} J_nᵀ H_L,n J_n v` for the block `v`
    /// (Q·P values, layout of `NetworkShape`). `indices` are positions in `data` (repeats
    /// allowed; may be empty on some ranks). Collective over `comm` if given.
    /// Complexity: about 6·|indices|·Q·P multiply-adds, in GEMMs.
    public func apply(_ v: UnsafePointer<T>, indices: ArraySlice<Int>, into out: UnsafeMutablePointer<T>, comm: Communicator?, totalBatch: Int) {
        precondition(totalBatch > 0, "GGNProduct.apply: totalBatch must be positive")
        let shape = network.shape, layers = shape.layers, q = queries, count = blockCount
        if indices.isEmpty { out.initialize(repeating: 0, count: count) }
        var start = indices.startIndex, first = true
        network.parameters.withUnsafeBufferPointer { wp in
            let w = wp.baseAddress!
            while start < indices.endIndex {
                let end = min(start + maxBatch, indices.endIndex), b = end - start
                data.gather(indices[start..<end], x: x, y: y)
                network.forward(x, batch: b, workspace: ws)
                // Forward-mode tangents; the masked tangent of layer l is dA of layer l+1.
                for (l, layer) in layers.enumerated() {
                    layer.tangent(abar: ws.abar[l], da: l == 0 ? nil : UnsafePointer(tangents[l - 1]), directions: v + q * shape.offset(l),
                                  weights: w + shape.offset(l), ds: tangents[l], batch: b, queries: q)
                    if l + 1 < layers.count { Self.reluMask(tangents[l], s: ws.s[l], batch: b, queries: q, width: layer.outputs) }
                }
                network.loss.applyOutputHessian(y: ws.output, dy: tangents[layers.count - 1], batch: b, queries: q, outputs: shape.outputCount)
                // Backward of the block; later chunks add into `out`.
                for l in stride(from: layers.count - 1, through: 0, by: -1) {
                    let layer = layers[l]
                    layer.blockGradient(ds: tangents[l], abar: ws.abar[l], beta: first ? 0 : 1, out: out + q * shape.offset(l), batch: b, queries: q)
                    guard l > 0 else { break }
                    layer.blockBackwardInput(ds: tangents[l], weights: w + shape.offset(l), da: tangents[l - 1], batch: b, queries: q)
                    Self.reluMask(tangents[l - 1], s: ws.s[l - 1], batch: b, queries: q, width: layer.inputs)
                }
                first = false
                start = end
            }
        }
        let scale = 1 / T(totalBatch)
        for k in 0..<count { out[k] *= scale }
        comm?.allreduceSum(out, count: count)
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

    /// `t[b,q,j] ← 0` where `s[b,j] ≤ 0` (ReLU derivative broadcast over the Q vectors);
    /// t is B×(Q·width), s is B×width.
    @inline(__always)
    static func reluMask(_ t: UnsafeMutablePointer<T>, s: UnsafePointer<T>, batch: Int, queries: Int, width: Int) {
        for b in 0..<batch {
            let sb = s + b * width
            for q in 0..<queries {
                let tb = t + (b * queries + q) * width
                for j in 0..<width { tb[j] = sb[j] > 0 ? tb[j] : 0 }  // branch-free select vectorises
            }
        }
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
