@testable import AstraDist
import Foundation
import XCTest

/// `bench train`'s profile (`OperationProfile`): it covers every operation of the network,
/// its FLOPs are the layers' T·O·K counts, and recording it changes no number.
final class BenchProfileTests: XCTestCase {
    func testProfiledTrainingIsIdenticalAndCoversEveryPart() {
        let conv = Conv2dLayer(channels: 1, height: 6, width: 6, filters: 2, kernel: 3, padding: 1)
        let shape = NetworkShape(operations: [
            .layer(.conv2d(conv)), .pointwise(.relu), .spatial(.maxPool(MaxPool2d(channels: 2, height: 6, width: 6, kernel: 2, stride: 2))),
            .spatial(.flatten(channels: 2, height: 3, width: 3)), .linear(inputs: 18, outputs: 3),
        ])
        let data = TestSupport.synthetic(task: .classification, n: 40, d: 36, c: 3, seed: 7)
        let recipe = TrainingRecipe(learningRate: 0.05, momentum: 0.9, weightDecay: 1e-3, batchSize: 16, epochs: 2)
        let plain = Trainer<Float>(shape: shape, recipe: recipe).train(on: data, seed: 3)
        var profiled = Trainer<Float>(shape: shape, recipe: recipe)
        profiled.profile = OperationProfile()
        let net = profiled.train(on: data, seed: 3)
        XCTAssertEqual(net.parameters, plain.parameters, "recording the profile must not change the model")
        let rows = Benchmark.profileRows(profiled.profile!, shape: shape, examples: 80, peak: 100)
        // Every operation forward, every operation but the first layer backward (its input is
        // the data, so it has only a weight gradient), and gather, loss, optimiser.
        for k in shape.operations.indices {
            XCTAssertTrue(rows.contains { $0.operation == Benchmark.operationName(shape.operations[k]) && $0.pass == "forward" }, "operation \(k) forward")
        }
        let passes = Set(rows.map { "\($0.operation)/\($0.pass)" })
        XCTAssertTrue(passes.isSuperset(of: ["conv2d 1→2 3×3/rows", "conv2d 1→2 3×3/weightGradient", "linear 18→3/inputGradient",
                                             "maxpool2d/backward", "step/gather", "step/loss", "step/optimiser"]), "\(passes)")
        XCTAssertFalse(passes.contains("conv2d 1→2 3×3/inputGradient"))
        XCTAssertEqual(rows.map(\.share).reduce(0, +), 1, accuracy: 1e-9)
        // FLOPs of the conv forward: 2·N·T·O·K = 2·80·36·2·10.
        XCTAssertEqual(rows.first { $0.operation == "conv2d 1→2 3×3" && $0.pass == "forward" }?.gflop ?? 0, 2 * 80 * 36 * 2 * 10 / 1e9, accuracy: 1e-15)
        XCTAssertEqual(Benchmark.trainingFlops(shape: shape, examples: 40, epochs: 2), 80 * (4 * 720 + 6 * 57), accuracy: 1e-9)
    }
}
