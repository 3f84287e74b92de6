/// A network: a sequence of operations (`NetworkShape`) with a loss. Parameters are one flat
/// vector (layout in `NetworkShape`). This file and `NetworkWalk.swift` are the only code
/// that walks the sequence; everything else sees layers and blocks.
public struct Network<T: BLASScalar>: Sendable {
    public var shape: NetworkShape
    public var loss: LossKind
    /// P values.
    public var parameters: [T]
    /// Batch-norm state, not attributed (layout `NetworkShape.normalizationOffset`): [γ, β] of
    /// every normalisation, then their running [mean, var]; empty without batch norm.
    public var normalization: [T]

    /// `normalization` nil: PyTorch's fresh batch norm (γ 1, β 0, running mean 0, var 1).
    public init(shape: NetworkShape, loss: LossKind, parameters: [T], normalization: [T]? = nil) {
        precondition(parameters.count == shape.parameterCount, "Network: \(parameters.count) parameters for shape \(shape)")
        let state = normalization ?? Self.freshNormalization(shape)
        precondition(state.count == shape.normalizationCount, "Network: \(state.count) normalisation values for shape \(shape)")
        self.shape = shape; self.loss = loss; self.parameters = parameters; self.normalization = state
    }

    /// γ = 1, β = 0, running mean 0 and variance 1 for every normalisation.
    static func freshNormalization(_ shape: NetworkShape) -> [T] {
        var state = [T](repeating: 0, count: shape.normalizationCount)
        for (j, n) in shape.normalizations.enumerated() {
            let o = shape.normalizationOffset(j)
            for k in 0..<n.channels { state[o + k] = 1; state[shape.affineCount + o + n.channels + k] = 1 }
        }
        return state
    }

    /// PyTorch's default `nn.Linear` / `nn.Conv2d` initialisation: weights and bias
    /// ~ U(−1/√fan-in, 1/√fan-in), drawn from the counter-based stream `(seed, initialization, layer)`.
    public init(shape: NetworkShape, loss: LossKind, seed: UInt64) {
        var p = [T](repeating: 0, count: shape.parameterCount)
        for l in 0..<shape.layerCount {
            let layer = shape.layer(l), bound = 1 / Double(layer.fanIn).squareRoot()
            var rng = CounterRandom(seed: seed, purpose: .initialization, index: UInt64(l))
            let o = shape.offset(l)
            for i in 0..<layer.parameterCount { p[o + i] = T((2 * rng.nextUniform() - 1) * bound) }
        }
        self.init(shape: shape, loss: loss, parameters: p)
    }

    public func converted<U: BLASScalar>(to: U.Type) -> Network<U> {
        Network<U>(shape: shape, loss: loss, parameters: parameters.map { U($0.asDouble) }, normalization: normalization.map { U($0.asDouble) })
    }
}

/// Buffers for forward and backward passes over batches of up to `capacity` examples,
/// allocated once and reused (no allocation in the training loop).
public final class Workspace<T: BLASScalar> {
    public let shape: NetworkShape
    public let capacity: Int
    /// Per value k ≥ 1 (k = 0, the data, is not kept; its entry is a placeholder): B×width_k.
    public let values: [UnsafeMutablePointer<T>]
    /// Per value k ≥ 1: `∂(objective)/∂value_k`, B×width_k, filled by `backward`.
    public let gradients: [UnsafeMutablePointer<T>]
    /// Per layer: its rows `ā_l` (for a linear layer B×(I+1), last column 1).
    public let abar: [UnsafeMutablePointer<T>]
    /// Per layer: its output `s_l` (the value after it), B×O.
    public let s: [UnsafeMutablePointer<T>]
    /// Per layer: `Ds_l = ∂(objective)/∂s_l`, B×O.
    public let ds: [UnsafeMutablePointer<T>]
    /// Per normalisation: the last training-mode batch's [mean, var, 1/√(var + ε)] (3C).
    let batchStatistics: [UnsafeMutablePointer<T>]
    /// `scale·∂(objective)/∂[γ, β]` of every normalisation (`NetworkShape.affineCount`
    /// values), filled by a `backward` after a training-mode `forward` asked for a gradient.
    public let normalizationGradient: UnsafeMutablePointer<T>
    /// True after a training-mode `forward` (batch statistics): `backward` runs through them.
    public internal(set) var training = false
    /// When set, `forward` and `backward` record their time per operation and pass (`bench train`).
    public var profile: OperationProfile?

    public init(shape: NetworkShape, capacity: Int) {
        self.shape = shape; self.capacity = capacity
        let sizes = shape.valueWidths.enumerated().map { $0.offset == 0 ? 1 : capacity * $0.element }
        let values = sizes.map { UnsafeMutablePointer<T>.allocate(capacity: $0) }, gradients = sizes.map { UnsafeMutablePointer<T>.allocate(capacity: $0) }
        abar = shape.layers.map { .allocate(capacity: capacity * $0.positions * $0.inputFactorDimension) }
        let after = shape.layerIndex.indices.filter { shape.layerIndex[$0] != nil }.map { $0 + 1 }
        self.values = values; self.gradients = gradients
        s = after.map { values[$0] }
        ds = after.map { gradients[$0] }
        batchStatistics = shape.normalizations.map { .allocate(capacity: 3 * $0.channels) }
        normalizationGradient = .allocate(capacity: max(shape.affineCount, 1))
    }
    deinit { (values + gradients + abar + batchStatistics + [normalizationGradient]).forEach { $0.deallocate() } }

    /// Output `y` of the last forward pass, B×C.
    public var output: UnsafeMutablePointer<T> { values[values.count - 1] }
    /// `∂/∂y` to fill before `backward`, B×C.
    public var outputGradient: UnsafeMutablePointer<T> { gradients[gradients.count - 1] }
}

extension Network {
    /// Forward pass of B examples; `x` is B×D. Fills every value and each layer's rows
    /// `ā_l`; the output is `ws.output`. `training`: batch norm uses the batch's statistics
    /// (PyTorch's `model.train()`; they go to `ws` for `backward` and
    /// `updateRunningStatistics`), else its frozen map (`model.eval()`).
    public func forward(_ x: UnsafePointer<T>, batch: Int, workspace ws: Workspace<T>, training: Bool = false) {
        precondition(batch <= ws.capacity)
        ws.training = training && !shape.normalizations.isEmpty
        parameters.withUnsafeBufferPointer { w in normalization.withUnsafeBufferPointer { state in
            for (k, op) in shape.operations.enumerated() {
                let input = k == 0 ? x : UnsafePointer(ws.values[k])
                var mark = ws.profile?.start() ?? 0
                switch op {
                case .layer(let layer):
                    let l = shape.layerIndex[k]!
                    layer.makeRows(input: input, batch: batch, into: ws.abar[l])
                    mark = ws.profile?.record(k, .rows, since: mark) ?? 0
                    layer.forward(abar: ws.abar[l], weights: w.baseAddress! + shape.offset(l), s: ws.values[k + 1], batch: batch)
                case .pointwise(let f):
                    f.forward(input, into: ws.values[k + 1], count: batch * shape.valueWidths[k])
                case .spatial(let f):
                    f.forward(input, into: ws.values[k + 1], batch: batch, width: shape.valueWidths[k])
                case .residual(let from):
                    let skip = from == 0 ? x : UnsafePointer(ws.values[from])
                    addResidual(input, skip, into: ws.values[k + 1], count: batch * shape.valueWidths[k])
                case .batchNorm(let n):
                    let j = shape.normalizationIndex[k]!, o = shape.normalizationOffset(j), s = state.baseAddress!
                    if ws.training {
                        n.trainingForward(input, state: s + o, batch: batch, statistics: ws.batchStatistics[j], into: ws.values[k + 1])
                    } else {
                        let (a, b) = n.frozenCoefficients(state: s + o, running: s + shape.affineCount + o)
                        BatchNorm2d.affine(input, scale: a, shift: b, into: ws.values[k + 1], rows: batch * n.pixels)
                    }
                }
                ws.profile?.record(k, .forward, since: mark)
            }
        } }
    }

    /// Backward pass from `ws.outputGradient` (B×C) after `forward`: fills the gradient of
    /// every value after the first layer (so `Ds_l` of every layer) and, if `gradient` is
    /// given, sets it to `scale·Σ_b ∇θ` (P values) and, after a training-mode forward,
    /// `ws.normalizationGradient` to batch norm's `scale·Σ_b ∇[γ, β]`.
    public func backward(batch: Int, workspace ws: Workspace<T>, gradient: UnsafeMutablePointer<T>?, scale: T = 1) {
        parameters.withUnsafeBufferPointer { w in normalization.withUnsafeBufferPointer { state in
            Self.backwardWalk(shape, weights: w.baseAddress!, state: state.baseAddress, batch: batch, workspace: ws, gradient: gradient, scale: scale)
        } }
    }

    /// A training step's pass: `lossAndGradient(…, training:)`, and, as soon as the walk is
    /// done with layer l (its block of `gradient` complete, its weights read no more in this
    /// pass), `update(parameters, block)` with the range of l's parameters, so an optimiser
    /// steps a block while the gradient pass left it in cache (`Trainer`). Every parameter is
    /// in exactly one block; blocks come last layer first. Batch norm's [γ, β] are no layer's
    /// (`ws.normalizationGradient`, after the pass). Returns the mean loss.
    @discardableResult
    public mutating func lossAndGradient(_ x: UnsafePointer<T>, _ targets: UnsafePointer<T>, batch: Int, workspace ws: Workspace<T>,
                                         gradient: UnsafeMutablePointer<T>, training: Bool,
                                         update: (UnsafeMutablePointer<T>, Range<Int>) -> Void) -> Double {
        let total = forwardLoss(x, targets, batch: batch, workspace: ws, training: training)
        // Locals, so the walk reads no part of `self` while the parameters are being written.
        let shape = self.shape, state = normalization
        state.withUnsafeBufferPointer { s in parameters.withUnsafeMutableBufferPointer { w in
            let theta = w.baseAddress!
            Self.backwardWalk(shape, weights: theta, state: s.baseAddress, batch: batch, workspace: ws, gradient: gradient, scale: 1 / T(batch)) { l in
                update(theta, shape.offset(l)..<shape.offset(l + 1))
            }
        } }
        return total / Double(batch)
    }

    /// The walk of `backward` over `weights` (P values) and the batch-norm `state` (nil
    /// without batch norm); after a layer's passes it calls `finished(l)`.
    private static func backwardWalk(_ shape: NetworkShape, weights: UnsafePointer<T>, state: UnsafePointer<T>?, batch: Int, workspace ws: Workspace<T>,
                                     gradient: UnsafeMutablePointer<T>?, scale: T, finished: (Int) -> Void = { _ in }) {
        for k in shape.operations.indices.reversed() {
            var mark = ws.profile?.start() ?? 0, pass = OperationProfile.Pass.backward
            switch shape.operations[k] {
            case .layer(let layer):
                let l = shape.layerIndex[k]!
                if let gradient {
                    layer.weightGradient(ds: ws.gradients[k + 1], abar: ws.abar[l], scale: scale, beta: 0, gradient: gradient + shape.offset(l), batch: batch)
                    mark = ws.profile?.record(k, .weightGradient, since: mark) ?? 0
                }
                pass = .inputGradient
                // The data needs no gradient.
                if k > 0 { layer.backwardInput(ds: ws.gradients[k + 1], weights: weights + shape.offset(l), da: ws.gradients[k], batch: batch) }
            case .pointwise(let f):
                f.backward(pre: ws.values[k], grad: ws.gradients[k + 1], into: ws.gradients[k], count: batch * shape.valueWidths[k])
            case .spatial(let f):
                f.transpose(ws.gradients[k + 1], pre: ws.values[k], into: ws.gradients[k], batch: batch, queries: 1, width: shape.valueWidths[k])
            case .residual:
                ws.gradients[k].update(from: ws.gradients[k + 1], count: batch * shape.valueWidths[k])
            case .batchNorm(let n):
                let j = shape.normalizationIndex[k]!, o = shape.normalizationOffset(j), s = state!
                if ws.training {
                    n.trainingBackward(ws.values[k], gradient: ws.gradients[k + 1], state: s + o, statistics: ws.batchStatistics[j], batch: batch,
                                       scale: scale, parameterGradient: ws.normalizationGradient + o, into: ws.gradients[k])
                } else {
                    let (a, _) = n.frozenCoefficients(state: s + o, running: s + shape.affineCount + o)
                    BatchNorm2d.affine(ws.gradients[k + 1], scale: a, shift: nil, into: ws.gradients[k], rows: batch * n.pixels)
                }
            }
            if k > 0 || pass != .inputGradient { ws.profile?.record(k, pass, since: mark) }
            if let l = shape.layerIndex[k] { finished(l) }
            // Value k is complete: close the skips that add it (their output cotangents).
            for r in shape.residualsFrom[k] { addResidual(ws.gradients[k], ws.gradients[r + 1], into: ws.gradients[k], count: batch * shape.valueWidths[k]) }
        }
    }

    /// Forward pass, then `∂L/∂y` of every example's own (true-label) loss into
    /// `ws.outputGradient`, unscaled. Returns the summed loss. `targets` is B×(C or 1).
    @discardableResult
    public func forwardLoss(_ x: UnsafePointer<T>, _ targets: UnsafePointer<T>, batch: Int, workspace ws: Workspace<T>, training: Bool = false) -> Double {
        forward(x, batch: batch, workspace: ws, training: training)
        let c = shape.outputCount, tw = loss == .mse ? c : 1
        let mark = ws.profile?.start() ?? 0
        var total = 0.0
        for b in 0..<batch {
            total += loss.lossAndGradient(y: ws.output + b * c, target: targets + b * tw, dy: ws.outputGradient + b * c, outputs: c)
        }
        ws.profile?.record(nil, .loss, since: mark)
        return total
    }

    /// Fills `Ds_l` of every layer with the per-example gradients of the true training loss
    /// (the rank-one factors `DW̄ = Ds āᵀ` that fit and scoring contract with).
    public func lossBackward(_ x: UnsafePointer<T>, _ targets: UnsafePointer<T>, batch: Int, workspace ws: Workspace<T>) {
        forwardLoss(x, targets, batch: batch, workspace: ws)
        backward(batch: batch, workspace: ws, gradient: nil)
    }

    /// Mean loss over the batch and its gradient (scaled by 1/B) into `gradient`.
    /// `targets` is B×(C or 1). `training`: batch norm in training mode (`forward`), its
    /// [γ, β] gradient into `ws.normalizationGradient`.
    @discardableResult
    public func lossAndGradient(_ x: UnsafePointer<T>, _ targets: UnsafePointer<T>, batch: Int, workspace ws: Workspace<T>,
                                gradient: UnsafeMutablePointer<T>?, training: Bool = false) -> Double {
        let total = forwardLoss(x, targets, batch: batch, workspace: ws, training: training)
        if gradient != nil { backward(batch: batch, workspace: ws, gradient: gradient, scale: 1 / T(batch)) }
        return total / Double(batch)
    }
}
