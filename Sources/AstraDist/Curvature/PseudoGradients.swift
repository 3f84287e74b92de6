import Foundation

/// How the output pseudo-gradients `g` (with `E[g gᵀ] = H_L`) are produced for the
/// Kronecker factors and the eigenvalue correction (spec §3).
public enum FisherMode: String, Codable, Sendable, CaseIterable {
    /// One draw per example from the model's own predictive distribution:
    /// classification `g = p − e_ŷ`, `ŷ ~ Categorical(p)`; regression `g = √2·ε`, `ε ~ N(0, I)`.
    /// Drawn from `CounterRandom(seed, .pseudoLabel, index: global example index)`, so the
    /// draws do not depend on the rank count, and pass 1 and pass 3 see the same draws.
    case sampled
    /// The expectation, deterministically: C vectors per example with `Σ_c g_c g_cᵀ = H_L`,
    /// classification `g_c = √p_c (e_c − p)`, regression `g_c = √2 e_c`. Costs C backward passes.
    case exact

    /// Pseudo-gradient vectors per example: 1 (sampled) or C (exact).
    public func draws(outputs c: Int) -> Int { self == .exact ? c : 1 }
}

/// Forward passes over a shard in batches and backward passes of pseudo-gradients, with
/// buffers allocated once. Shared by the factor pass and the eigenvalue-correction pass.
final class PseudoGradientBatches<T: BLASScalar> {
    let network: Network<T>
    let data: Dataset
    let capacity: Int
    let ws: Workspace<T>
    private let x: UnsafeMutablePointer<T>
    private let y: UnsafeMutablePointer<T>
    private let p: UnsafeMutablePointer<Double>
    private var positions: [Int]

    init(network: Network<T>, data: Dataset, batchSize: Int) {
        precondition(batchSize > 0, "PseudoGradientBatches: batch size must be positive")
        precondition(data.featureCount == network.shape.inputCount && data.outputCount == network.shape.outputCount,
                     "PseudoGradientBatches: data (D \(data.featureCount), C \(data.outputCount)) does not fit network \(network.shape)")
        self.network = network; self.data = data; capacity = batchSize
        ws = Workspace(shape: network.shape, capacity: batchSize)
        x = .allocate(capacity: batchSize * data.featureCount)
        y = .allocate(capacity: batchSize * data.targetWidth)
        p = .allocate(capacity: network.shape.outputCount)
        positions = []
        positions.reserveCapacity(batchSize)
    }
    deinit { x.deallocate(); y.deallocate(); p.deallocate() }

    /// Gathers and forwards each batch of `shard` (positions in `data`), then calls `body`
    /// with the batch's positions; `ws` holds `ā_l`, `s_l` and the output.
    func forEachBatch(_ shard: Range<Int>, _ body: (Range<Int>) throws -> Void) rethrows {
        var start = shard.lowerBound
        while start < shard.upperBound {
            let end = min(start + capacity, shard.upperBound)
            positions.removeAll(keepingCapacity: true)
            positions.append(contentsOf: start..<end)
            data.gather(positions[...], x: x, y: y)
            network.forward(x, batch: end - start, workspace: ws)
            try body(start..<end)
            start = end
        }
    }

    /// Fills `ws.outputGradient` with pseudo-gradient `draw` of every example of the batch at
    /// `positions` (after `forEachBatch` forwarded it) and backpropagates it: `ws.ds[l]` then
    /// holds the pseudo-gradient `Ds_l` of every layer (B×O).
    func backpropagate(draw: Int, positions: Range<Int>, mode: FisherMode, seed: UInt64) {
        let c = network.shape.outputCount, dy = ws.outputGradient, out = ws.output
        let classification = network.loss == .crossEntropy
        for (b, pos) in positions.enumerated() {
            let g = dy + b * c
            if classification { LossKind.softmax(out + b * c, into: p, outputs: c) }
            switch (mode, classification) {
            case (.exact, true):
                let r = p[draw].squareRoot()
                for k in 0..<c { g[k] = T(r * ((k == draw ? 1 : 0) - p[k])) }
            case (.exact, false):
                for k in 0..<c { g[k] = k == draw ? T(2.0.squareRoot()) : 0 }
            case (.sampled, true):
                var rng = CounterRandom(seed: seed, purpose: .pseudoLabel, index: UInt64(data.globalIndex[pos]))
                let u = rng.nextUniform()
                var label = c - 1, cumulative = 0.0
                for k in 0..<c { cumulative += p[k]; if u < cumulative { label = k; break } }
                for k in 0..<c { g[k] = T(p[k] - (k == label ? 1 : 0)) }
            case (.sampled, false):
                var rng = CounterRandom(seed: seed, purpose: .pseudoLabel, index: UInt64(data.globalIndex[pos]))
                for k in 0..<c { g[k] = T(2.0.squareRoot() * rng.nextNormal()) }
            }
        }
        network.backward(batch: positions.count, workspace: ws, gradient: nil)
    }

    /// T scratch large enough for every layer's curvature methods at this batch size.
    var scratchCount: Int { network.shape.layers.map { $0.curvatureScratchCount(batch: capacity) }.max() ?? 1 }
}

extension Communicator {
    /// Allreduce of a T buffer (Float or Double).
    func allreduceSum<T: BLASScalar>(_ p: UnsafeMutablePointer<T>, count: Int) {
        if T.self == Float.self {
            UnsafeMutableRawPointer(p).withMemoryRebound(to: Float.self, capacity: count) { allreduceSum(UnsafeMutableBufferPointer(start: $0, count: count)) }
        } else if T.self == Double.self {
            UnsafeMutableRawPointer(p).withMemoryRebound(to: Double.self, capacity: count) { allreduceSum(UnsafeMutableBufferPointer(start: $0, count: count)) }
        } else {
            fatalError("allreduceSum: unsupported scalar \(T.self)")
        }
    }
}

/// `T` view of a Double matrix (converted once; for GEMMs in the production precision).
func converted<T: BLASScalar>(_ m: Matrix<Double>, to: T.Type) -> [T] {
    if T.self == Double.self { return m.data as! [T] }
    return m.data.map { T($0) }
}
