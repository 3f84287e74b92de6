import AstraDist
import Foundation
import XCTest

/// `score --method source|astra-source` through the binary, under `mpirun`: the same scores on
/// 1, 2 and 4 ranks, segment files reused by a re-run (also after a kill), and the refusals.
final class DistributedSourceTests: XCTestCase {
    /// digits, 5 epochs: 205 steps, the default schedule checkpoints every 13 steps (15).
    static let common = ["--epochs", "5", "--query-size", "24"]

    func trained(_ tag: String, extra: [String] = []) throws -> String {
        let dir = TestSupport.temporaryDirectory("source-\(tag)")
        let r = try TestSupport.run(["train", "--workdir", dir] + Self.common + extra)
        XCTAssertEqual(r.status, 0, r.stderr)
        return dir
    }

    func scores(_ dir: String, _ name: String) throws -> [Float] {
        try NPY.read("\(dir)/scores/\(name)/seed-0.npy").values(Float.self)
    }

    func modificationDate(_ path: String) throws -> Date {
        try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date)
    }

    /// Tier 2 (docs/design.md, "The same on any number of ranks"): each rank count fits the
    /// segments in its own workspace (factors summed in another order) and scores there;
    /// scores agree to ≤ 1e-4 of the largest |score| (source: Double factors, float32
    /// contractions; astra-source: 30 float32 ASTRA iterations per segment, as astra's tier).
    /// astra-source solves with the one-rank run's segment factors: these 5-epoch segments
    /// have tied (zero) eigenvalues, whose eigenvectors rounding picks, and the λ_max power
    /// iteration starts from a fixed vector in eigenbasis coordinates, so refitted factors
    /// can move α = c/λ_max beyond rounding (docs/design.md, tier 2).
    func testSourceScoresAreRankCountInvariant() throws {
        var results: [String: [[Float]]] = [:]
        var first = ""
        for ranks in [0, 2, 4] {
            let dir = try trained("n\(ranks)")
            for (method, solver) in [("source", [String]()), ("astra-source", ["--iterations", "30", "--solver-batch", "64"])] {
                if method == "astra-source" && ranks > 0 {
                    for l in 1...3 {
                        let segment = "/factors/seed-0/segment-\(l)"
                        try FileManager.default.removeItem(atPath: dir + segment)
                        try FileManager.default.copyItem(atPath: first + segment, toPath: dir + segment)
                    }
                }
                let r = try TestSupport.run(["score", "--workdir", dir, "--method", method] + solver, ranks: ranks, timeout: 600)
                XCTAssertEqual(r.status, 0, r.stderr)
                let name = method == "source" ? "source" : "astra-source_iterations=30_solver-batch=64"
                results[method, default: []].append(try scores(dir, name))
                if ranks == 0 {
                    let meta = try String(contentsOfFile: "\(dir)/scores/\(name)/seed-0.json", encoding: .utf8)
                    XCTAssertTrue(meta.contains("\"impliedDamping\""), meta)
                    XCTAssertTrue(r.stderr.contains("implied damping"), r.stderr)
                }
            }
            if ranks == 0 { first = dir } else { try? FileManager.default.removeItem(atPath: dir) }
        }
        try? FileManager.default.removeItem(atPath: first)
        for (method, runs) in results {
            let scale = Double(runs[0].map(abs).max()!)
            XCTAssertGreaterThan(scale, 0)
            for (k, run) in runs.enumerated().dropFirst() {
                let diff = zip(run, runs[0]).map { Double(abs($0 - $1)) }.max()!
                XCTAssertLessThanOrEqual(diff / scale, 1e-4, "\(method), run \(k)")
            }
        }
    }

    /// A re-run reuses finished segments: after segment 3's factors are lost (as a kill during
    /// its fit would leave them), `score` refits only segment 3, and the scores are the same
    /// bits (tier 1: one rank, the same work). A second complete run refits nothing.
    func testRerunSkipsFinishedSegments() throws {
        let dir = try trained("rerun")
        let first = try TestSupport.run(["score", "--workdir", dir, "--method", "source", "--name", "first"])
        XCTAssertEqual(first.status, 0, first.stderr)
        let manifest = { (l: Int) in "\(dir)/factors/seed-0/segment-\(l)/factors.json" }
        let dates = try (1...3).map { try modificationDate(manifest($0)) }
        try FileManager.default.removeItem(atPath: "\(dir)/factors/seed-0/segment-3")
        let second = try TestSupport.run(["score", "--workdir", dir, "--method", "source", "--name", "second"])
        XCTAssertEqual(second.status, 0, second.stderr)
        for l in 1...2 {
            XCTAssertTrue(second.stderr.contains("fit: seed-0/segment-\(l) already fitted, skipped"), second.stderr)
            XCTAssertEqual(try modificationDate(manifest(l)), dates[l - 1], "segment \(l) was not refitted")
        }
        XCTAssertTrue(second.stderr.contains("source: seed-0/segment-3 already averaged, skipped"), second.stderr)
        XCTAssertEqual(second.stderr.components(separatedBy: "fit: pass 1/3").count - 1, 1, "only segment 3 is fitted")
        XCTAssertEqual(try scores(dir, "second"), try scores(dir, "first"))
        let third = try TestSupport.run(["score", "--workdir", dir, "--method", "source", "--name", "third"])
        XCTAssertEqual(third.status, 0, third.stderr)
        XCTAssertFalse(third.stderr.contains("fit: pass 1/3"), third.stderr)
    }

    /// SIGKILL under mpirun while astra-source solves (every segment fitted): the re-run refits
    /// nothing, resumes the solves from their states, and gives the uninterrupted scores
    /// (tier 2 bound, 1e-4 of the largest |score|; the same layout resumes bit-identically).
    func testKilledAstraSourceResumesWithoutRefitting() throws {
        let dir = try trained("kill")
        let solver = ["--method", "astra-source", "--iterations", "200", "--solver-batch", "64", "--state-every", "10"]
        let reference = try TestSupport.run(["score", "--workdir", dir, "--name", "reference"] + solver, ranks: 2, timeout: 600)
        XCTAssertEqual(reference.status, 0, reference.stderr)
        // The same solve from scratch under another name: fresh segment files too.
        for sub in ["models/seed-0", "factors/seed-0"] {
            for l in 1...3 { try? FileManager.default.removeItem(atPath: "\(dir)/\(sub)/segment-\(l)") }
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/mpirun")
        p.arguments = ["--allow-run-as-root", "--oversubscribe", "-n", "2", TestSupport.executable, "score", "--workdir", dir, "--name", "killed"] + solver
        p.environment = TestSupport.childEnvironment()
        p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle.nullDevice
        try p.run()
        // Segment 3 is solved first (the query vector is carried backwards): kill once its
        // solver state holds an iteration, every segment being fitted by then.
        let state = "\(dir)/scores/killed/seed-0.state/block-0-24.segment-3.bin"
        let deadline = Date().addingTimeInterval(300)
        var seen: Int?
        while Date() < deadline && p.isRunning {
            if let k = DistributedResumeTests.savedIteration(state) { seen = k; break }
            usleep(10_000)
        }
        // The whole job at once, as DistributedResumeTests does: the group and every rank.
        let victims = DistributedResumeTests.processes(mentioning: dir)
        if getpgid(p.processIdentifier) == p.processIdentifier { kill(-p.processIdentifier, SIGKILL) }
        for v in victims { kill(v, SIGKILL) }
        p.waitUntilExit()
        for v in DistributedResumeTests.processes(mentioning: dir) { kill(v, SIGKILL) }
        XCTAssertNotNil(seen, "segment 3's solver state never appeared")
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/scores/killed/seed-0.npy"), "killed before the scores were written")
        let resumed = try TestSupport.run(["score", "--workdir", dir, "--name", "killed"] + solver, ranks: 2, timeout: 600)
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertFalse(resumed.stderr.contains("fit: pass 1/3"), "no segment is refitted:\n\(resumed.stderr)")
        for l in 1...3 { XCTAssertTrue(resumed.stderr.contains("fit: seed-0/segment-\(l) already fitted, skipped"), resumed.stderr) }
        let a = try scores(dir, "killed"), b = try scores(dir, "reference")
        let scale = Double(b.map(abs).max()!)
        XCTAssertLessThanOrEqual(zip(a, b).map { Double(abs($0 - $1)) }.max()! / scale, 1e-4)
    }

    /// Refusals: too few checkpoints names --checkpoint-every with a value that would do; a
    /// segment directory of another split is not overwritten; --damping does not apply.
    func testRefusals() throws {
        let none = try trained("few", extra: ["--checkpoint-every", "1000"])
        let r = try TestSupport.run(["score", "--workdir", none, "--method", "source"])
        XCTAssertNotEqual(r.status, 0)
        let line = r.stderr.split(separator: "\n").filter { $0.hasPrefix("error:") }
        XCTAssertEqual(line.count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("--checkpoint-every 13"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: none + "/scores/source"))

        let dir = try trained("split")
        XCTAssertEqual(try TestSupport.run(["score", "--workdir", dir, "--method", "source"]).status, 0)
        let other = try TestSupport.run(["score", "--workdir", dir, "--method", "source", "--segments", "5"])
        XCTAssertNotEqual(other.status, 0)
        XCTAssertTrue(other.stderr.contains("aside"), other.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/scores/source_segments=5/seed-0.npy"))
        let damping = try TestSupport.run(["score", "--workdir", dir, "--method", "source", "--damping", "0.1"])
        XCTAssertNotEqual(damping.status, 0)
        XCTAssertTrue(damping.stderr.contains("--damping applies to"), damping.stderr)
    }
}
