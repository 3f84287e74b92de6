import AstraDist
import Foundation
import XCTest

/// `bench score --method source,astra-source,trak,tracin` (issue 17, "Speed") through the
/// binary on two ranks: every part timed in wall and CPU seconds, the targets' ratios made of
/// those parts, segment fits timed although their factors exist, nothing written under scores/.
final class BenchScoreTests: XCTestCase {
    func testSourceTRAKAndTracInPartsAndTargets() throws {
        let dir = TestSupport.temporaryDirectory("bench-score")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // digits, a small MLP, 3 epochs of 41 steps: the default schedule's 15 checkpoints.
        for args in [["train", "--epochs", "3", "--query-size", "16", "--hidden", "16"], ["fit"], ["score", "--method", "source"]] {
            let r = try TestSupport.run([args[0], "--workdir", dir] + args.dropFirst())
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        let scoresBefore = try FileManager.default.subpathsOfDirectory(atPath: dir + "/scores").sorted()
        let out = dir + "/bench.json"
        let r = try TestSupport.run(["bench", "score", "--workdir", dir, "--method", "source,astra-source,trak,tracin", "--astra-iterations", "20",
                                     "--out", out], ranks: 2, timeout: 600)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try FileManager.default.subpathsOfDirectory(atPath: dir + "/scores").sorted(), scoresBefore, "bench wrote under scores/")
        let result = try JSONDecoder().decode(Benchmark.ScoreResult.self, from: Data(contentsOf: URL(fileURLWithPath: out)))
        // The binary ran the best kernels OpenBLAS has for this CPU (BLASCore: not its SSE3 fallback).
        XCTAssertNil(BLASCore.replacement(core: result.blasCore, cpuFlags: BLASCore.cpuFlags()), "bench ran OpenBLAS's \(result.blasCore) kernels")
        func part(_ name: String) throws -> Benchmark.ScorePart {
            try XCTUnwrap(result.parts.first { $0.name.hasPrefix(name) }, "no part \(name) in \(result.parts.map(\.name))")
        }
        let names = ["query gradients", "solve ekfac", "solve astra", "contraction", "fit of the final model",
                     "source: fit of segment 1", "source: fit of segment 2", "source: fit of segment 3",
                     "source: scoring", "astra-source: scoring", "  of which the astra solve of segment 3 (20 iterations)",
                     "trak: features", "trak: ΦᵀΦ", "trak: Cholesky", "trak: kernel", "trak: total", "tracin: loading",
                     "tracin: contraction over"]
        for name in names {
            let p = try part(name)
            XCTAssertGreaterThan(p.seconds, 0, name)
            XCTAssertGreaterThan(try XCTUnwrap(p.cpuSeconds, name), 0, name)
        }
        // The ratios are quotients of the parts: segment fits over the final fit, each astra-source segment over astra.
        let fits = try (1...3).map { try part("source: fit of segment \($0)").cpuSeconds! }.reduce(0, +)
        let byName = Dictionary(uniqueKeysWithValues: result.targets.map { ($0.name, $0) })
        XCTAssertEqual(result.targets.count, 6, "\(byName.keys.sorted())")
        let fitTarget = try XCTUnwrap(byName["source: 3 segment fits / one fit"])
        XCTAssertEqual(fitTarget.cpu, fits / (try part("fit of the final model").cpuSeconds!), accuracy: 1e-9)
        XCTAssertEqual(fitTarget.limit, 3)
        let segment2 = try XCTUnwrap(byName["astra-source: segment 2 solve / one astra solve of the final model"])
        XCTAssertEqual(segment2.cpu, (try part("  of which the astra solve of segment 2").cpuSeconds!) / (try part("solve astra").cpuSeconds!), accuracy: 1e-9)
        XCTAssertEqual(segment2.limit, 1.1)
        let scoring = try XCTUnwrap(byName.first { $0.key.hasPrefix("source: scoring") }?.value)
        XCTAssertEqual(scoring.limit, 3.5)
        let trak = try XCTUnwrap(byName.first { $0.key.hasPrefix("trak:") }?.value)
        XCTAssertEqual(trak.unit, "seconds")
        XCTAssertEqual(trak.cpu, try part("trak: total").cpuSeconds!, accuracy: 1e-12)
        for t in result.targets {
            XCTAssertTrue(t.cpu > 0 && t.cpu.isFinite && t.wall > 0 && t.wall.isFinite, "\(t)")
            XCTAssertEqual(t.met, t.cpu <= t.limit, t.name)
        }
    }
}
