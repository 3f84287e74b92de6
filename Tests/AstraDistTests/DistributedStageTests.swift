import AstraDist
import Foundation
import XCTest

/// `fit` and `groundtruth` under `mpirun`, through the built executable.
final class DistributedStageTests: XCTestCase {
    /// `mpirun -n 1`, `-n 2` and `-n 4 --oversubscribe` give the same factors. Tier 2
    /// (docs/design.md, "The same on any number of ranks"): relative difference ≤ 1e-6 of the
    /// largest |Λ|, since Λ is accumulated in double from float rotations of each batch.
    func testFitIsRankCountInvariant() throws {
        let base = TestSupport.temporaryDirectory("fit")
        XCTAssertEqual(try TestSupport.run(["train", "--workdir", base, "--epochs", "5"]).status, 0)
        var lambdas: [[[Double]]] = []
        for ranks in [1, 2, 4] {
            let dir = TestSupport.temporaryDirectory("fit\(ranks)")
            try FileManager.default.copyItem(atPath: base + "/config.json", toPath: dir + "/config.json")
            try FileManager.default.copyItem(atPath: base + "/models", toPath: dir + "/models")
            for mode in ["exact", "sampled"] {
                try? FileManager.default.removeItem(atPath: dir + "/factors")
                let r = try TestSupport.run(["fit", "--workdir", dir, "--fisher", mode], ranks: ranks)
                XCTAssertEqual(r.status, 0, r.stderr)
                lambdas.append((0..<3).map { l in (try? NPY.read("\(dir)/factors/seed-0/layer-\(l)-Lambda.npy").doubles) ?? [] })
            }
        }
        // Order: (n1 exact, n1 sampled, n2 exact, n2 sampled, n4 exact, n4 sampled).
        for (k, run) in lambdas.enumerated() where k >= 2 {
            let ref = lambdas[k % 2]
            for l in 0..<3 {
                XCTAssertFalse(run[l].isEmpty)
                let scale = ref[l].map(abs).max()!
                let diff = zip(run[l], ref[l]).map { abs($0 - $1) }.max()!
                XCTAssertLessThanOrEqual(diff / scale, 1e-6, "run \(k) layer \(l)")
            }
        }
        // Sampled and exact Fisher differ (the sampled one is a Monte Carlo estimate).
        XCTAssertNotEqual(lambdas[0][0], lambdas[1][0])
    }

    /// A sweep killed with SIGKILL mid-way and resumed on another rank count ends with the
    /// same `groundtruth.npy` as an uninterrupted run, every job exactly once. Tier 1
    /// (docs/design.md, "The same on any number of ranks"): bytes compared with `==`.
    func testGroundTruthSurvivesKillAndResumes() throws {
        let args = ["--masks", "24", "--repeats", "2", "--epochs", "30", "--query-size", "20"]
        let clean = TestSupport.temporaryDirectory("gtclean")
        let r0 = try TestSupport.run(["groundtruth", "--workdir", clean] + args, ranks: 2)
        XCTAssertEqual(r0.status, 0, r0.stderr)
        let cleanSize = try FileManager.default.attributesOfItem(atPath: clean + "/groundtruth/journal")[.size] as! Int

        let dir = TestSupport.temporaryDirectory("gtkill")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/mpirun")
        p.arguments = ["--allow-run-as-root", "-n", "2", TestSupport.executable, "groundtruth", "--workdir", dir] + args
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("OMPI_") && !$0.key.hasPrefix("PMIX_") && !$0.key.hasPrefix("OPAL_") }
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"; env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        p.environment = env
        p.standardError = FileHandle.nullDevice; p.standardOutput = FileHandle.nullDevice
        try p.run()
        // Kill once a few records are journalled (about a third of the jobs).
        let journal = dir + "/groundtruth/journal"
        let deadline = Date().addingTimeInterval(120)
        var sizeAtKill = 0
        while Date() < deadline {
            sizeAtKill = (try? FileManager.default.attributesOfItem(atPath: journal)[.size] as? Int) ?? 0
            if sizeAtKill > cleanSize / 3 { break }
            usleep(5_000)
        }
        let killer = Process()
        killer.executableURL = URL(fileURLWithPath: "/usr/bin/pkill")
        killer.arguments = ["-KILL", "-f", dir]
        try killer.run(); killer.waitUntilExit()
        p.waitUntilExit()
        // The ranks may outlive mpirun for a moment (and hold the journal's lock).
        for _ in 0..<500 {
            let probe = Process()
            probe.executableURL = URL(fileURLWithPath: "/usr/bin/pgrep")
            probe.arguments = ["-f", dir]
            probe.standardOutput = FileHandle.nullDevice
            try probe.run(); probe.waitUntilExit()
            if probe.terminationStatus != 0 { break }
            usleep(20_000)
        }
        XCTAssertLessThan(sizeAtKill, cleanSize, "the sweep finished before it could be killed; the test proves nothing")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/groundtruth/groundtruth.npy"))

        // Tear the last record as a crash mid-write would, then resume alone.
        if let h = FileHandle(forUpdatingAtPath: journal) {
            let end = h.seekToEndOfFile()
            if end > 10 { h.truncateFile(atOffset: end - 7) }
            h.closeFile()
        }
        let r1 = try TestSupport.run(["groundtruth", "--workdir", dir] + args)
        XCTAssertEqual(r1.status, 0, r1.stderr)
        XCTAssertTrue(r1.stderr.contains("already in the journal"), r1.stderr)
        for f in ["groundtruth.npy", "raw.npy"] {
            XCTAssertEqual(FileManager.default.contents(atPath: "\(dir)/groundtruth/\(f)"), FileManager.default.contents(atPath: "\(clean)/groundtruth/\(f)"), f)
        }
        let j = try Journal.open(path: journal, header: try readHeader(clean))
        XCTAssertEqual(Set(j.completed.keys), Set((0..<24).flatMap { s in (0..<2).map { GroundTruthStage.jobID(subset: s, repeat: $0) } }), "every job exactly once")
        j.close()
        // A second resume finds nothing to do.
        let r2 = try TestSupport.run(["groundtruth", "--workdir", dir] + args, ranks: 2)
        XCTAssertTrue(r2.stderr.contains("0 to run"), r2.stderr)
    }

    /// The journal header as written (the first length-prefixed string after the magic).
    func readHeader(_ dir: String) throws -> String {
        let b = try XCTUnwrap(FileManager.default.contents(atPath: dir + "/groundtruth/journal"))
        let len = Int(b[12]) | Int(b[13]) << 8 | Int(b[14]) << 16 | Int(b[15]) << 24
        return String(decoding: b[16..<(16 + len)], as: UTF8.self)
    }
}
