import AstraDist
import Foundation
import XCTest

/// An error on any rank under `mpirun -n 2` ends every rank, quickly, with a non-zero exit and
/// one `error:` line carrying the failing rank's own message (docs/commands.md, "How failures
/// /// look"). No tier of docs/design.md's "The same on any number of ranks": these tests check
/// failure behaviour, not results. The bound is 30 s where a hang is unbounded (each run's own
/// time limit, 120 s, is larger, so a hang shows as a failed bound, not a killed suite).
final class FailureTests: XCTestCase {
    /// The one bound every failing job must end within (seconds, from mpirun's start).
    static let bound = 30.0

    /// Runs `args` (with `ranks`), asserts a non-zero exit within `bound`, exactly one `error:`
    /// line and that it contains `expected`; returns that line.
    @discardableResult
    func assertEndsWithOneError(_ args: [String], ranks: Int = 2, expected: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let start = Date()
        let r = try TestSupport.run(args, ranks: ranks, timeout: 120)
        let seconds = Date().timeIntervalSince(start)
        XCTAssertNotEqual(r.status, 0, r.stderr, file: file, line: line)
        XCTAssertLessThan(seconds, Self.bound, "took \(seconds) s: \(r.stderr)", file: file, line: line)
        let errors = r.stderr.split(separator: "\n").filter { $0.hasPrefix("error:") }
        XCTAssertEqual(errors.count, 1, r.stderr, file: file, line: line)
        let first = errors.first.map(String.init) ?? ""
        XCTAssertTrue(first.contains(expected), "expected '\(expected)' in: \(r.stderr)", file: file, line: line)
        XCTAssertFalse(r.stderr.contains("see its message") || r.stderr.contains("another rank"), r.stderr, file: file, line: line)
        // mpirun's own notice, if any, comes after our line.
        if let notice = r.stderr.range(of: "MPI_ABORT"), let ours = r.stderr.range(of: "error:") {
            XCTAssertLessThan(ours.lowerBound, notice.lowerBound, r.stderr, file: file, line: line)
        }
        return first
    }

    /// A trained digits workspace (one epoch, seed 0), made alone.
    func trainedWorkspace(_ name: String) throws -> String {
        let dir = TestSupport.temporaryDirectory(name)
        let r = try TestSupport.run(["train", "--workdir", dir, "--seeds", "0", "--epochs", "1"], timeout: 120)
        XCTAssertEqual(r.status, 0, r.stderr)
        return dir
    }

    /// Errors raised on rank 0 only, while rank 1 waits in a collective (before: rank 1 spun
    /// forever). The trace is written by rank 0 alone after the gather; `config.json` is
    /// written by rank 0 alone before the ranks meet.
    func testErrorOnRankZeroOnlyEndsTheJob() throws {
        let dir = try trainedWorkspace("fail-rank0")
        let trace = dir + "/trace-is-a-directory"
        try FileManager.default.createDirectory(atPath: trace, withIntermediateDirectories: true)
        try assertEndsWithOneError(["score", "--workdir", dir, "--seeds", "0", "--method", "identity", "--trace", trace], expected: trace)

        let file = TestSupport.temporaryDirectory("fail-rank0-file") + "/plain-file"
        XCTAssertTrue(FileManager.default.createFile(atPath: file, contents: Data("x".utf8)))
        try assertEndsWithOneError(["train", "--workdir", file, "--epochs", "1"], expected: file)
    }

    /// An error raised on rank 1 only: rank 1 trains seed 1, whose model directory is blocked
    /// by a plain file (before: rank 0 printed "train failed on another rank (see its
    /// message)" and rank 1's message was never shown).
    func testErrorOnRankOneOnlyEndsTheJob() throws {
        let dir = TestSupport.temporaryDirectory("fail-rank1")
        try FileManager.default.createDirectory(atPath: dir + "/models", withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: dir + "/models/seed-1", contents: Data("x".utf8)))
        let line = try assertEndsWithOneError(["train", "--workdir", dir, "--seeds", "0,1", "--epochs", "1"], expected: dir + "/models/seed-1")
        XCTAssertTrue(line.contains("rank 1:"), line)
    }

    /// An error of rank 1 that no collective agrees on: rank 1 alone is given a bad option
    /// (mpirun's MPMD form `A : B`) while rank 0 starts training and then waits for it.
    /// Rank 1 reports its own line after `FailureExit.grace` and aborts the job.
    func testUnagreedErrorOnRankOneEndsTheJob() throws {
        let dir = TestSupport.temporaryDirectory("fail-mpmd")
        let common = ["train", "--workdir", dir, "--seeds", "0,1", "--epochs", "1"]
        let line = try assertEndsWithOneError(common + [":", "-n", "1", TestSupport.executable] + common + ["--bogus-flag", "1"],
                                              ranks: 1, expected: "--bogus-flag")
        XCTAssertTrue(line.hasPrefix("error: rank 1: "), line)
    }

    /// An invalid value every rank sees: every rank fails, one line (rank 0's) is printed.
    func testErrorOnEveryRankPrintsOneLine() throws {
        let dir = TestSupport.temporaryDirectory("fail-all")
        let line = try assertEndsWithOneError(["train", "--workdir", dir, "--lr", "abc"], expected: "--lr expects a number")
        XCTAssertFalse(line.contains("rank 1"), line)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/config.json"), "a failed command left config.json")
    }
}
