import AstraDist
import Foundation
import XCTest

/// `score --method tracin|trak` under `mpirun`: the same scores on 1, 2 and 4 ranks, the
/// files and names they write, the TRAK ensemble rule in `lds`, and the refusals.
final class DistributedTracInTRAKTests: XCTestCase {
    /// digits, a small MLP, 3 epochs of 41 steps: checkpoints at 40, 80, 120 and θ_T (123) appended.
    static let common = ["--epochs", "3", "--query-size", "16", "--hidden", "16"]

    func scores(_ dir: String, _ name: String, seed: Int = 0, suffix: String = "") throws -> [Float] {
        try NPY.read("\(dir)/scores/\(name)/seed-\(seed)\(suffix).npy").values(Float.self)
    }

    func metadata(_ dir: String, _ name: String) throws -> ScoreMetadata {
        try JSONDecoder().decode(ScoreMetadata.self, from: Data(contentsOf: URL(fileURLWithPath: "\(dir)/scores/\(name)/seed-0.json")))
    }

    /// Tier 2 (docs/design.md, "The same on any number of ranks"): TracIn has no reduction
    /// (each score is one rank's sum over checkpoints; only the batch boundaries of the
    /// contraction move), TRAK sums ΦᵀΦ in Double in another order and solves a system whose
    /// condition grows like 1/ε. Asserted ≤ 1e-4 of the largest |score| (measured: TracIn
    /// 0.9–1.6e-7, TRAK 1.2e-6).
    func testScoresAreRankCountInvariant() throws {
        let dir = TestSupport.temporaryDirectory("tracin-trak")
        XCTAssertEqual(try TestSupport.run(["train", "--workdir", dir, "--seeds", "0,1", "--checkpoint-every", "40"] + Self.common).status, 0)
        for method in ["tracin", "trak"] {
            var results: [[Float]] = []
            for ranks in [0, 2, 4] {
                let r = try TestSupport.run(["score", "--workdir", dir, "--method", method, "--seeds", "0", "--name", "\(method)-n\(ranks)"], ranks: ranks, timeout: 240)
                XCTAssertEqual(r.status, 0, r.stderr)
                results.append(try scores(dir, "\(method)-n\(ranks)"))
            }
            let scale = Double(results[0].map(abs).max()!)
            XCTAssertGreaterThan(scale, 0)
            for (k, res) in results.enumerated().dropFirst() {
                let diff = zip(res, results[0]).map { Double(abs($0 - $1)) }.max()!
                print("\(method): rank count \([1, 2, 4][k]) vs 1: max |Δτ| / max |τ| = \(diff / scale)")
                XCTAssertLessThanOrEqual(diff / scale, 1e-4, "\(method) on \([1, 2, 4][k]) ranks")
            }
        }
        let tracin = try metadata(dir, "tracin-n0")
        XCTAssertEqual(tracin.solver["checkpointSteps"], .text("40,80,120,123"), "θ_T is appended when the schedule does not end at T")
        XCTAssertEqual(tracin.settings, [])
        // Default names; an explicit k equal to the default is the default result.
        XCTAssertEqual(try TestSupport.run(["score", "--workdir", dir, "--method", "tracin,trak"], ranks: 2, timeout: 240).status, 0)
        let p = 65 * 16 + 17 * 10
        XCTAssertEqual(try metadata(dir, "trak").solver["projectionDimension"]?.number, Double(p))
        XCTAssertEqual(try TestSupport.run(["score", "--workdir", dir, "--method", "trak", "--projection-dim", "\(p)", "--seeds", "0"]).status, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/scores/trak_projection-dim=\(p)"))
        let small = try TestSupport.run(["score", "--workdir", dir, "--method", "trak", "--projection-dim", "64", "--seeds", "0"])
        XCTAssertEqual(small.status, 0, small.stderr)
        XCTAssertEqual(try NPY.read(dir + "/scores/trak_projection-dim=64/seed-0.kernel.npy").shape, [16, 1297])
        // The ensemble rule: mean kernel × mean weights, not the mean of the two models' scores.
        let k0 = try scores(dir, "trak", seed: 0, suffix: ".kernel"), k1 = try scores(dir, "trak", seed: 1, suffix: ".kernel")
        let w0 = try scores(dir, "trak", seed: 0, suffix: ".weights"), w1 = try scores(dir, "trak", seed: 1, suffix: ".weights")
        XCTAssertEqual(try scores(dir, "trak", seed: 0), TRAK.weighted(kernel: k0, weights: w0))
        let setup = try TestSupport.run(["groundtruth", "--workdir", dir, "--masks", "4", "--repeats", "1"], ranks: 2, timeout: 240)
        XCTAssertEqual(setup.status, 0, setup.stderr)
        let lds = try TestSupport.run(["lds", "--workdir", dir, "--method", "trak,tracin", "--ensemble"])
        XCTAssertEqual(lds.status, 0, lds.stderr)
        let ctx = try RunContext(comm: SingleProcessCommunicator(), workspace: WorkDirectory(dir), config: try XCTUnwrap(WorkDirectory(dir).loadConfig()),
                             data: try TestSupport.prepared(try XCTUnwrap(WorkDirectory(dir).loadConfig())), threads: 1)
        let ensemble = try TRAKStage.ensembleScores(ctx, name: "trak", seeds: [0, 1])
        let n = w0.count
        for i in stride(from: 0, to: ensemble.count, by: 97) {
            XCTAssertEqual(ensemble[i], (k0[i] + k1[i]) / 2 * (w0[i % n] + w1[i % n]) / 2, accuracy: 1e-5 * abs(ensemble[i]) + 1e-12)
        }
    }

    /// Refusals, each one `error:` line and nothing written: tracin without checkpoints names
    /// --checkpoint-every; flags the methods do not use.
    func testRefusals() throws {
        let dir = TestSupport.temporaryDirectory("tracin-none")
        XCTAssertEqual(try TestSupport.run(["train", "--workdir", dir] + Self.common).status, 0)
        // A model trained without checkpoints (workspaces made before the default schedule).
        let modelJSON = dir + "/models/seed-0/model.json"
        var model = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: modelJSON))) as? [String: Any])
        model["checkpoints"] = [Int]()
        try JSONSerialization.data(withJSONObject: model, options: [.sortedKeys]).write(to: URL(fileURLWithPath: modelJSON))
        let r = try TestSupport.run(["score", "--workdir", dir, "--method", "tracin"], ranks: 2)
        XCTAssertNotEqual(r.status, 0)
        let errors = r.stderr.split(separator: "\n").filter { $0.hasPrefix("error:") }
        XCTAssertEqual(errors.count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("--checkpoint-every K, e.g. K = 8"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/scores/tracin/seed-0.npy"))
        for (flags, text) in [(["--method", "trak", "--damping", "0.1"], "--damping applies to the influence methods"),
                              (["--method", "ekfac", "--projection-dim", "8"], "--projection-dim applies to trak"),
                              (["--method", "tracin", "--query-groups", "2"], "--query-groups applies"),
                              (["--method", "trak", "--projection-dim", "0"], "--projection-dim")] {
            let e = try TestSupport.run(["score", "--workdir", dir] + flags)
            XCTAssertNotEqual(e.status, 0, flags.joined(separator: " "))
            XCTAssertTrue(e.stderr.contains(text), e.stderr)
        }
    }
}
