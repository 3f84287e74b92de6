import Foundation
import XCTest
import AstraDist

/// Section 4 of issue 15 (data level): degenerate data is refused with one line naming the
/// file and what is wrong, and metrics that are undefined are written as JSON null.
final class DegenerateDataTests: XCTestCase {
    var dir: String!
    override func setUp() { dir = TestSupport.temporaryDirectory("degenerate") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// The `csv` preset on a file with `text`.
    func config(_ name: String, _ text: String) throws -> ExperimentConfig {
        let path = dir + "/" + name
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(text.utf8)))
        var c = try TestSupport.config("csv")
        c.data = "csv:" + path; c.target = "y"
        return c
    }

    func testConstantTargetIsRefused() throws {
        let c = try config("const.csv", "y,a\n" + (0..<20).map { "5,\($0)\n" }.joined())
        assertAstraError(try PreparedData.load(c), [dir + "/const.csv", "target column 'y' is constant", "std 0", "R² are undefined"])
    }

    func testTooFewRowsAreRefused() throws {
        assertAstraError(try PreparedData.load(config("one.csv", "y,a\n1,2\n")), [dir + "/one.csv", "1 data row", "at least 2 training rows"])
        assertAstraError(try PreparedData.load(config("two.csv", "y,a\n1,2\n3,4\n")), [dir + "/two.csv", "at least 2 training rows"])
    }

    func testCellBeyondFloat32IsRefusedAtLoad() throws {
        let c = try config("big.csv", "y,a\n" + (0..<20).map { "\($0),\($0 == 7 ? "1e300" : "\($0)")\n" }.joined())
        assertAstraError(try PreparedData.load(c), [dir + "/big.csv", "out of float32 range", "line 9", "column 1 (\"a\")"])
        let t = try config("bigtarget.csv", "y,a\n-4e38,1\n1,2\n2,3\n")
        assertAstraError(try PreparedData.load(t), [dir + "/bigtarget.csv", "out of float32 range", "line 2", "column 0"])
    }

    /// One held-out row: its R² is undefined (SST = 0) and recorded as null, not an EncodingError.
    func testUndefinedRSquaredIsWrittenAsNull() throws {
        let data = try PreparedData.load(config("three.csv", "y,a\n1,2\n2,5\n3,1\n"))
        XCTAssertEqual(data.test.count, 1)
        let net = Trainer<Float>(shape: NetworkShape(widths: [1, 3, 1]), recipe: TrainingRecipe(learningRate: 0.01, momentum: 0, weightDecay: 0, batchSize: 2, epochs: 1))
            .train(on: data.train, seed: 1)
        let test = net.evaluate(on: data.test)
        XCTAssertTrue(test.r2?.isNaN ?? false, "\(String(describing: test.r2))")
        let path = dir + "/metrics.json"
        try WorkDirectory.writeJSON(TrainingMetrics(train: net.evaluate(on: data.train), test: test, seconds: .infinity), to: path)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertTrue(text.contains("\"r2\" : null") && text.contains("\"seconds\" : null"), text)
        let back = try WorkDirectory.readJSON(Evaluation.self, from: writeTest(test), hint: "")
        XCTAssertNil(back.r2)
    }

    func writeTest(_ e: Evaluation) throws -> String {
        let p = dir + "/eval.json"
        try WorkDirectory.writeJSON(e, to: p)
        return p
    }
}
