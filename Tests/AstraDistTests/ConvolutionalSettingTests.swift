import AstraDist
import Foundation
import XCTest

/// The convolutional setting (`mnist-cnn`) through the built executable at tiny sizes: every
/// command runs on it, and fit and EK-FAC scores do not depend on the rank count.
final class ConvolutionalSettingTests: XCTestCase {
    /// The configuration (given to `train`, which creates the workspace) and the sweep size (`groundtruth`).
    static let tiny = ["--setting", "mnist-cnn", "--train-size", "48", "--query-size", "3", "--epochs", "1", "--batch-size", "16", "--seeds", "0"]
    static let sweep = ["--masks", "4", "--repeats", "1"]

    func testEveryCommandRunsOnTheCNN() throws {
        let dir = TestSupport.temporaryDirectory("cnn-pipeline")
        for args in [["train"], ["fit"], ["score", "--method", "ekfac"], ["score", "--method", "kfac"], ["score", "--method", "identity"],
                     ["score", "--method", "astra", "--iterations", "4"], ["score", "--method", "sni", "--iterations", "4"], ["groundtruth"], ["lds"]] {
            let extra = args == ["train"] ? Self.tiny : args == ["groundtruth"] ? Self.sweep : []
            let r = try TestSupport.run(args + ["--workdir", dir] + extra, ranks: 1, timeout: 300)
            XCTAssertEqual(r.status, 0, "\(args): \(r.stderr)")
        }
        let model = try String(contentsOfFile: dir + "/models/seed-0/model.json", encoding: .utf8)
        XCTAssertTrue(model.contains("\"conv2d\"") && model.contains("\"maxpool2d\"") && model.contains("\"flatten\""), model)
        // Results named by the naming rule: the 4-iteration solves are not the methods' defaults.
        for method in ["ekfac", "kfac", "identity", "astra_iterations=4", "sni_iterations=4"] {
            let scores = try NPY.read("\(dir)/scores/\(method)/seed-0.npy")
            XCTAssertEqual(scores.shape, [3, 48], method)
            XCTAssertTrue(scores.doubles.allSatisfy(\.isFinite) && scores.doubles.contains { $0 != 0 }, method)
        }
    }

    /// Tier 2 (docs/design.md, "The same on any number of ranks"): Λ ≤ 1e-5 of the largest
    /// |Λ| (double sums of float32 rotations of batches whose sizes change with the shards:
    /// 1.5e-6 measured on an AMD EPYC), EK-FAC scores ≤ 1e-4 of the largest |score| (float32
    /// scores from those factors).
    func testCNNFitAndScoresAreRankCountInvariant() throws {
        let base = TestSupport.temporaryDirectory("cnn-ranks")
        XCTAssertEqual(try TestSupport.run(["train", "--workdir", base] + Self.tiny, timeout: 300).status, 0)
        var lambdas: [[[Double]]] = [], scores: [[Double]] = []
        for ranks in [1, 2] {
            let dir = TestSupport.temporaryDirectory("cnn-ranks\(ranks)")
            try FileManager.default.copyItem(atPath: base + "/config.json", toPath: dir + "/config.json")
            try FileManager.default.copyItem(atPath: base + "/models", toPath: dir + "/models")
            for args in [["fit"], ["score", "--method", "ekfac"]] {
                let r = try TestSupport.run(args + ["--workdir", dir], ranks: ranks, timeout: 300)
                XCTAssertEqual(r.status, 0, r.stderr)
            }
            lambdas.append(try (0..<3).map { try NPY.read("\(dir)/factors/seed-0/layer-\($0)-Lambda.npy").doubles })
            scores.append(try NPY.read("\(dir)/scores/ekfac/seed-0.npy").doubles)
        }
        for l in 0..<3 {
            let scale = lambdas[0][l].map(abs).max()!
            XCTAssertLessThanOrEqual(zip(lambdas[0][l], lambdas[1][l]).map { abs($0 - $1) }.max()! / scale, 1e-5, "layer \(l)")
        }
        let scale = scores[0].map(abs).max()!
        XCTAssertGreaterThan(scale, 0)
        XCTAssertLessThanOrEqual(zip(scores[0], scores[1]).map { abs($0 - $1) }.max()! / scale, 1e-4)
    }
}
