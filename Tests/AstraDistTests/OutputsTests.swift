import AstraDist
import Foundation
import XCTest

/// Score files that explain themselves: one numbering (train_index.npy, top.json rows,
/// targets, predictions), the names the tool prints accepted as --queries, the files written
/// printed, numbers as numbers.
final class OutputsTests: XCTestCase {
    func testScoreFilesShareOneNumberingAndSayWhatTheyWrote() throws {
        let w = TestSupport.temporaryDirectory("outputs") + "/ws"
        XCTAssertEqual(try TestSupport.run(["train", "--workdir", w, "--epochs", "2", "--train-size", "120", "--query-size", "6"]).status, 0)
        let r = try TestSupport.run(["score", "--workdir", w, "--method", "identity", "--top", "3"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let dir = w + "/scores/identity"
        for f in ["seed-0.npy", "seed-0.json", "train_index.npy", "seed-0.top.json"] {
            XCTAssertTrue(r.stdout.contains("wrote \(dir)/\(f)"), "\(f) not reported: \(r.stdout)")
        }
        let config = try XCTUnwrap(try WorkDirectory(w).loadConfig())
        let data = try PreparedData.load(config)
        let index = try NPY.read(dir + "/train_index.npy")
        XCTAssertEqual(index.dtype, .int64)
        XCTAssertEqual(index.values(Int64.self).map(Int.init), data.train.globalIndex)
        let scores = try NPY.read(dir + "/seed-0.npy").values(Float.self), n = data.train.count
        let (net, _) = try ModelStore.load(from: w + "/models/seed-0")

        let top = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/seed-0.top.json"))) as? [String: Any])
        XCTAssertTrue((top["numbering"] as? String)?.contains("train_index.npy") == true)
        let queries = try XCTUnwrap(top["queries"] as? [[String: Any]])
        XCTAssertEqual(queries.count, data.queries.count)
        for (q, entry) in queries.enumerated() {
            for key in ["helpful", "harmful"] {
                let examples = try XCTUnwrap(entry[key] as? [[String: Any]])
                XCTAssertEqual(examples.count, 3)
                for e in examples {
                    let column = try XCTUnwrap((e["column"] as? NSNumber)?.intValue)
                    XCTAssertEqual((e["row"] as? NSNumber)?.intValue, data.train.globalIndex[column])
                    XCTAssertEqual(try XCTUnwrap((e["score"] as? NSNumber)?.doubleValue), Double(scores[q * n + column]), accuracy: 1e-6)
                    XCTAssertEqual((e["target"] as? NSNumber)?.doubleValue, Double(data.train.targets[column]))
                    // The prediction: the arg-max of the model's outputs for that example.
                    let ws = Workspace<Float>(shape: net.shape, capacity: 1)
                    let x = Array(data.train.inputs[(column * 64)..<((column + 1) * 64)])
                    x.withUnsafeBufferPointer { net.forward($0.baseAddress!, batch: 1, workspace: ws) }
                    let outputs = (0..<10).map { ws.output[$0] }
                    XCTAssertEqual((e["prediction"] as? NSNumber)?.doubleValue, Double(outputs.firstIndex(of: outputs.max()!)!))
                }
            }
        }
        // Numbers as numbers, the numbering stated, the printed objective the recorded one.
        let meta = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/seed-0.json"))) as? [String: Any])
        let solver = try XCTUnwrap(meta["solver"] as? [String: Any])
        XCTAssertTrue(solver["damping"] is NSNumber && !(solver["damping"] is String), "\(solver)")
        XCTAssertEqual(solver["method"] as? String, "identity")
        XCTAssertNotNil(meta["numbering"] as? String)

        // --queries takes the names score files list.
        let names = try XCTUnwrap(meta["queries"] as? [String])
        let s = try TestSupport.run(["score", "--workdir", w, "--method", "identity", "--queries", "\(names[2]),0", "--queries-name", "picked"])
        XCTAssertEqual(s.status, 0, s.stderr)
        let picked = try JSONDecoder().decode(ScoreMetadata.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/seed-0.picked.json")))
        XCTAssertEqual(picked.queries.first, names[2])
        let bad = try TestSupport.run(["score", "--workdir", w, "--method", "identity", "--queries", "test:999999", "--queries-name", "bad"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("--queries test:999999"), bad.stderr)
    }

    /// Files written before numbers (every solver value text) still read, as numbers.
    func testOldSolverReportsStillRead() throws {
        let old = #"{"signConvention": "positive score: helps", "method": "astra", "seed": 0, "damping": 0.001, "solver": {"method": "astra", "iterations": "200", "finalObjective": "-1.5"}, "objectiveTrace": [], "seconds": {}, "modelHash": "a", "configHash": "b", "dataHash": "c", "querySet": "default", "queries": [], "queriesHash": "d", "trainSize": 3}"#
        let meta = try JSONDecoder().decode(ScoreMetadata.self, from: Data(old.utf8))
        XCTAssertEqual(meta.solver["iterations"]?.number, 200)
        XCTAssertEqual(meta.solver["finalObjective"]?.number, -1.5)
        XCTAssertEqual(meta.solver["method"], .text("astra"))
        XCTAssertNil(meta.numbering)
        let round = try JSONDecoder().decode(ScoreMetadata.self, from: JSONEncoder().encode(meta))
        XCTAssertEqual(round.solver, meta.solver)
    }
}
