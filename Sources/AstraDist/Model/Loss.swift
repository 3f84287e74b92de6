import Foundation

/// Per-example loss `L(y, t)` (spec §1). Training minimises the batch mean.
public enum LossKind: String, Codable, Sendable {
    /// `||y − t||²` (PyTorch `MSELoss` for one output); `H_L = 2I`.
    case mse
    /// Softmax cross-entropy; targets are class indices; `H_L = diag(p) − ppᵀ`.
    case crossEntropy = "cross-entropy"
}

extension LossKind {
    /// Loss of one example and `∂L/∂y` written to `dy` (C values). `target` is C values
    /// (regression) or one class index (classification).
    @inline(__always)
    func lossAndGradient<T: BLASScalar>(y: UnsafePointer<T>, target: UnsafePointer<T>, dy: UnsafeMutablePointer<T>, outputs c: Int) -> Double {
        switch self {
        case .mse:
            var l = 0.0
            for k in 0..<c { let r = y[k] - target[k]; dy[k] = 2 * r; l += r.asDouble * r.asDouble }
            return l
        case .crossEntropy:
            let t = Int(target[0])
            var m = y[0].asDouble
            for k in 1..<c { m = max(m, y[k].asDouble) }
            var z = 0.0
            for k in 0..<c { z += exp(y[k].asDouble - m) }
            for k in 0..<c { dy[k] = T(exp(y[k].asDouble - m) / z) }
            dy[t] -= 1
            return m + log(z) - y[t].asDouble
        }
    }

    /// Softmax probabilities (classification) written to `p`.
    @inline(__always)
    static func softmax<T: BLASScalar>(_ y: UnsafePointer<T>, into p: UnsafeMutablePointer<Double>, outputs c: Int) {
        var m = y[0].asDouble
        for k in 1..<c { m = max(m, y[k].asDouble) }
        var z = 0.0
        for k in 0..<c { p[k] = exp(y[k].asDouble - m); z += p[k] }
        for k in 0..<c { p[k] /= z }
    }

    /// Applies `H_L` of each example to a block of output tangents in place:
    /// `dy` is B×(Q·C) with outputs `y` B×C.
    func applyOutputHessian<T: BLASScalar>(y: UnsafePointer<T>, dy: UnsafeMutablePointer<T>, batch: Int, queries: Int, outputs c: Int) {
        switch self {
        case .mse:
            for i in 0..<(batch * queries * c) { dy[i] = 2 * dy[i] }
        case .crossEntropy:
            Self.forEachSoftmaxTangent(y: y, dy: dy, batch: batch, queries: queries, outputs: c) { p, v, pv, _ in
                for k in 0..<c { v[k] = T(p[k] * (v[k].asDouble - pv)) }
            }
        }
    }

    /// Adds `dyᵀ H_L dy` of each example to its query's sum (`sums`, Q values): `dy` is
    /// B×(Q·C) with outputs `y` B×C. Cross-entropy: `Σ_k p_k (dy_k − pᵀdy)²`, the same as
    /// `dyᵀ(diag(p) − ppᵀ)dy` but a sum of non-negative terms.
    func addOutputHessianForms<T: BLASScalar>(y: UnsafePointer<T>, dy: UnsafePointer<T>, batch: Int, queries: Int, outputs c: Int,
                                              into sums: UnsafeMutablePointer<Double>) {
        switch self {
        case .mse:
            for i in 0..<(batch * queries) {
                var s = 0.0
                for k in 0..<c { let d = dy[i * c + k].asDouble; s += d * d }
                sums[i % queries] += 2 * s
            }
        case .crossEntropy:
            Self.forEachSoftmaxTangent(y: y, dy: UnsafeMutablePointer(mutating: dy), batch: batch, queries: queries, outputs: c) { p, v, pv, q in
                var s = 0.0
                for k in 0..<c { let d = v[k].asDouble - pv; s += p[k] * d * d }
                sums[q] += s
            }
        }
    }

    /// `body(p, v, pᵀv, q)` for every example's softmax p and each of its Q output tangents v
    /// (a row of the B×(Q·C) block `dy`).
    @inline(__always)
    private static func forEachSoftmaxTangent<T: BLASScalar>(y: UnsafePointer<T>, dy: UnsafeMutablePointer<T>, batch: Int, queries: Int, outputs c: Int,
                                                             _ body: (UnsafePointer<Double>, UnsafeMutablePointer<T>, Double, Int) -> Void) {
        withUnsafeTemporaryAllocation(of: Double.self, capacity: c) { buf in
            let p = buf.baseAddress!
            for b in 0..<batch {
                softmax(y + b * c, into: p, outputs: c)
                for q in 0..<queries {
                    let v = dy + (b * queries + q) * c
                    var pv = 0.0
                    for k in 0..<c { pv += p[k] * v[k].asDouble }
                    body(p, v, pv, q)
                }
            }
        }
    }
}

/// The measurement `f_q` (spec §1): loss-like, lower is better.
public enum Measurement {
    /// `f` and `∂f/∂y` for one query.
    /// Regression: `|y − t|` (first output). Classification: `−(y_t − log Σ_{k≠t} e^{y_k})`.
    @inline(__always)
    static func valueAndGradient<T: BLASScalar>(loss: LossKind, y: UnsafePointer<T>, target: UnsafePointer<T>, dy: UnsafeMutablePointer<T>, outputs c: Int) -> Double {
        switch loss {
        case .mse:
            var f = 0.0
            for k in 0..<c {
                let r = (y[k] - target[k]).asDouble
                f += abs(r); dy[k] = r >= 0 ? 1 : -1
            }
            return f
        case .crossEntropy:
            let t = Int(target[0])
            var m = -Double.infinity
            for k in 0..<c where k != t { m = max(m, y[k].asDouble) }
            var z = 0.0
            for k in 0..<c where k != t { z += exp(y[k].asDouble - m) }
            for k in 0..<c { dy[k] = k == t ? -1 : T(exp(y[k].asDouble - m) / z) }
            return -(y[t].asDouble - (m + log(z)))
        }
    }
}

extension Measurement {
    /// Array form of `valueAndGradient` (tests and small callers).
    public static func value(loss: LossKind, y: [Double], target: [Double], gradient: inout [Double]) -> Double {
        y.withUnsafeBufferPointer { yp in target.withUnsafeBufferPointer { tp in gradient.withUnsafeMutableBufferPointer { g in
            valueAndGradient(loss: loss, y: yp.baseAddress!, target: tp.baseAddress!, dy: g.baseAddress!, outputs: y.count)
        } } }
    }
}
