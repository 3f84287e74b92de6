/// A training recipe (spec §10): mini-batch SGD with momentum and weight decay,
/// PyTorch semantics (`g ← ∇ + wd·θ; b ← m·b + g` (b = g at the first step); `θ ← θ − lr·b`),
/// reshuffled each epoch, last batch partial.
public struct TrainingRecipe: Codable, Equatable, Sendable {
    public var learningRate: Double
    public var momentum: Double
    public var weightDecay: Double
    public var batchSize: Int
    public var epochs: Int
    /// One-cycle schedule peaking at this fraction of the steps (`LearningRateSchedule.swift`);
    /// nil: the constant `learningRate`. Absent from the JSON when nil (earlier hashes hold).
    public var oneCyclePeak: Double? = nil
    /// Image augmentation of the training batches (`ImageAugmentation`); nil: none (absent).
    public var augmentation: ImageAugmentation? = nil
    public init(learningRate: Double, momentum: Double, weightDecay: Double, batchSize: Int, epochs: Int,
                oneCyclePeak: Double? = nil, augmentation: ImageAugmentation? = nil) {
        self.learningRate = learningRate; self.momentum = momentum; self.weightDecay = weightDecay
        self.batchSize = batchSize; self.epochs = epochs; self.oneCyclePeak = oneCyclePeak; self.augmentation = augmentation
    }
    public func steps(examples n: Int) -> Int { epochs * ((n + batchSize - 1) / batchSize) }
}

/// Trains one model. Everything it draws comes from counter-based streams keyed by `seed`
/// (initialisation by layer, shuffling by epoch), so a seed gives the same model on any
/// rank; bit-identity also needs a fixed BLAS thread count (`setBLASThreads`).
public struct Trainer<T: BLASScalar> {
    public var shape: NetworkShape
    public var recipe: TrainingRecipe
    /// Steps after which `onCheckpoint` is called with the current network (step counts from 1).
    public var checkpointSteps: Set<Int> = []
    /// When set, the time of every part of a step is recorded into it (`bench train`).
    public var profile: OperationProfile?

    public init(shape: NetworkShape, recipe: TrainingRecipe) { self.shape = shape; self.recipe = recipe }

    /// Trains from PyTorch-style initialisation with `seed` on `data`.
    /// Complexity: about 6·N·P·epochs flops, all in GEMMs.
    /// Batch norm trains in training mode (`BatchNormTraining`); augmentation, if the recipe
    /// has it, needs `data.image`.
    public func train(on data: Dataset, seed: UInt64, onCheckpoint: ((Int, Network<T>) -> Void)? = nil) -> Network<T> {
        precondition(recipe.augmentation == nil || data.image != nil, "Trainer: augmentation needs image data")
        var net = Network<T>(shape: shape, loss: data.loss, seed: seed)
        let n = data.count, bs = min(recipe.batchSize, max(n, 1)), p = shape.parameterCount
        let ws = Workspace<T>(shape: shape, capacity: bs)
        ws.profile = profile
        let x = UnsafeMutablePointer<T>.allocate(capacity: bs * data.featureCount)
        let y = UnsafeMutablePointer<T>.allocate(capacity: bs * data.targetWidth)
        let grad = UnsafeMutablePointer<T>.allocate(capacity: p)
        // Zero: the first step's m = 0 multiplies it (0·v + g = g; uninitialised memory could be NaN).
        let velocity = UnsafeMutablePointer<T>.allocate(capacity: p)
        velocity.initialize(repeating: 0, count: p)
        defer { x.deallocate(); y.deallocate(); grad.deallocate(); velocity.deallocate() }
        let mom = T(recipe.momentum), wd = T(recipe.weightDecay), totalSteps = recipe.steps(examples: n)
        let normalization = BatchNormTraining<T>(shape: shape), scratch = UnsafeMutablePointer<T>.allocate(capacity: data.featureCount)
        defer { scratch.deallocate() }
        var step = 0
        for epoch in 0..<recipe.epochs {
            var rng = CounterRandom(seed: seed, purpose: .shuffle, index: UInt64(epoch))
            let order = rng.permutation(n)
            var start = 0
            while start < n {
                let b = min(bs, n - start)
                let lr = T(recipe.learningRate(atStep: step, of: totalSteps))
                let mark = profile?.start() ?? 0
                data.gather(order[start..<(start + b)], x: x, y: y)
                if let augmentation = recipe.augmentation, let layout = data.image {
                    augmentation.apply(x, globalIndices: order[start..<(start + b)].map { data.globalIndex[$0] }, layout: layout, seed: seed, epoch: epoch, scratch: scratch)
                }
                profile?.record(nil, .gather, since: mark)
                let first = step == 0
                // Each layer's block steps as soon as the backward pass has finished it, while
                // its gradient (and, past the first layer, its weights) are still in cache; the
                // arithmetic of every element is that of one step over all P.
                net.lossAndGradient(x, y, batch: b, workspace: ws, gradient: grad, training: true) { theta, block in
                    let mark = profile?.start() ?? 0, o = block.lowerBound
                    sgdStep(theta: theta + o, grad: grad + o, velocity: velocity + o, count: block.count, lr: lr, momentum: mom, weightDecay: wd, first: first)
                    profile?.record(nil, .optimiser, since: mark)
                }
                let stepMark = profile?.start() ?? 0
                normalization.step(&net, workspace: ws, batch: b, lr: lr, momentum: mom, weightDecay: wd, first: first)
                profile?.record(nil, .optimiser, since: stepMark)
                step += 1
                start += b
                if checkpointSteps.contains(step) { onCheckpoint?(step, net) }
            }
        }
        return net
    }
}

/// Loss, accuracy and measurements of a network on a dataset.
public struct Evaluation: Codable, Sendable {
    public var loss: Double
    /// Classification only.
    public var accuracy: Double?
    /// Regression only: 1 − SSE/SST over all outputs; NaN (JSON `null`) when undefined, i.e.
    /// when the targets are constant (SST = 0, e.g. a single held-out row).
    public var r2: Double?
}

extension Network {
    /// Mean loss (and accuracy or R²) over `data`, in batches of 256. With no rows every
    /// metric is NaN (undefined; written as JSON `null`).
    public func evaluate(on data: Dataset) -> Evaluation {
        // Batches of 256 (a smaller set: one batch of its size, so a wide network's workspace stays small).
        let c = shape.outputCount, tw = data.targetWidth, n = data.count, bs = min(256, max(n, 1))
        let ws = Workspace<T>(shape: shape, capacity: bs)
        let x = UnsafeMutablePointer<T>.allocate(capacity: bs * data.featureCount), y = UnsafeMutablePointer<T>.allocate(capacity: bs * tw)
        defer { x.deallocate(); y.deallocate() }
        var loss = 0.0, correct = 0, sse = 0.0
        let idx = Array(0..<n)
        var start = 0
        while start < n {
            let b = min(bs, n - start)
            data.gather(idx[start..<(start + b)], x: x, y: y)
            loss += lossAndGradient(x, y, batch: b, workspace: ws, gradient: nil) * Double(b)
            for i in 0..<b {
                let out = ws.output + i * c
                if data.task == .classification {
                    var best = 0
                    for k in 1..<c where out[k] > out[best] { best = k }
                    if best == Int(y[i]) { correct += 1 }
                } else {
                    for k in 0..<c { let r = (out[k] - y[i * tw + k]).asDouble; sse += r * r }
                }
            }
            start += b
        }
        if data.task == .classification { return Evaluation(loss: loss / Double(n), accuracy: Double(correct) / Double(n), r2: nil) }
        var mean = [Double](repeating: 0, count: tw), sst = 0.0
        for i in 0..<n { for k in 0..<tw { mean[k] += Double(data.targets[i * tw + k]) / Double(n) } }
        for i in 0..<n { for k in 0..<tw { let d = Double(data.targets[i * tw + k]) - mean[k]; sst += d * d } }
        return Evaluation(loss: loss / Double(n), accuracy: nil, r2: sst > 0 ? 1 - sse / sst : .nan)
    }

    /// The measurement `f_q` of spec §1 for every row of `queries`.
    public func measurements(on queries: Dataset) -> [Double] {
        let c = shape.outputCount, tw = queries.targetWidth, n = queries.count
        let ws = Workspace<T>(shape: shape, capacity: max(n, 1))
        var x = [T](repeating: 0, count: max(n, 1) * queries.featureCount), y = [T](repeating: 0, count: max(n, 1) * tw)
        var dy = [T](repeating: 0, count: c)
        x.withUnsafeMutableBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            queries.gather(Array(0..<n)[...], x: xp.baseAddress!, y: yp.baseAddress!)
            forward(xp.baseAddress!, batch: n, workspace: ws)
        } }
        return (0..<n).map { q in
            y.withUnsafeBufferPointer { yp in dy.withUnsafeMutableBufferPointer { d in
                Measurement.valueAndGradient(loss: loss, y: ws.output + q * c, target: yp.baseAddress! + q * tw, dy: d.baseAddress!, outputs: c)
            } }
        }
    }
}
