import AstraDist
import Foundation
import XCTest

/// `score --damping LIST`: one result per λ, named as if asked alone; the EK-FAC family shares
/// one rotation, iterative methods run once per λ; either way the scores are bit-identical to
/// single-λ runs (one rank, one thread). `lds` then plots LDS against λ.
final class DampingListTests: XCTestCase {
    func testADampingListEqualsSingleRunsAndIsNamedByTheRule() throws {
        let w = TestSupport.temporaryDirectory("damping-list") + "/ws"
        let setup = try TestSupport.run(["run", "--workdir", w, "--method", "ekfac", "--train-size", "200", "--query-size", "8",
                                         "--epochs", "3", "--masks", "10", "--repeats", "1"])
        XCTAssertEqual(setup.status, 0, setup.stderr)
        // Single-λ runs under other names, then the list.
        for (m, extra) in [("ekfac", [String]()), ("kfac", []), ("identity", []), ("astra", ["--iterations", "3"])] {
            for lambda in ["0.001", "0.1"] {
                let r = try TestSupport.run(["score", "--workdir", w, "--method", m, "--damping", lambda, "--name", "alone-\(m)-\(lambda)"] + extra)
                XCTAssertEqual(r.status, 0, r.stderr)
            }
        }
        let list = try TestSupport.run(["score", "--workdir", w, "--method", "ekfac,kfac,identity", "--damping", "1e-3,0.1"])
        XCTAssertEqual(list.status, 0, list.stderr)
        let astra = try TestSupport.run(["score", "--workdir", w, "--method", "astra", "--iterations", "3", "--damping", "1e-3,0.1"])
        XCTAssertEqual(astra.status, 0, astra.stderr)
        for (m, suffix) in [("ekfac", ""), ("kfac", ""), ("identity", ""), ("astra", "_iterations=3")] {
            for lambda in ["0.001", "0.1"] {
                let name = "\(m)_damping=\(lambda)\(suffix)"
                XCTAssertTrue((list.stdout + astra.stdout).contains("wrote \(w)/scores/\(name)/seed-0.npy"), name)
                let a = try NPY.read("\(w)/scores/\(name)/seed-0.npy").values(Float.self)
                let b = try NPY.read("\(w)/scores/alone-\(m)-\(lambda)/seed-0.npy").values(Float.self)
                XCTAssertEqual(a, b, "\(name) differs from the single-λ run")
                let meta = try JSONDecoder().decode(ScoreMetadata.self, from: Data(contentsOf: URL(fileURLWithPath: "\(w)/scores/\(name)/seed-0.json")))
                XCTAssertEqual(meta.damping, Double(lambda)!)
            }
        }
        // The λs really differ (else equality above would prove nothing).
        XCTAssertNotEqual(try NPY.read("\(w)/scores/ekfac_damping=0.001/seed-0.npy").values(Float.self),
                          try NPY.read("\(w)/scores/ekfac_damping=0.1/seed-0.npy").values(Float.self))
        // On two ranks (two query groups: each gathers its rows per λ) the same scores, to the reordering tier.
        let two = try TestSupport.run(["score", "--workdir", w, "--method", "ekfac", "--damping", "1e-3,0.1", "--name", "two-ranks", "--query-groups", "2"], ranks: 2)
        XCTAssertEqual(two.status, 0, two.stderr)
        for lambda in ["0.001", "0.1"] {
            let a = try NPY.read("\(w)/scores/two-ranks_damping=\(lambda)/seed-0.npy").values(Float.self)
            let b = try NPY.read("\(w)/scores/ekfac_damping=\(lambda)/seed-0.npy").values(Float.self)
            let scale = b.map { abs($0) }.max()!
            XCTAssertEqual(a.count, b.count)
            for i in a.indices { XCTAssertEqual(a[i], b[i], accuracy: 1e-4 * scale) }
        }
        // The setting's λ is plain `ekfac`; with --name N every λ is N_damping=λ.
        let named = try TestSupport.run(["score", "--workdir", w, "--method", "ekfac", "--damping", "0.0073,0.5", "--name", "sweep"])
        XCTAssertEqual(named.status, 0, named.stderr)
        for name in ["sweep_damping=0.0073", "sweep_damping=0.5"] { XCTAssertTrue(named.stdout.contains("scores/\(name)/seed-0.npy"), named.stdout) }
        let plain = try TestSupport.run(["score", "--workdir", w, "--method", "ekfac", "--damping", "0.0073,0.5"])
        XCTAssertTrue(plain.stdout.contains("wrote \(w)/scores/ekfac/seed-0.npy"), plain.stdout)

        // lds: LDS against λ per family, and the SVG.
        let lds = try TestSupport.run(["lds", "--workdir", w])
        XCTAssertEqual(lds.status, 0, lds.stderr)
        let line = try XCTUnwrap(lds.stdout.split(separator: "\n").first { $0.hasPrefix("ekfac ") && $0.contains("λ 0.001:") }, lds.stdout)
        for lambda in ["0.001", "0.0073", "0.1", "0.5"] { XCTAssertTrue(line.contains("λ \(lambda):"), String(line)) }
        XCTAssertTrue(lds.stdout.contains("sweep "), lds.stdout)
        let svg = try String(contentsOfFile: w + "/lds/damping.svg", encoding: .utf8)
        XCTAssertTrue(svg.contains(">ekfac</text>") && svg.contains(">kfac</text>") && svg.contains(">sweep</text>"), svg)
    }

    func testBadDampingListsAreRefusedWithOneLine() throws {
        let w = TestSupport.temporaryDirectory("damping-bad") + "/ws"
        XCTAssertEqual(try TestSupport.run(["train", "--workdir", w, "--epochs", "1", "--train-size", "60", "--query-size", "4"]).status, 0)
        for (list, message) in [("1e-3,,x", "got '' in '1e-3,,x'"), ("1e-3,x", "got 'x'"), ("1e-3,-0.1", "got '-0.1'"), ("0", "got '0'"),
                                ("1e-3,0.001", "lists 0.001 twice")] {
            let r = try TestSupport.run(["score", "--workdir", w, "--method", "identity", "--damping", list])
            XCTAssertEqual(r.status, 1, list)
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
            XCTAssertTrue(r.stderr.hasPrefix("error: score: --damping ") && r.stderr.contains(message), r.stderr)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: w + "/scores"))
        let t = try TestSupport.run(["score", "--workdir", w, "--method", "identity", "--damping", "1e-3,1e-2", "--trace", w + "/t.csv"])
        XCTAssertTrue(t.status == 1 && t.stderr.contains("--trace names one file"), t.stderr)
        let run = try TestSupport.run(["run", "--workdir", w, "--method", "identity", "--damping", "1e-3,1e-2"])
        XCTAssertEqual(run.status, 1)
        XCTAssertTrue(run.stderr.hasPrefix("error: run: --damping takes one λ here; sweep a list with `astra-dist score"), run.stderr)
    }
}
