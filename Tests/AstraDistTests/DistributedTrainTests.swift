import AstraDist
import Foundation
import XCTest

/// The built `astra-dist` under `mpirun` (the test process never initialises MPI).
final class DistributedTrainTests: XCTestCase {
    /// Seeds trained under `mpirun -n 2` are bit-identical to the same seeds trained alone.
    /// Tier 1 (docs/design.md, "The same on any number of ranks"): bytes compared with `==`.
    func testTrainingIsRankCountInvariant() throws {
        let alone = TestSupport.temporaryDirectory("train1"), two = TestSupport.temporaryDirectory("train2")
        let r1 = try TestSupport.run(["train", "--workdir", alone, "--seeds", "0,1", "--epochs", "3"])
        XCTAssertEqual(r1.status, 0, r1.stderr)
        let r2 = try TestSupport.run(["train", "--workdir", two, "--seeds", "0,1", "--epochs", "3"], ranks: 2)
        XCTAssertEqual(r2.status, 0, r2.stderr)
        for s in 0...1 { for l in 0..<3 {
            let a = FileManager.default.contents(atPath: "\(alone)/models/seed-\(s)/layer-\(l).npy")
            XCTAssertNotNil(a)
            XCTAssertEqual(a, FileManager.default.contents(atPath: "\(two)/models/seed-\(s)/layer-\(l).npy"), "seed \(s) layer \(l)")
        } }
    }

    /// Bad input: one clear line on stderr, non-zero exit, nothing half-written. No tier
    /// (one process; failure behaviour, not results).
    func testBadInputFailsClearly() throws {
        let dir = TestSupport.temporaryDirectory("bad")
        let cases: [([String], String)] = [
            (["train", "--workdir", dir, "--bogus", "1"], "unknown option --bogus"),
            (["train", "--workdir", dir, "--lr", "abc"], "--lr expects a number"),
            (["train", "--workdir", dir, "--setting", "nope"], "unknown setting 'nope'"),
            (["train", "--workdir", dir, "--data", "csv:/nonexistent.csv", "--setting", "csv", "--target", "y"], "/nonexistent.csv"),
            (["train", "--workdir", dir, "--setting", "mnist", "--data", "idx:/nonexistent"], "/nonexistent"),
            (["train"], "--workdir DIR is required"),
            (["frobnicate"], "unknown command"),
        ]
        for (args, expected) in cases {
            let r = try TestSupport.run(args, timeout: 60)
            XCTAssertNotEqual(r.status, 0, args.joined(separator: " "))
            let lines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("error:") }
            XCTAssertEqual(lines.count, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains(expected), "expected '\(expected)' in: \(r.stderr)")
        }
        // A different configuration on an existing workspace is refused.
        XCTAssertEqual(try TestSupport.run(["train", "--workdir", dir, "--epochs", "1"]).status, 0)
        let r = try TestSupport.run(["train", "--workdir", dir, "--epochs", "2"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("recipe.epochs 1, this request 2 (--epochs)"), r.stderr)
        // A corrupted model is refused with a message naming the file.
        let layer = dir + "/models/seed-0/layer-1.npy"
        var bytes = try XCTUnwrap(FileManager.default.contents(atPath: layer))
        bytes.removeLast(10)
        try bytes.write(to: URL(fileURLWithPath: layer))
        XCTAssertThrowsError(try ModelStore.load(from: dir + "/models/seed-0")) { e in
            XCTAssertTrue("\(e)".contains("layer-1.npy"), "\(e)")
        }
    }

    /// Help lists the commands and a command's flags. No tier (one process, no results).
    func testHelpListsEveryCommand() throws {
        let r = try TestSupport.run(["--help"], timeout: 60)
        XCTAssertEqual(r.status, 0)
        for c in ["train"] { XCTAssertTrue(r.stdout.contains(c)) }
        let t = try TestSupport.run(["train", "--help"], timeout: 60)
        XCTAssertTrue(t.stdout.contains("--workdir") && t.stdout.contains("--seeds"))
    }
}
