import AstraDist
import Foundation
import XCTest

/// `run` (the whole pipeline, resumable) and `convergence` (the paper's Figure 3) under mpirun.
final class PipelineTests: XCTestCase {
    /// Splits one CSV line, honouring double quotes (RFC 4180, no escaped quotes needed here).
    static func fields(_ line: Substring) -> [String] {
        var out = [""], quoted = false
        for ch in line {
            if ch == "\"" { quoted.toggle() } else if ch == "," && !quoted { out.append("") } else { out[out.count - 1].append(ch) }
        }
        return out
    }

    func testRunResumesAndConvergenceWritesCurves() throws {
        let dir = TestSupport.temporaryDirectory("pipeline")
        let workspace = ["--workdir", dir, "--masks", "24", "--repeats", "2", "--epochs", "30", "--query-size", "20"]
        let first = try TestSupport.run(["run"] + workspace + ["--method", "identity,ekfac,astra"], ranks: 2)
        XCTAssertEqual(first.status, 0, first.stderr)
        let rows = first.stdout.split(separator: "\n").filter { ["identity", "ekfac", "astra"].contains($0.split(separator: " ").first.map(String.init) ?? "") }
        XCTAssertEqual(rows.count, 3, first.stdout)
        XCTAssertFalse(first.stdout.contains("(done before)"), first.stdout)

        // A second run finds every stage done: nothing is recomputed or rewritten.
        let scores = dir + "/scores/astra/seed-0.npy"
        let written = try FileManager.default.attributesOfItem(atPath: scores)[.modificationDate] as! Date
        let again = try TestSupport.run(["run"] + workspace + ["--method", "identity,ekfac,astra"], ranks: 2)
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(again.stdout.components(separatedBy: "(done before)").count - 1, 3, again.stdout)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: scores)[.modificationDate] as? Date, written)

        let c = try TestSupport.run(["convergence", "--workdir", dir, "--queries-count", "4", "--solver-seeds", "2", "--astra-iterations", "20",
                                     "--sni-iterations", "50", "--sni-rates", "1,0.1"], ranks: 2)
        XCTAssertEqual(c.status, 0, c.stderr)
        let csv = try String(contentsOfFile: dir + "/report/convergence.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(Self.fields(csv[0]), ["method", "learning_rate", "iteration", "objective_mean", "objective_se", "lds_mean", "lds_se"])
        let body = csv.dropFirst().map(Self.fields)
        XCTAssertTrue(body.allSatisfy { $0.count == 7 && Double($0[3]) != nil && Double($0[5]) != nil }, "\(csv)")
        XCTAssertEqual(Set(body.map { $0[0] }), ["astra", "sni"])
        // Two solver seeds: a standard error is reported past iteration 0.
        XCTAssertTrue(body.contains { $0[0] == "astra" && Int($0[2])! > 0 && Double($0[4])! > 0 })
        for metric in ["objective", "lds"] {
            XCTAssertTrue(try String(contentsOfFile: dir + "/report/convergence-\(metric).svg", encoding: .utf8).hasPrefix("<svg"))
        }
    }
}
