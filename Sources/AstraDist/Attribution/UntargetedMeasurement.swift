import Foundation

extension Measurement {
    /// `f` and `∂f/∂y` of a query without a target (`score --untargeted`, docs/commands.md).
    /// Classification: the margin of the predicted class `t̂ = argmax_k y_k` (the first on a
    /// tie), i.e. `valueAndGradient` with target t̂, which is locally constant in θ, so the
    /// gradient is the targeted one at t̂. Regression: `Σ_k y_k`, the output g itself for one
    /// output (`|g − ĝ|` at the model's own prediction would be identically 0), `∂f/∂y = 1`.
    @inline(__always)
    static func untargeted<T: BLASScalar>(loss: LossKind, y: UnsafePointer<T>, dy: UnsafeMutablePointer<T>, outputs c: Int) -> Double {
        switch loss {
        case .mse:
            var f = 0.0
            for k in 0..<c { f += y[k].asDouble; dy[k] = 1 }
            return f
        case .crossEntropy:
            var best = 0
            for k in 1..<max(c, 1) where y[k] > y[best] { best = k }
            var t = T(Double(best))
            return valueAndGradient(loss: loss, y: y, target: &t, dy: dy, outputs: c)
        }
    }
}
