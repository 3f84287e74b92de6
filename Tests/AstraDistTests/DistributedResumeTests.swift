import AstraDist
import Foundation
import XCTest

/// `score` killed with SIGKILL under `mpirun -n 2` and re-run resumes from its solver state
/// (docs/commands.md, "Resuming a solve"). Tiers (docs/design.md): on the same layout the
/// resumed scores are bit-identical to an uninterrupted run's; resumed on another rank count
/// they are within the reordering tolerance (relative 1e-4, as DistributedScoreTests).
final class DistributedResumeTests: XCTestCase {
    static let iterations = "120"

    func prepared() throws -> String {
        let dir = TestSupport.temporaryDirectory("resume")
        XCTAssertEqual(try TestSupport.run(["train", "--workdir", dir, "--epochs", "5", "--query-size", "24"]).status, 0)
        XCTAssertEqual(try TestSupport.run(["fit", "--workdir", dir]).status, 0)
        return dir
    }

    func scores(_ dir: String, _ name: String) throws -> [Float] {
        try NPY.read("\(dir)/scores/\(name)/seed-0.npy").values(Float.self)
    }

    static func stateDirectory(_ dir: String, _ name: String) -> String { "\(dir)/scores/\(name)/seed-0.state" }

    /// The iteration in a state file's JSON header (docs/formats.md), nil while there is none.
    static func savedIteration(_ path: String) -> Int? {
        guard let data = FileManager.default.contents(atPath: path), data.count > 16, data.prefix(8) == Data("ASTRASV1".utf8) else { return nil }
        let length = data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self) }
        guard length <= data.count - 16,
              let header = try? JSONSerialization.jsonObject(with: data.subdata(in: 16..<(16 + Int(length)))) as? [String: Any] else { return nil }
        return header["iteration"] as? Int
    }

    /// Runs `score ARGS` under `mpirun -n 2` in its own process group and SIGKILLs the whole
    /// group once `state` holds iteration `after` or later. Returns that iteration.
    func killMidway(_ args: [String], state: String, after: Int, workdir: String) throws -> Int {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/mpirun")
        p.arguments = ["--allow-run-as-root", "--oversubscribe", "-n", "2", TestSupport.executable] + args
        p.environment = TestSupport.childEnvironment()
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(120)
        var seen: Int?
        while Date() < deadline && p.isRunning {
            if let k = Self.savedIteration(state), k >= after { seen = k; break }
            usleep(10_000)
        }
        // SIGKILL to mpirun and every rank at once: the process group if mpirun leads one
        // (Foundation starts children in their own), and every process of this workspace
        // by pid (a rank in another group would otherwise be left running).
        let pid = p.processIdentifier
        let victims = Self.processes(mentioning: workdir)
        if getpgid(pid) == pid { kill(-pid, SIGKILL) }
        for v in victims { kill(v, SIGKILL) }
        p.waitUntilExit()
        for v in Self.processes(mentioning: workdir) { kill(v, SIGKILL) }
        let k = try XCTUnwrap(seen, "the state never passed iteration \(after)")
        // The state on disk after the kill: saved at k or later, never torn.
        let onDisk = try XCTUnwrap(Self.savedIteration(state), "the state file is readable after SIGKILL")
        XCTAssertGreaterThanOrEqual(onDisk, k)
        return onDisk
    }

    /// Pids whose command line contains `text` (our own children only: the path is unique).
    static func processes(mentioning text: String) -> [pid_t] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { e in
            guard let pid = pid_t(e), pid != getpid(), let cmd = FileManager.default.contents(atPath: "/proc/\(e)/cmdline"),
                  String(decoding: cmd, as: UTF8.self).contains(text) else { return nil }
            return pid
        }
    }

    /// An uninterrupted run, a run killed past iteration 20 and re-run: bit-identical scores
    /// (same layout), the log says where it resumed, and the state is gone afterwards.
    /// Returns the workspace, the score arguments and the killed run's state (a copy).
    @discardableResult
    func assertResumesAfterKill(method: String, extra: [String] = []) throws -> (dir: String, args: [String], state: String) {
        let dir = try prepared()
        let args = ["score", "--workdir", dir, "--method", method, "--iterations", Self.iterations, "--state-every", "5"] + extra
        let full = try TestSupport.run(args + ["--name", "full"], ranks: 2)
        XCTAssertEqual(full.status, 0, full.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: Self.stateDirectory(dir, "full")), "the state is removed once the scores are written")

        let state = Self.stateDirectory(dir, "killed")
        let k = try killMidway(args + ["--name", "killed"], state: state + "/block-0-24.bin", after: 20, workdir: dir)
        XCTAssertLessThan(k, Int(Self.iterations)!, "killed before the end")
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/scores/killed/seed-0.npy"))
        let copy = dir + "/state-copy"
        try FileManager.default.copyItem(atPath: state, toPath: copy)

        let resumed = try TestSupport.run(args + ["--name", "killed"], ranks: 2)
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("\(method): resuming from iteration \(k) of \(Self.iterations)"), resumed.stderr)
        XCTAssertEqual(try scores(dir, "killed"), try scores(dir, "full"), "\(method): resumed on the same layout must be bit-identical")
        XCTAssertFalse(FileManager.default.fileExists(atPath: state))
        return (dir, args, copy)
    }

    func testAstraResumesAfterKill() throws {
        let (dir, args, copy) = try assertResumesAfterKill(method: "astra")
        // The state holds the replicated iterates, so one process resumes what two saved:
        // the reordering tier.
        try FileManager.default.copyItem(atPath: copy, toPath: Self.stateDirectory(dir, "single"))
        let single = try TestSupport.run(args + ["--name", "single"])
        XCTAssertEqual(single.status, 0, single.stderr)
        XCTAssertTrue(single.stderr.contains("astra: resuming from iteration"), single.stderr)
        let reference = try scores(dir, "full"), got = try scores(dir, "single")
        let scale = Double(reference.map(abs).max()!)
        let diff = zip(got, reference).map { Double(abs($0 - $1)) }.max()!
        XCTAssertLessThanOrEqual(diff / scale, 1e-4)

        // Another damping: the state is ignored with a warning that names it.
        try FileManager.default.copyItem(atPath: copy, toPath: Self.stateDirectory(dir, "other"))
        let other = try TestSupport.run(args + ["--name", "other", "--damping", "0.0123"], ranks: 2)
        XCTAssertEqual(other.status, 0, other.stderr)
        XCTAssertFalse(other.stderr.contains("resuming"), other.stderr)
        XCTAssertTrue(other.stderr.contains("warning: ignoring the solver state"), other.stderr)
        XCTAssertTrue(other.stderr.contains("option.damping"), other.stderr)
    }

    func testSNIResumesAfterKill() throws {
        try assertResumesAfterKill(method: "sni", extra: ["--lissa-repeats", "2"])
    }
}
