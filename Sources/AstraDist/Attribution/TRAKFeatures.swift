import Foundation

/// TRAK's output function and re-weighting (spec §8), and the projected features of a set
/// of examples.
///
/// Output function: classification the correct-class margin `m = log p_y − log(1 − p_y) =
/// y_t − log Σ_{k≠t} e^{y_k}` (= −f, the project's measurement); regression the output g.
/// A training example's loss gradient is `∇L_m = −Q_mm ∇m` (classification, `Q_mm = 1 − p_y`)
/// or `Q_mm ∇g` (regression, `Q_mm = 2(g − t)`), and a query's measurement gradient is `−∇m_q`
/// or `sign(g_q − t_q) ∇g_q`; so `τ = ψ_qᵀ(ΦᵀΦ + εI)⁻¹ φ_m Q_mm` with ψ the query side below is
/// the influence formula `∇f_qᵀ H⁻¹ ∇L_m` with `H ≈ ΦᵀΦ`: positive means m helps q.
public enum TRAKFeatures {
    public enum Side: Sendable {
        /// Training examples: `∇m` (or `∇g`) and the weight `Q_mm`.
        case training
        /// Queries: `∇m` (or `sign(g − t)∇g`); no weight.
        case query
    }

    /// Writes the output cotangent `∂(output function)/∂y` of one example to `dy` and returns
    /// its weight `Q_mm` (training side; 1 on the query side).
    /// Precondition: regression has one output.
    @inline(__always)
    static func outputCotangent<T: BLASScalar>(loss: LossKind, side: Side, y: UnsafePointer<T>, target: UnsafePointer<T>,
                                               dy: UnsafeMutablePointer<T>, outputs c: Int) -> Double {
        // ∂f/∂y: classification −∂m/∂y; regression sign(g − t).
        let f = Measurement.valueAndGradient(loss: loss, y: y, target: target, dy: dy, outputs: c)
        switch loss {
        case .crossEntropy:
            for k in 0..<c { dy[k] = -dy[k] }
            // 1 − p_y = σ(−m) = 1/(1 + e^{−f}), stable for any margin.
            return side == .training ? 1 / (1 + exp(-f)) : 1
        case .mse:
            guard side == .training else { return 1 }
            dy[0] = 1
            return 2 * (y[0] - target[0]).asDouble
        }
    }

    /// The projected features `φ_e = Pᵀ ∇_θ(output function of e)` of `rows` of `data`
    /// (rows.count × k, Double) and, on the training side, the weights `Q_ee`.
    /// Complexity: one forward and backward pass per example plus the projection's cost.
    public static func compute<T: BLASScalar>(_ network: Network<T>, _ data: Dataset, rows: [Int], side: Side,
                                              projector: TRAKProjector<T>, batchSize: Int = 256) throws -> (features: [Double], weights: [Double]) {
        let shape = network.shape, c = shape.outputCount, tw = data.targetWidth, k = projector.dimension, n = rows.count
        guard network.loss == .crossEntropy || c == 1 else {
            throw AstraError("trak: regression with \(c) outputs is not supported (TRAK's output function is one model output)")
        }
        precondition(projector.shape == shape, "TRAKFeatures: a projector for \(projector.shape), network \(shape)")
        var features = [Double](repeating: 0, count: n * k), weights = [Double](repeating: 1, count: n)
        let ws = Workspace<T>(shape: shape, capacity: batchSize)
        var x = [T](repeating: 0, count: batchSize * data.featureCount), y = [T](repeating: 0, count: batchSize * tw)
        var start = 0
        while start < n {
            let b = min(batchSize, n - start)
            x.withUnsafeMutableBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
                data.gather(rows[start..<(start + b)], x: xp.baseAddress!, y: yp.baseAddress!)
                network.forward(xp.baseAddress!, batch: b, workspace: ws)
                for i in 0..<b {
                    weights[start + i] = outputCotangent(loss: network.loss, side: side, y: ws.output + i * c, target: yp.baseAddress! + i * tw,
                                                         dy: ws.outputGradient + i * c, outputs: c)
                }
            } }
            network.backward(batch: b, workspace: ws, gradient: nil)
            features.withUnsafeMutableBufferPointer { projector.project(ws, batch: b, into: $0.baseAddress! + start * k) }
            start += b
        }
        return (features, weights)
    }
}
