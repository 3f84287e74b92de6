/// PyTorch's `nn.BatchNorm2d(C)` (eps 1e-5, momentum 0.1, affine, tracking running
/// statistics) on an image in the (position, channel) layout of `Conv2dLayer` (`[y, x, c]`
/// per example, so a batch is M = B·H·W rows of C values).
///
/// Two modes, as in PyTorch:
/// - training (`model.train()`): normalises with the batch's mean and biased variance over
///   the M rows, `y = γ (x − μ_B)/√(σ²_B + ε) + β`, and the backward pass runs through the
///   batch statistics; after each step the running statistics move by
///   `r ← (1 − 0.1)·r + 0.1·stat` with the *unbiased* batch variance (σ²_B · M/(M − 1)).
/// - frozen (`model.eval()`, everything after training: curvature, GGN products, scores,
///   attribution): the per-channel affine map `y = a_c x + b_c`, `a = γ/√(running_var + ε)`,
///   `b = β − a·running_mean`, linear in x, so its tangent and transpose multiply by a and its
///   R-operator adds no second-derivative term.
///
/// γ and β are trained but not attributed: they live in `Network.normalization`, not in the
/// parameter vector the solvers, factors and scores see (kronfluence and the paper do the same).
public struct BatchNorm2d: Equatable, Sendable {
    public let channels: Int
    public let height: Int
    public let width: Int
    public static let epsilon = 1e-5
    public static let momentum = 0.1

    /// Precondition: positive sizes.
    public init(channels: Int, height: Int, width: Int) {
        precondition(channels > 0 && height > 0 && width > 0, "BatchNorm2d: sizes must be positive")
        self.channels = channels; self.height = height; self.width = width
    }

    public var inputWidth: Int { height * width * channels }
    var pixels: Int { height * width }

    /// The frozen map's per-channel scale a and shift b from `state` = [γ, β] (2C) and
    /// `running` = [mean, var] (2C), computed in Double.
    func frozenCoefficients<T: BLASScalar>(state: UnsafePointer<T>, running: UnsafePointer<T>) -> (scale: [T], shift: [T]) {
        let c = channels
        var scale = [T](repeating: 0, count: c), shift = scale
        for k in 0..<c {
            let a = state[k].asDouble / (running[c + k].asDouble + Self.epsilon).squareRoot()
            scale[k] = T(a); shift[k] = T(state[c + k].asDouble - a * running[k].asDouble)
        }
        return (scale, shift)
    }

    /// `y = a ∘ x + b` per channel over `rows` rows of C (b nil: no shift, the tangent and
    /// transpose of the frozen map). `y` may be `x`.
    static func affine<T: BLASScalar>(_ x: UnsafePointer<T>, scale: [T], shift: [T]?, into y: UnsafeMutablePointer<T>, rows: Int) {
        let c = scale.count
        for r in 0..<rows {
            let xr = x + r * c, yr = y + r * c
            if let shift { for k in 0..<c { yr[k] = scale[k] * xr[k] + shift[k] } } else { for k in 0..<c { yr[k] = scale[k] * xr[k] } }
        }
    }

    /// Training-mode forward of `batch` examples: batch mean and biased variance per channel
    /// (two passes, in Double) into `statistics` = [mean, var, 1/√(var + ε)] (3C), then
    /// `y = γ x̂ + β`. `state` = [γ, β].
    func trainingForward<T: BLASScalar>(_ x: UnsafePointer<T>, state: UnsafePointer<T>, batch: Int, statistics: UnsafeMutablePointer<T>,
                                        into y: UnsafeMutablePointer<T>) {
        let c = channels, m = batch * pixels
        var mean = [Double](repeating: 0, count: c), variance = mean
        for r in 0..<m { for k in 0..<c { mean[k] += x[r * c + k].asDouble } }
        for k in 0..<c { mean[k] /= Double(m) }
        for r in 0..<m { for k in 0..<c { let d = x[r * c + k].asDouble - mean[k]; variance[k] += d * d } }
        var scale = [T](repeating: 0, count: c), shift = scale
        for k in 0..<c {
            variance[k] /= Double(m)
            let inv = 1 / (variance[k] + Self.epsilon).squareRoot()
            statistics[k] = T(mean[k]); statistics[c + k] = T(variance[k]); statistics[2 * c + k] = T(inv)
            scale[k] = T(state[k].asDouble * inv); shift[k] = T(state[c + k].asDouble - state[k].asDouble * inv * mean[k])
        }
        Self.affine(x, scale: scale, shift: shift, into: y, rows: m)
    }

    /// Training-mode backward through the batch statistics of the last `trainingForward`:
    /// with x̂ = (x − μ)/σ, `dβ = Σ g`, `dγ = Σ g x̂` (both times `scale`, into
    /// `parameterGradient` = [dγ, dβ]) and `dx = γ/(M σ) (M g − Σ g − x̂ Σ g x̂)` (unscaled, like
    /// every value gradient). `g` B×inputWidth.
    func trainingBackward<T: BLASScalar>(_ x: UnsafePointer<T>, gradient g: UnsafePointer<T>, state: UnsafePointer<T>, statistics: UnsafePointer<T>,
                                         batch: Int, scale: T, parameterGradient: UnsafeMutablePointer<T>, into dx: UnsafeMutablePointer<T>) {
        let c = channels, m = batch * pixels
        var sumG = [Double](repeating: 0, count: c), sumGX = sumG
        for r in 0..<m {
            for k in 0..<c {
                let gv = g[r * c + k].asDouble, xhat = (x[r * c + k].asDouble - statistics[k].asDouble) * statistics[2 * c + k].asDouble
                sumG[k] += gv; sumGX[k] += gv * xhat
            }
        }
        for k in 0..<c { parameterGradient[k] = scale * T(sumGX[k]); parameterGradient[c + k] = scale * T(sumG[k]) }
        let count = Double(m)
        for r in 0..<m {
            for k in 0..<c {
                let inv = statistics[2 * c + k].asDouble, xhat = (x[r * c + k].asDouble - statistics[k].asDouble) * inv
                dx[r * c + k] = T(state[k].asDouble * inv / count * (count * g[r * c + k].asDouble - sumG[k] - xhat * sumGX[k]))
            }
        }
    }

    /// PyTorch's running-statistics update from the last `trainingForward` over `batch`
    /// examples: `running` = [mean, var] (2C) moves by momentum 0.1 towards the batch mean and
    /// the unbiased batch variance.
    func updateRunning<T: BLASScalar>(_ running: UnsafeMutablePointer<T>, statistics: UnsafePointer<T>, batch: Int) {
        let c = channels, m = Double(batch * pixels), mom = Self.momentum
        let unbias = m > 1 ? m / (m - 1) : 1
        for k in 0..<c {
            running[k] = T((1 - mom) * running[k].asDouble + mom * statistics[k].asDouble)
            running[c + k] = T((1 - mom) * running[c + k].asDouble + mom * statistics[c + k].asDouble * unbias)
        }
    }
}

/// The training side of a network's batch norms, for `Trainer`: after each step's
/// training-mode forward and backward, the SGD step of every [γ, β] (the recipe's momentum
/// and weight decay, as PyTorch's SGD over `model.parameters()`) and the running-statistics
/// update. Does nothing for a network without batch norm.
final class BatchNormTraining<T: BLASScalar> {
    private let velocity: UnsafeMutablePointer<T>
    private let count: Int

    init(shape: NetworkShape) { count = shape.affineCount; velocity = .allocate(capacity: max(count, 1)) }
    deinit { velocity.deallocate() }

    /// Precondition: `ws` holds the training-mode forward and backward of this step's batch.
    func step(_ net: inout Network<T>, workspace ws: Workspace<T>, batch: Int, lr: T, momentum: T, weightDecay: T, first: Bool) {
        guard count > 0 else { return }
        precondition(ws.training, "BatchNormTraining: the workspace holds no training-mode pass")
        if first { velocity.update(repeating: 0, count: count) }
        let shape = net.shape
        net.normalization.withUnsafeMutableBufferPointer { s in
            sgdStep(theta: s.baseAddress!, grad: ws.normalizationGradient, velocity: velocity, count: count, lr: lr, momentum: momentum,
                    weightDecay: weightDecay, first: first)
            for (j, n) in shape.normalizations.enumerated() {
                n.updateRunning(s.baseAddress! + shape.affineCount + shape.normalizationOffset(j), statistics: ws.batchStatistics[j], batch: batch)
            }
        }
    }
}

extension Network {
    /// Normalisation j's state as PyTorch's tensors, rows weight (γ), bias (β), running_mean,
    /// running_var (4×C, the `batchnorm-j.npy` of a model directory).
    public func batchNormRows(_ j: Int) -> [T] {
        let c = shape.normalizations[j].channels, o = shape.normalizationOffset(j), r = shape.affineCount + o
        return Array(normalization[o..<(o + 2 * c)] + normalization[r..<(r + 2 * c)])
    }
    /// Sets normalisation j's state from `batchNormRows`' 4×C layout. Precondition: 4·C values.
    public mutating func setBatchNormRows(_ j: Int, _ rows: [T]) {
        let c = shape.normalizations[j].channels, o = shape.normalizationOffset(j), r = shape.affineCount + o
        precondition(rows.count == 4 * c, "setBatchNormRows: \(rows.count) values for \(c) channels")
        for k in 0..<(2 * c) { normalization[o + k] = rows[k]; normalization[r + k] = rows[2 * c + k] }
    }
}

extension Network where T == Float {
    /// The hash factors and scores record (`parametersHash`): of the parameters, and with
    /// batch norm of its state too (so a model without batch norm keeps its earlier hash).
    public var contentHash: String {
        if normalization.isEmpty { return ContentHash.of(parameters) }
        var h = ContentHash(); h.update(parameters); h.update(normalization)
        return h.hex
    }
}
