/// A multilayer perceptron: linear layers with ReLU between them, no activation after
/// the last. Parameters are one flat vector (layout in `NetworkShape`).
public struct Network<T: BLASScalar>: Sendable {
    public var shape: NetworkShape
    public var loss: LossKind
    /// P values.
    public var parameters: [T]

    public init(shape: NetworkShape, loss: LossKind, parameters: [T]) {
        precondition(parameters.count == shape.parameterCount, "Network: \(parameters.count) parameters for shape \(shape)")
        self.shape = shape; self.loss = loss; self.parameters = parameters
    }

    /// PyTorch's default `nn.Linear` initialisation: weights and bias ~ U(−1/√I, 1/√I),
    /// drawn from the counter-based stream `(seed, initialization, layer)`.
    public init(shape: NetworkShape, loss: LossKind, seed: UInt64) {
        var p = [T](repeating: 0, count: shape.parameterCount)
        for l in 0..<shape.layerCount {
            let layer = shape.layer(l), bound = 1 / Double(layer.inputs).squareRoot()
            var rng = CounterRandom(seed: seed, purpose: .initialization, index: UInt64(l))
            let o = shape.offset(l)
            for i in 0..<layer.parameterCount { p[o + i] = T((2 * rng.nextUniform() - 1) * bound) }
        }
        self.init(shape: shape, loss: loss, parameters: p)
    }

    public func converted<U: BLASScalar>(to: U.Type) -> Network<U> {
        Network<U>(shape: shape, loss: loss, parameters: parameters.map { U($0.asDouble) })
    }
}

/// Buffers for forward and backward passes over batches of up to `capacity` examples,
/// allocated once and reused (no allocation in the training loop).
public final class Workspace<T: BLASScalar> {
    public let shape: NetworkShape
    public let capacity: Int
    /// Per layer: `ā_l` B×(I+1), last column 1.
    public var abar: [UnsafeMutablePointer<T>]
    /// Per layer: pre-activation `s_l`, B×O.
    public var s: [UnsafeMutablePointer<T>]
    /// Per layer: `Ds_l = ∂(objective)/∂s_l`, B×O.
    public var ds: [UnsafeMutablePointer<T>]
    /// B×max(I) scratch for input gradients.
    var da: UnsafeMutablePointer<T>

    public init(shape: NetworkShape, capacity: Int) {
        self.shape = shape; self.capacity = capacity
        let layers = shape.layers
        abar = layers.map { .allocate(capacity: capacity * $0.augmented) }
        s = layers.map { .allocate(capacity: capacity * $0.outputs) }
        ds = layers.map { .allocate(capacity: capacity * $0.outputs) }
        da = .allocate(capacity: capacity * (layers.map(\.inputs).max() ?? 1))
    }
    deinit { (abar + s + ds).forEach { $0.deallocate() }; da.deallocate() }

    /// Output `y` of the last forward pass, B×C.
    public var output: UnsafeMutablePointer<T> { s[s.count - 1] }
    /// `∂/∂y` to fill before `backward`, B×C.
    public var outputGradient: UnsafeMutablePointer<T> { ds[ds.count - 1] }
}

extension Network {
    /// Forward pass of B examples; `x` is B×D. Fills `ā_l`, `s_l`; the output is `ws.output`.
    public func forward(_ x: UnsafePointer<T>, batch: Int, workspace ws: Workspace<T>) {
        precondition(batch <= ws.capacity)
        let layers = shape.layers
        let d = shape.inputCount
        for b in 0..<batch {
            (ws.abar[0] + b * (d + 1)).update(from: x + b * d, count: d)
            ws.abar[0][b * (d + 1) + d] = 1
        }
        parameters.withUnsafeBufferPointer { w in
            for (l, layer) in layers.enumerated() {
                layer.forward(abar: ws.abar[l], weights: w.baseAddress! + shape.offset(l), s: ws.s[l], batch: batch)
                if l + 1 < layers.count {
                    let o = layer.outputs, next = ws.abar[l + 1], s = ws.s[l]
                    for b in 0..<batch {
                        reluForward(s + b * o, next + b * (o + 1), count: o)
                        next[b * (o + 1) + o] = 1
                    }
                }
            }
        }
    }

    /// Backward pass from `ws.outputGradient` (B×C) after `forward`: fills `Ds_l` of every
    /// layer and, if `gradient` is given, sets it to `scale·Σ_b ∇θ` (P values).
    public func backward(batch: Int, workspace ws: Workspace<T>, gradient: UnsafeMutablePointer<T>?, scale: T = 1) {
        let layers = shape.layers
        parameters.withUnsafeBufferPointer { w in
            for l in stride(from: layers.count - 1, through: 0, by: -1) {
                let layer = layers[l]
                if let gradient {
                    layer.weightGradient(ds: ws.ds[l], abar: ws.abar[l], scale: scale, beta: 0, gradient: gradient + shape.offset(l), batch: batch)
                }
                guard l > 0 else { break }
                layer.backwardInput(ds: ws.ds[l], weights: w.baseAddress! + shape.offset(l), da: ws.da, batch: batch)
                // ReLU derivative: s_{l−1} > 0.
                reluBackward(pre: ws.s[l - 1], grad: ws.da, out: ws.ds[l - 1], count: batch * layer.inputs)
            }
        }
    }

    /// Forward pass, then `∂L/∂y` of every example's own (true-label) loss into
    /// `ws.outputGradient`, unscaled. Returns the summed loss. `targets` is B×(C or 1).
    @discardableResult
    public func forwardLoss(_ x: UnsafePointer<T>, _ targets: UnsafePointer<T>, batch: Int, workspace ws: Workspace<T>) -> Double {
        forward(x, batch: batch, workspace: ws)
        let c = shape.outputCount, tw = loss == .mse ? c : 1
        var total = 0.0
        for b in 0..<batch {
            total += loss.lossAndGradient(y: ws.output + b * c, target: targets + b * tw, dy: ws.outputGradient + b * c, outputs: c)
        }
        return total
    }

    /// Fills `Ds_l` of every layer with the per-example gradients of the true training loss
    /// (the rank-one factors `DW̄ = Ds āᵀ` that fit and scoring contract with).
    public func lossBackward(_ x: UnsafePointer<T>, _ targets: UnsafePointer<T>, batch: Int, workspace ws: Workspace<T>) {
        forwardLoss(x, targets, batch: batch, workspace: ws)
        backward(batch: batch, workspace: ws, gradient: nil)
    }

    /// Mean loss over the batch and its gradient (scaled by 1/B) into `gradient`.
    /// `targets` is B×(C or 1).
    @discardableResult
    public func lossAndGradient(_ x: UnsafePointer<T>, _ targets: UnsafePointer<T>, batch: Int, workspace ws: Workspace<T>,
                                gradient: UnsafeMutablePointer<T>?) -> Double {
        let total = forwardLoss(x, targets, batch: batch, workspace: ws)
        if gradient != nil { backward(batch: batch, workspace: ws, gradient: gradient, scale: 1 / T(batch)) }
        return total / Double(batch)
    }
}
