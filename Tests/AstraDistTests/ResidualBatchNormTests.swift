@testable import AstraDist
import Foundation
import XCTest

/// The residual add and BatchNorm2d against their definitions (the conformance checks of
/// `OperationConformanceTests` on networks holding them), batch norm's training mode against
/// finite differences and PyTorch's running-statistics formula, their codings and the
/// one-cycle schedule.
final class ResidualBatchNormTests: XCTestCase {
    typealias C = OperationConformanceTests

    /// A conv–BN–GELU pair inside a residual, max-pool, Flatten, a linear head: value 3 (a
    /// skip source) shares its buffer with the BN output before it in the in-place walk.
    static func convolutionalShape() -> NetworkShape {
        NetworkShape(operations: [
            .layer(.conv2d(Conv2dLayer(channels: 1, height: 4, width: 4, filters: 2, kernel: 3, padding: 1, bias: false))),
            .batchNorm(BatchNorm2d(channels: 2, height: 4, width: 4)), .pointwise(.gelu),
            .layer(.conv2d(Conv2dLayer(channels: 2, height: 4, width: 4, filters: 2, kernel: 3, padding: 1))),
            .batchNorm(BatchNorm2d(channels: 2, height: 4, width: 4)), .pointwise(.gelu),
            .residual(from: 3),
            .spatial(.maxPool(MaxPool2d(channels: 2, height: 4, width: 4, kernel: 2, stride: 2))),
            .spatial(.flatten(channels: 2, height: 2, width: 2)), .linear(inputs: 8, outputs: 3),
        ])
    }

    /// Non-trivial frozen state: γ, β, running mean and variance (positive) drawn at random.
    static func withRandomNormalization(_ net: Network<Double>, seed: UInt64) -> Network<Double> {
        var out = net
        let r = C.random(net.shape.normalizationCount, seed: seed)
        for (j, n) in net.shape.normalizations.enumerated() {
            let c = n.channels, o = net.shape.normalizationOffset(j), a = net.shape.affineCount
            for k in 0..<c {
                out.normalization[o + k] = 1 + 0.3 * r[o + k]; out.normalization[o + c + k] = 0.2 * r[o + c + k]
                out.normalization[a + o + k] = 0.1 * r[a + o + k]; out.normalization[a + o + c + k] = 0.5 + abs(r[a + o + c + k])
            }
        }
        return out
    }

    /// Frozen batch norm and the residual in whole networks: the gradient against differences
    /// of the loss, GGN products (in-place tangents) against the dense GGN, the exact Hessian
    /// (the R-operator walk) against differences of the gradient.
    func testFrozenNetworksConform() {
        let data = TestSupport.synthetic(task: .classification, n: 9, d: 16, c: 3, seed: 5)
        let net = Self.withRandomNormalization(Network<Double>(shape: Self.convolutionalShape(), loss: .crossEntropy, seed: 6), seed: 7)
        C.checkNetwork(net, data, "conv BN residual", hessianTolerance: 1e-6)
        // A skip whose source is the input of a pointwise operation (its in-place output must
        // not overwrite the source), on an MLP.
        let mlp = NetworkShape(operations: [.linear(inputs: 4, outputs: 5), .pointwise(.gelu), .pointwise(.gelu), .residual(from: 2), .linear(inputs: 5, outputs: 3)])
        XCTAssertNotEqual(TangentBuffers<Double>(shape: mlp, batch: 1, queries: 1, inPlace: true).values[3],
                          TangentBuffers<Double>(shape: mlp, batch: 1, queries: 1, inPlace: true).values[2])
        let regression = TestSupport.synthetic(task: .regression, n: 11, d: 4, c: 3, seed: 8)
        C.checkNetwork(Network<Double>(shape: mlp, loss: .mse, seed: 9), regression, "MLP residual", hessianTolerance: 1e-7)
        // The frozen map is PyTorch's eval-mode formula γ (x − mean)/√(var + ε) + β.
        let ws = Workspace<Double>(shape: net.shape, capacity: data.count)
        var x = [Double](repeating: 0, count: data.count * 16), y = [Double](repeating: 0, count: data.count)
        x.withUnsafeMutableBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            data.gather(Array(0..<data.count)[...], x: xp.baseAddress!, y: yp.baseAddress!)
            net.forward(xp.baseAddress!, batch: data.count, workspace: ws)
        } }
        var worst = 0.0
        for i in 0..<(data.count * 16 * 2) {
            let c = i % 2, s = net.normalization
            let expected = s[c] * (ws.values[1][i] - s[4 * 2 + c]) / (s[4 * 2 + 2 + c] + 1e-5).squareRoot() + s[2 + c]
            worst = max(worst, abs(ws.values[2][i] - expected))
        }
        XCTAssertLessThan(worst, 1e-12, "frozen batch norm formula")
    }

    /// Training mode: the mean loss over the batch (batch statistics) differentiated by
    /// central differences in the parameters and in every γ, β, against `lossAndGradient`.
    func testTrainingModeBackward() {
        let data = TestSupport.synthetic(task: .classification, n: 6, d: 16, c: 3, seed: 11)
        let net = Self.withRandomNormalization(Network<Double>(shape: Self.convolutionalShape(), loss: .crossEntropy, seed: 12), seed: 13)
        let b = data.count, p = net.shape.parameterCount, a = net.shape.affineCount
        let ws = Workspace<Double>(shape: net.shape, capacity: b)
        var x = [Double](repeating: 0, count: b * 16), y = [Double](repeating: 0, count: b)
        x.withUnsafeMutableBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in data.gather(Array(0..<b)[...], x: xp.baseAddress!, y: yp.baseAddress!) } }
        func loss(_ n: Network<Double>, gradient: UnsafeMutablePointer<Double>? = nil) -> Double {
            x.withUnsafeBufferPointer { xp in y.withUnsafeBufferPointer { yp in
                n.lossAndGradient(xp.baseAddress!, yp.baseAddress!, batch: b, workspace: ws, gradient: gradient, training: true)
            } }
        }
        var grad = [Double](repeating: 0, count: p)
        _ = grad.withUnsafeMutableBufferPointer { loss(net, gradient: $0.baseAddress!) }
        let affineGrad = Array(UnsafeBufferPointer(start: ws.normalizationGradient, count: a))
        let fd = (0..<p).map { k -> Double in
            var plus = net, minus = net
            plus.parameters[k] += C.h; minus.parameters[k] -= C.h
            return (loss(plus) - loss(minus)) / (2 * C.h)
        }
        let fdAffine = (0..<a).map { k -> Double in
            var plus = net, minus = net
            plus.normalization[k] += C.h; minus.normalization[k] -= C.h
            return (loss(plus) - loss(minus)) / (2 * C.h)
        }
        XCTAssertLessThan(C.maxDiff(grad, fd) / C.scale(fd), 1e-6, "training-mode parameter gradient")
        XCTAssertLessThan(C.maxDiff(affineGrad, fdAffine) / C.scale(fdAffine), 1e-6, "γ, β gradient")
        // Batch statistics differ from the frozen map: the two modes give different losses.
        let frozen = x.withUnsafeBufferPointer { xp in y.withUnsafeBufferPointer { yp in
            net.lossAndGradient(xp.baseAddress!, yp.baseAddress!, batch: b, workspace: ws, gradient: nil)
        } }
        XCTAssertGreaterThan(abs(frozen - loss(net)), 1e-3)
    }

    /// One training step (the whole set as one batch, so the batch's statistics are known):
    /// running statistics move as PyTorch's `(1 − 0.1)·r + 0.1·stat` with the unbiased
    /// variance, and γ, β take the recipe's SGD step (first step: θ − lr·(g + wd·θ)).
    func testTrainStepUpdatesRunningStatistics() {
        let data = TestSupport.synthetic(task: .classification, n: 5, d: 16, c: 3, seed: 14)
        let shape = Self.convolutionalShape(), recipe = TrainingRecipe(learningRate: 0.1, momentum: 0.9, weightDecay: 0.01, batchSize: 8, epochs: 1)
        let trained = Trainer<Double>(shape: shape, recipe: recipe).train(on: data, seed: 3)
        let initial = Network<Double>(shape: shape, loss: .crossEntropy, seed: 3), n = data.count
        // The batch norm's input (the first conv's output) over the batch, and the γ, β gradient.
        let ws = Workspace<Double>(shape: shape, capacity: n)
        var x = [Double](repeating: 0, count: n * 16), y = [Double](repeating: 0, count: n), grad = [Double](repeating: 0, count: shape.parameterCount)
        x.withUnsafeMutableBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in grad.withUnsafeMutableBufferPointer { gp in
            data.gather(Array(0..<n)[...], x: xp.baseAddress!, y: yp.baseAddress!)
            _ = initial.lossAndGradient(xp.baseAddress!, yp.baseAddress!, batch: n, workspace: ws, gradient: gp.baseAddress!, training: true)
        } } }
        let m = n * 16, a = shape.affineCount
        for c in 0..<2 {
            let v = (0..<m).map { ws.values[1][$0 * 2 + c] }
            let mean = v.reduce(0, +) / Double(m), unbiased = v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(m - 1)
            XCTAssertEqual(trained.normalization[a + c], 0.1 * mean, accuracy: 1e-12, "running mean \(c)")
            XCTAssertEqual(trained.normalization[a + 2 + c], 0.9 + 0.1 * unbiased, accuracy: 1e-12, "running var \(c)")
        }
        for k in 0..<a {
            XCTAssertEqual(trained.normalization[k], initial.normalization[k] - 0.1 * (ws.normalizationGradient[k] + 0.01 * initial.normalization[k]),
                           accuracy: 1e-12, "γ/β \(k)")
        }
    }

    /// The codings: the operation list round-trips, bad residuals are refused with a reason,
    /// a model with batch norm saves and loads its state (hash over it), and the import reads
    /// PyTorch's state_dict names.
    func testCodingsAndModelFiles() throws {
        let shape = Self.convolutionalShape()
        let json = String(decoding: try JSONEncoder().encode(shape), as: UTF8.self)
        XCTAssertTrue(json.contains("\"op\":\"residual\"") && json.contains("\"from\":3") && json.contains("\"op\":\"batchnorm2d\""), json)
        XCTAssertEqual(try JSONDecoder().decode(NetworkShape.self, from: Data(json.utf8)), shape)
        let linear = NetworkOperation.linear(inputs: 3, outputs: 3)
        XCTAssertTrue(NetworkShape.problem(with: [linear, .residual(from: 1)])?.contains("1 ≤ from < 1") ?? false)
        XCTAssertTrue(NetworkShape.problem(with: [linear, .pointwise(.relu), .linear(inputs: 3, outputs: 2), .residual(from: 1)])?.contains("width 3") ?? false)
        XCTAssertTrue(NetworkShape.problem(with: [linear, .batchNorm(BatchNorm2d(channels: 2, height: 1, width: 1))])?.contains("batchnorm2d") ?? false)

        var net = Network<Float>(shape: shape, loss: .crossEntropy, seed: 1)
        for k in net.normalization.indices { net.normalization[k] += Float(k) * 0.01 }
        XCTAssertNotEqual(net.contentHash, ContentHash.of(net.parameters))
        XCTAssertEqual(Network<Float>(shape: NetworkShape(widths: [3, 2]), loss: .mse, seed: 1).contentHash,
                       ContentHash.of(Network<Float>(shape: NetworkShape(widths: [3, 2]), loss: .mse, seed: 1).parameters), "no batch norm: the earlier hash")
        let dir = TestSupport.temporaryDirectory("bnmodel")
        let description = ModelDescription(widths: shape.widths, operations: shape.operations, loss: .crossEntropy, seed: 0, steps: 1, configHash: "c", dataHash: "d",
                                           parametersHash: net.contentHash, checkpoints: [], learningRate: 0.1)
        try ModelStore.save(net, description: description, to: dir)
        let (loaded, _) = try ModelStore.load(from: dir)
        XCTAssertEqual(loaded.normalization, net.normalization)
        XCTAssertEqual(try NPY.read(dir + "/batchnorm-1.npy", hint: "").values(Float.self), net.batchNormRows(1))
        try NPY.write(Array(net.batchNormRows(1).reversed()), shape: [4, 2], to: dir + "/batchnorm-1.npy")
        XCTAssertThrowsError(try ModelStore.load(from: dir)) { XCTAssertTrue("\($0)".contains("hash"), "\($0)") }
        try NPY.write([Float](repeating: 1, count: 6), shape: [3, 2], to: dir + "/batchnorm-1.npy")
        XCTAssertThrowsError(try ModelStore.load(from: dir)) { XCTAssertTrue("\($0)".contains("batchnorm-1.npy") && "\($0)".contains("[4, 2]"), "\($0)") }

        // Import: bias-free conv without a bias tensor, batch norm's four tensors, num_batches_tracked ignored.
        let arch = ArchitectureFile(operations: shape.operations, loss: .crossEntropy, prefixes: shape.operations.indices.map { k in
            switch shape.operations[k] { case .layer, .batchNorm: "m\(k)"; default: nil }
        })
        var tensors: [String: NamedTensor] = [:]
        func put(_ name: String, _ dims: [Int], _ values: [Float]) { tensors[name] = NamedTensor(dtype: "F32", shape: dims, values: values.map(Double.init)) }
        let w0 = Array(net.parameters[0..<18]), rest = net.shape.offset(1)
        put("m0.weight", [2, 1, 3, 3], w0)
        let l1 = shape.layer(1), p1 = Array(net.parameters[rest..<net.shape.offset(2)])
        put("m3.weight", [2, 2, 3, 3], (0..<2).flatMap { r in p1[(r * l1.augmented)..<(r * l1.augmented + 18)] })
        put("m3.bias", [2], (0..<2).map { p1[$0 * l1.augmented + 18] })
        let l2 = shape.layer(2), p2 = Array(net.parameters[net.shape.offset(2)...])
        put("m9.weight", [3, 8], (0..<3).flatMap { r in p2[(r * l2.augmented)..<(r * l2.augmented + 8)] })
        put("m9.bias", [3], (0..<3).map { p2[$0 * l2.augmented + 8] })
        for (j, k) in [(0, 1), (1, 4)] {
            let rows = net.batchNormRows(j)
            for (i, name) in ["weight", "bias", "running_mean", "running_var"].enumerated() { put("m\(k).\(name)", [2], Array(rows[(2 * i)..<(2 * i + 2)])) }
            tensors["m\(k).num_batches_tracked"] = NamedTensor(dtype: "I64", shape: [], values: nil)
        }
        switch arch.parameters(from: tensors) {
        case .success(let w): XCTAssertEqual(w.parameters, net.parameters); XCTAssertEqual(w.normalization, net.normalization)
        case .failure(let m): XCTFail("\(m.lines)")
        }
        tensors["m4.running_var"] = nil
        tensors["m0.bias"] = NamedTensor(dtype: "F32", shape: [2], values: [0, 0])
        guard case .failure(let m) = arch.parameters(from: tensors) else { return XCTFail("a missing running_var was accepted") }
        XCTAssertTrue(m.lines.contains { $0.contains("'m4.running_var' is missing") } && m.lines.contains { $0.contains("'m0.bias'") && $0.contains("not used") }, "\(m.lines)")
    }

    /// One cycle: kronfluence's `np.interp(step, [0, peak, total], [0, 1, 0])·lr`; constant
    /// without it (and absent from the configuration, so earlier hashes hold).
    func testOneCycleSchedule() throws {
        var recipe = TrainingRecipe(learningRate: 0.4, momentum: 0.9, weightDecay: 1e-3, batchSize: 512, epochs: 25)
        XCTAssertEqual((0..<10).map { recipe.learningRate(atStep: $0, of: 10) }, [Double](repeating: 0.4, count: 10))
        XCTAssertFalse(String(decoding: try JSONEncoder().encode(recipe), as: UTF8.self).contains("oneCycle"))
        recipe.oneCyclePeak = 0.2
        let total = 150  // 25 epochs of 6 batches: the peak at step 30 (epoch 5)
        for (step, expected) in [(0, 0.0), (15, 0.2), (30, 0.4), (90, 0.2), (149, 0.4 / 120)] {
            XCTAssertEqual(recipe.learningRate(atStep: step, of: total), expected, accuracy: 1e-15, "step \(step)")
        }
        XCTAssertEqual(recipe.learningRate(afterSteps: 31, examples: 3072), 0.4, accuracy: 1e-15)
        XCTAssertEqual(recipe.learningRate(afterSteps: 0, examples: 3072), 0.4)
        // The schedule changes training; the MLP presets keep their configuration hash.
        let data = TestSupport.synthetic(task: .classification, n: 12, d: 3, c: 2, seed: 1)
        var constant = recipe; constant.oneCyclePeak = nil; constant.batchSize = 4; constant.epochs = 2
        var cycled = constant; cycled.oneCyclePeak = 0.5
        let shape = NetworkShape(widths: [3, 4, 2])
        XCTAssertNotEqual(Trainer<Float>(shape: shape, recipe: constant).train(on: data, seed: 0).parameters,
                          Trainer<Float>(shape: shape, recipe: cycled).train(on: data, seed: 0).parameters)
        let roots = DataRoots(digits: "d", concrete: "c", mnist: "m", fashionMNIST: "f")
        for name in ["digits", "mnist", "mnist-cnn"] {
            XCTAssertFalse(try Presets.config(name, dataRoot: roots).canonicalJSON().contains("oneCyclePeak"), name)
        }
        let cifar = try Presets.config("cifar10", dataRoot: roots)
        XCTAssertEqual(cifar.recipe.oneCyclePeak, 0.2)
        XCTAssertThrowsError(try { var c = cifar; c.recipe.oneCyclePeak = 1.5; try c.validate() }()) { XCTAssertTrue("\($0)".contains("recipe.oneCyclePeak"), "\($0)") }
    }
}
