import AstraDist
import Foundation
import XCTest

/// A solve stopped part-way and re-run from its saved state (`SolverCheckpoint`) ends where
/// the uninterrupted solve ends, bit for bit (one process, so the same layout; the
/// distributed resume is in DistributedResumeTests).
final class SolverResumeTests: XCTestCase {
    struct Interrupted: Error {}

    /// Warnings of a checkpoint, collected (the closure must be Sendable).
    final class Warnings: @unchecked Sendable {
        private let lock = NSLock()
        private var list: [String] = []
        func add(_ s: String) { lock.lock(); list.append(s); lock.unlock() }
        var all: [String] { lock.lock(); defer { lock.unlock() }; return list }
    }

    func solve(_ p: SolverTests.Problem, _ o: SolverOptions, state path: String, warnings: Warnings = Warnings(), log: ((String) -> Void)? = nil,
               stopAfter stop: Int? = nil) throws -> (x: [Double], report: SolverReport) {
        let checkpoint = SolverCheckpoint(path: path, provenance: ["test": "resume"], warn: { warnings.add($0) })
        return try IHVPSolver.solve(p.v, queries: p.queries, network: p.network, train: p.train, ekfac: p.ekfac, options: o,
                                    comm: SolverTests.single, progress: log, checkpoint: checkpoint,
                                    onIterate: { k, _ in if k == stop { throw Interrupted() } })
    }

    /// Solves `o` uninterrupted, and stopped (an error thrown after `stop` iterations, as a
    /// kill would) then re-run: the same x, trace objectives, step and back-offs. Returns
    /// the uninterrupted solve and the state directory.
    @discardableResult
    func assertResumes(_ p: SolverTests.Problem, _ o: SolverOptions, stop: Int) throws -> (x: [Double], report: SolverReport, dir: String) {
        let dir = TestSupport.temporaryDirectory("resume")
        let full = try solve(p, o, state: dir + "/full.bin")
        XCTAssertThrowsError(try solve(p, o, state: dir + "/cut.bin", stopAfter: stop)) { XCTAssertTrue($0 is Interrupted) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/cut.bin"))
        var log: [String] = []
        let warnings = Warnings()
        let resumed = try solve(p, o, state: dir + "/cut.bin", warnings: warnings, log: { log.append($0) })
        let savedAt = stop / o.stateEvery * o.stateEvery
        XCTAssertTrue(log.contains { $0.contains("resuming from iteration \(savedAt) of \(o.iterations)") }, "\(log)")
        XCTAssertFalse(log.contains { $0.contains("λ_max") }, "a resumed solve takes its step from the state")
        XCTAssertEqual(warnings.all, [])
        XCTAssertEqual(resumed.x, full.x, "\(o.method): the resumed solve must end bit-identical")
        XCTAssertEqual(resumed.report.trace.map(\.iteration), full.report.trace.map(\.iteration))
        XCTAssertEqual(resumed.report.trace.map(\.objective), full.report.trace.map(\.objective))
        XCTAssertEqual(resumed.report.backoffs, full.report.backoffs)
        XCTAssertEqual(resumed.report.learningRate, full.report.learningRate)
        XCTAssertEqual(resumed.report.lambdaMax, full.report.lambdaMax)
        // The finished solve saved its end: a re-run resumes there and runs nothing.
        log = []
        let again = try solve(p, o, state: dir + "/full.bin", log: { log.append($0) })
        XCTAssertTrue(log.contains { $0.contains("resuming from iteration \(o.iterations) of \(o.iterations)") }, "\(log)")
        XCTAssertEqual(again.x, full.x)
        return (full.x, full.report, dir)
    }

    /// ASTRA with an oscillating step (so back-offs fire and their state matters: the restart
    /// points, best objectives and halved steps) and the decay schedule crossing the cut.
    func testAstraResumesBitIdentical() throws {
        let p = try SolverTests.problem(.regression, widths: [4, 8, 6, 2])
        var o = SolverOptions(method: .astra, damping: 0.05)
        o.batchSize = 8; o.evaluationBatch = p.train.count; o.traceEvery = 10
        o.learningRateScale = 0.3; o.iterations = 120; o.stateEvery = 10
        let full = try assertResumes(p, o, stop: 57)
        XCTAssertGreaterThan(full.report.backoffs!, 0, "the test must exercise the back-off state")

        // A state of another solve (other damping) is ignored with a warning naming it; the
        // solve runs from iteration 0 and ends as a fresh one.
        var other = o
        other.damping = 0.1
        let fresh = try SolverTests.solve(p, other)
        let warnings = Warnings()
        var log: [String] = []
        let ignored = try solve(p, other, state: full.dir + "/full.bin", warnings: warnings, log: { log.append($0) })
        XCTAssertEqual(ignored.x, fresh.x)
        XCTAssertFalse(log.contains { $0.contains("resuming") })
        XCTAssertEqual(warnings.all.count, 1)
        XCTAssertTrue(warnings.all.first?.contains("option.damping (state 0.05, now 0.1)") ?? false, "\(warnings.all)")

        // A damaged state (one flipped byte in the iterate) fails its checksum and is ignored.
        let path = full.dir + "/damaged.bin"
        try FileManager.default.copyItem(atPath: full.dir + "/cut.bin", toPath: path)
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[bytes.count / 2] ^= 0x10
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let damaged = Warnings()
        XCTAssertEqual(try solve(p, o, state: path, warnings: damaged).x, full.x)
        XCTAssertTrue(damaged.all.first?.contains("checksum") ?? false, "\(damaged.all)")

        // --state-every 0: nothing is saved, nothing resumed.
        var off = o
        off.stateEvery = 0
        XCTAssertEqual(try solve(p, off, state: full.dir + "/off.bin").x, full.x)
        XCTAssertFalse(FileManager.default.fileExists(atPath: full.dir + "/off.bin"))
    }

    /// SNI with 3 LiSSA chains (every chain's iterate is saved) and an explicit step.
    func testSNIResumesBitIdentical() throws {
        let p = try SolverTests.problem(.classification, widths: [4, 6, 3])
        var o = SolverOptions(method: .sni, damping: 0.05)
        o.batchSize = 8; o.iterations = 90; o.lissaRepeats = 3; o.stateEvery = 20; o.traceEvery = 15
        try assertResumes(p, o, stop: 45)
        o.learningRate = 0.05
        try assertResumes(p, o, stop: 61)
    }
}
