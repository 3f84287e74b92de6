import AstraDist
import Foundation
import XCTest

/// A result is reused only if it is the result asked for (docs/commands.md, "Naming rule"),
/// and a ground-truth sweep extends or selects a prefix without recomputing finished jobs.
final class ReuseTests: XCTestCase {
    static let small = ["--epochs", "3", "--train-size", "150", "--query-size", "8"]

    func testRunDoesNotReuseScoresMadeWithOtherOptions() throws {
        let w = TestSupport.temporaryDirectory("reuse") + "/w"
        XCTAssertEqual(try TestSupport.run(["train", "--workdir", w] + Self.small).status, 0)
        XCTAssertEqual(try TestSupport.run(["fit", "--workdir", w]).status, 0)
        let five = try TestSupport.run(["score", "--workdir", w, "--method", "astra", "--iterations", "5"])
        XCTAssertEqual(five.status, 0, five.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: w + "/scores/astra_iterations=5/seed-0.npy"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: w + "/scores/astra"))

        let run = try TestSupport.run(["run", "--workdir", w, "--method", "ekfac,astra", "--masks", "4", "--repeats", "1"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let astra = try JSONDecoder().decode(ScoreMetadata.self, from: Data(contentsOf: URL(fileURLWithPath: w + "/scores/astra/seed-0.json")))
        XCTAssertEqual(astra.options?.iterations, 200)
        XCTAssertEqual(astra.solver["iterations"]?.number, 200)
        XCTAssertEqual(astra.fisher, .sampled)
        XCTAssertNotNil(astra.factorsHash)
        XCTAssertFalse(run.stdout.contains("(done before)"), run.stdout)
        let ekfacScores = w + "/scores/ekfac/seed-0.npy"
        let ekfacBytes = try Data(contentsOf: URL(fileURLWithPath: ekfacScores))
        let ekfacLDS = try Data(contentsOf: URL(fileURLWithPath: w + "/lds/ekfac.json"))

        // Another damping is another result: its own name, the default's files untouched.
        let damped = try TestSupport.run(["run", "--workdir", w, "--method", "ekfac", "--damping", "0.05", "--masks", "4", "--repeats", "1"])
        XCTAssertEqual(damped.status, 0, damped.stderr)
        XCTAssertTrue(damped.stdout.contains("ekfac_damping=0.05"), damped.stdout)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: ekfacScores)), ekfacBytes)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: w + "/lds/ekfac.json")), ekfacLDS)
        let meta = try JSONDecoder().decode(ScoreMetadata.self, from: Data(contentsOf: URL(fileURLWithPath: w + "/scores/ekfac_damping=0.05/seed-0.json")))
        XCTAssertEqual(meta.options?.damping, 0.05)
        XCTAssertEqual(meta.name, "ekfac_damping=0.05"); XCTAssertEqual(meta.method, "ekfac")

        // The same request again reuses everything.
        let again = try TestSupport.run(["run", "--workdir", w, "--method", "ekfac,astra", "--masks", "4", "--repeats", "1"])
        XCTAssertEqual(again.stdout.components(separatedBy: "(done before)").count - 1, 2, again.stdout)

        // One name, one meaning: --name onto a result made otherwise is refused.
        let clash = try TestSupport.run(["score", "--workdir", w, "--method", "ekfac", "--damping", "0.05", "--name", "ekfac"])
        XCTAssertEqual(clash.status, 1)
        XCTAssertTrue(clash.stderr.contains("scores/ekfac holds damping 0.0073; this request has damping 0.05: drop --name or pick another"), clash.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: ekfacScores)), ekfacBytes)
    }

    /// `score` resumes: seeds whose scores were made exactly as asked are skipped (every
    /// method family: direct, SOURCE with its segment factors, TRAK with its resolved k), the
    /// rest are scored; a request that asks for more (a top-k file) scores again.
    func testScoreSkipsSeedsFinishedWithTheseOptions() throws {
        let w = TestSupport.temporaryDirectory("resume-score") + "/w"
        XCTAssertEqual(try TestSupport.run(["train", "--workdir", w, "--seeds", "0-1"] + Self.small).status, 0)
        XCTAssertEqual(try TestSupport.run(["fit", "--workdir", w]).status, 0)
        func modified(_ path: String) throws -> Date {
            try XCTUnwrap(try FileManager.default.attributesOfItem(atPath: w + "/" + path)[.modificationDate] as? Date)
        }
        for method in ["ekfac", "source", "trak"] {
            let first = try TestSupport.run(["score", "--workdir", w, "--method", method, "--seeds", "0"])
            XCTAssertEqual(first.status, 0, first.stderr)
            let seed0 = try modified("scores/\(method)/seed-0.npy")
            let both = try TestSupport.run(["score", "--workdir", w, "--method", method])
            XCTAssertEqual(both.status, 0, both.stderr)
            XCTAssertTrue(both.stderr.contains("score: seed 0: scores/\(method) exist, made with these options and this model, skipped"), both.stderr)
            XCTAssertFalse(both.stderr.contains("seed 1: scores/\(method) exist"), both.stderr)
            XCTAssertTrue(both.stdout.contains("wrote \(w)/scores/\(method)/seed-1.npy"), both.stdout)
            XCTAssertFalse(both.stdout.contains("seed-0.npy"), both.stdout)
            XCTAssertEqual(try modified("scores/\(method)/seed-0.npy"), seed0)
        }
        let top = try TestSupport.run(["score", "--workdir", w, "--method", "ekfac", "--seeds", "0", "--top", "3"])
        XCTAssertEqual(top.status, 0, top.stderr)
        XCTAssertFalse(top.stderr.contains("skipped"), top.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: w + "/scores/ekfac/seed-0.top.json"))
    }

    func testGroundTruthSweepExtendsAndSelectsPrefixes() throws {
        let w = TestSupport.temporaryDirectory("sweep") + "/w"
        func sweep(_ m: Int, _ r: Int) throws -> TestSupport.Result {
            let res = try TestSupport.run(["groundtruth", "--workdir", w, "--masks", "\(m)", "--repeats", "\(r)"] + Self.small)
            XCTAssertEqual(res.status, 0, res.stderr)
            return res
        }
        func raw() throws -> NPY.Content { try NPY.read(w + "/groundtruth/raw.npy") }
        XCTAssertTrue(try sweep(4, 2).stderr.contains("0 already in the journal, 8 to run"))
        let first = try raw()
        XCTAssertEqual(first.shape, [4, 2, 8])
        XCTAssertTrue(try sweep(6, 3).stderr.contains("8 already in the journal, 10 to run"))
        let bigger = try raw()
        XCTAssertEqual(bigger.shape, [6, 3, 8])
        let a = first.values(Float.self), b = bigger.values(Float.self)
        for j in 0..<4 { for r in 0..<2 { for q in 0..<8 { XCTAssertEqual(a[(j * 2 + r) * 8 + q], b[(j * 3 + r) * 8 + q], "job (\(j), \(r))") } } }
        XCTAssertTrue(try sweep(3, 1).stderr.contains("3 already in the journal, 0 to run"))
        let prefix = try raw().values(Float.self)
        for j in 0..<3 { for q in 0..<8 { XCTAssertEqual(prefix[j * 8 + q], b[j * 3 * 8 + q]) } }
        XCTAssertEqual(try NPY.read(w + "/groundtruth/groundtruth.npy").shape, [3, 8])
        XCTAssertEqual(try NPY.read(w + "/groundtruth/masks.npy").shape.first, 6)

        let alpha = try TestSupport.run(["groundtruth", "--workdir", w, "--alpha", "0.3"])
        XCTAssertEqual(alpha.status, 1)
        XCTAssertTrue(alpha.stderr.contains("alpha 0.5, this request 0.3 (--alpha)"), alpha.stderr)
        // Under mpirun the refusal ends every rank at once (never a hang).
        let started = Date()
        let onTwo = try TestSupport.run(["groundtruth", "--workdir", w, "--alpha", "0.3"], ranks: 2, timeout: 60)
        XCTAssertNotEqual(onTwo.status, 0)
        XCTAssertTrue(onTwo.stderr.contains("alpha 0.5, this request 0.3 (--alpha)"), onTwo.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(started), 30)
    }

    /// A groundtruth.npy with non-finite targets (an older build averaged diverged retrainings
    /// in) is refused with the way out, and `groundtruth` rewrites it from the journal.
    func testNonFiniteGroundTruthIsRefusedAndRewrittenFromTheJournal() throws {
        let w = TestSupport.temporaryDirectory("nan-gt") + "/w"
        for args in [["train"] + Self.small, ["groundtruth", "--masks", "3", "--repeats", "1"], ["score", "--method", "identity"]] {
            let r = try TestSupport.run(args + ["--workdir", w])
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        let path = w + "/groundtruth/groundtruth.npy"
        let content = try NPY.read(path)
        var targets = content.doubles
        targets[1] = .nan
        try NPY.write(targets, shape: content.shape, to: path)
        let refused = try TestSupport.run(["lds", "--workdir", w])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("non-finite targets") && refused.stderr.contains("rerun `astra-dist groundtruth"), refused.stderr)
        let rewrite = try TestSupport.run(["groundtruth", "--workdir", w, "--masks", "3", "--repeats", "1"])
        XCTAssertTrue(rewrite.stderr.contains("3 already in the journal, 0 to run"), rewrite.stderr)
        XCTAssertTrue(try NPY.read(path).doubles.allSatisfy(\.isFinite))
        XCTAssertEqual(try TestSupport.run(["lds", "--workdir", w]).status, 0)
    }

    func testFormatOneJournalIsRefusedWithTheWayOut() throws {
        let w = TestSupport.temporaryDirectory("legacy") + "/w"
        XCTAssertEqual(try TestSupport.run(["train", "--workdir", w] + Self.small).status, 0)
        try AtomicFile.write(Journal.encodeHeader(#"{"format":"astra-dist-groundtruth-1","masks":4,"repeats":2}"#), to: w + "/groundtruth/journal")
        let r = try TestSupport.run(["groundtruth", "--workdir", w, "--masks", "4"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("format-1 journal") && r.stderr.contains("mv \(w)/groundtruth \(w)/groundtruth-v1"), r.stderr)
    }
}
