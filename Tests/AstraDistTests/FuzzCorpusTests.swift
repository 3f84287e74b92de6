import Foundation
import XCTest
import AstraDist

/// Section 2 of issue 15: no input crashes the program. Replays every input the fuzz driver
/// (`launch/fuzz.sh`) ever saved — each once crashed, hung or raised a raw error — through
/// its parser in-process, and checks the specific refusals the issue lists, each naming the
/// file and saying what it would take.
final class FuzzCorpusTests: XCTestCase {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("FuzzCorpus").path

    func testCorpusInputsEndInAValueOrAnAstraError() throws {
        var replayed = 0
        for format in FileFormat.allCases {
            let dir = Self.corpus + "/" + format.rawValue
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
            for name in names.sorted() where name.hasSuffix(".bin") {
                let bytes = try XCTUnwrap(FileManager.default.contents(atPath: dir + "/" + name))
                do { try format.parse([UInt8](bytes), path: name) }
                catch let e as AstraError { XCTAssertTrue(e.message.contains(name) && !e.message.contains("\n"), "\(format)/\(name): \(e.message)") }
                catch { XCTFail("\(format)/\(name): not an AstraError: \(type(of: error)): \(error)") }
                replayed += 1
            }
        }
        // The corpus ships with the repository; an empty replay would prove nothing.
        XCTAssertGreaterThan(replayed, 0, "no corpus files under \(Self.corpus)")
    }

    /// Every format's parser accepts a valid file (so the corpus replay is not vacuous).
    func testValidFilesParse() throws {
        let header = Journal.encodeHeader(FileFormat.journalHeader)
        try FileFormat.journal.parse(header + Journal.encodeRecord(job: 2, values: [1]), path: "j")
        try FileFormat.npy.parse(NPY.encode([Float](repeating: 1, count: 6), shape: [2, 3], dtype: .float32), path: "a.npy")
        try FileFormat.idx.parse(DataLoaderTests.idxImages(count: 1, rows: 2, cols: 2, pixels: [1, 2, 3, 4]), path: "i")
        try FileFormat.csv.parse(Array("y,x\n1,2\n3,4\n".utf8), path: "c.csv")
    }

    /// A one-character path (Foundation's path splitting trapped on it: `score --trace t`).
    func testOneCharacterPathsDoNotTrap() throws {
        XCTAssertEqual(FilePath.parent(of: "t"), "")
        XCTAssertEqual(FilePath.parent(of: "a/b"), "a")
        XCTAssertEqual(FilePath.parent(of: "/j"), "/")
        XCTAssertEqual(FilePath.parent(of: "a//b/"), "a")
        XCTAssertEqual(FilePath.parent(of: "/"), "/")
        let dir = TestSupport.temporaryDirectory("short-path")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cwd = FileManager.default.currentDirectoryPath
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(dir))
        defer { _ = FileManager.default.changeCurrentDirectoryPath(cwd) }
        try AtomicFile.write("x", to: "t")
        XCTAssertEqual(try AtomicFile.read("t", hint: ""), Array("x".utf8))
        assertError(try FileFormat.journal.parse([1, 2, 3], path: "j"), ["j is not a valid ground-truth journal"])
    }

    // MARK: the cases of the issue

    func testIDXTestImagesOfAnotherSizeAreRefused() throws {
        let dir = TestSupport.temporaryDirectory("idx-size")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func put(_ name: String, _ b: [UInt8]) { _ = FileManager.default.createFile(atPath: dir + "/" + name, contents: Data(b)) }
        put("train-images-idx3-ubyte", DataLoaderTests.idxImages(count: 2, rows: 28, cols: 28, pixels: [UInt8](repeating: 9, count: 2 * 784)))
        put("train-labels-idx1-ubyte", DataLoaderTests.idxLabels([1, 2]))
        put("t10k-images-idx3-ubyte", DataLoaderTests.idxImages(count: 1, rows: 27, cols: 27, pixels: [UInt8](repeating: 9, count: 729)))
        put("t10k-labels-idx1-ubyte", DataLoaderTests.idxLabels([3]))
        assertError(try loadMNISTStyle(directory: dir, hint: "h"), [dir + "/t10k-images-idx3-ubyte", "27×27", "28×28"])
        // Through the CLI: one error line, no trap.
        let r = try TestSupport.run(["train", "--workdir", dir + "/w", "--setting", "mnist", "--data", "idx:" + dir, "--train-size", "2"], timeout: 60)
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.hasPrefix("error: ") && r.stderr.contains("27×27"), r.stderr)
    }

    func testEmptyOrNegativeWidthsInModelJSONAreRefused() throws {
        for (widths, what) in [("[]", "at least an input and an output"), ("[-3]", "at least an input"), ("[64, -3, 10]", "width -3 at position 1"), ("[64, 0, 10]", "width 0")] {
            let json = #"{"checkpoints": [], "configHash": "a", "dataHash": "b", "loss": "mse", "parametersHash": "c", "seed": 0, "steps": 1, "widths": \#(widths)}"#
            assertError(try ModelStore.decodeDescription(Array(json.utf8), path: "W/models/seed-0/model.json"), ["W/models/seed-0/model.json", what, "astra-dist train"])
        }
        // A key of the wrong type is named by its path.
        let bad = #"{"checkpoints": [], "configHash": "a", "dataHash": "b", "loss": "mse", "parametersHash": "c", "seed": 0, "steps": "x", "widths": [1, 1]}"#
        assertError(try ModelStore.decodeDescription(Array(bad.utf8), path: "m.json"), ["m.json", "key 'steps'", "wrong type"])
    }

    func testHugeNPYShapeIsRefused() throws {
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1099511627776), }"
        header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
        let bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count), 0] + Array(header.utf8)
        assertError(try NPY.decode(bytes, path: "x/layer-0.npy"), ["x/layer-0.npy", "1099511627776", "corrupt header"])
        // Negative dimensions and a version-2 header cut before its length field.
        let negative = Array(bytes[..<10]) + Array(header.replacingOccurrences(of: "1099511627776, 1099511627776", with: "-2, -3                      ").utf8)
        assertError(try NPY.decode(negative, path: "n.npy"), ["n.npy", "non-negative"])
        assertError(try NPY.decode([0x93] + Array("NUMPY".utf8) + [2, 0, 1, 0], path: "v2.npy"), ["v2.npy", "truncated header"])
    }

    func testImpossibleAllocationsAreRefusedWithTheSizeNeeded() throws {
        assertError(try NetworkShape.validated(widths: [1 << 40, 8, 10], source: "W/model.json", fix: "re-train"), ["W/model.json", "would need", "TiB", "this machine has"])
        assertError(try NetworkShape.validated(widths: [Int.max, Int.max], source: "f.json", fix: "x"), ["f.json", "overflows"])
        XCTAssertEqual(try NetworkShape.validated(widths: [4, 3, 2], source: "s", fix: "x").parameterCount, 5 * 3 + 4 * 2)
        assertError(try MemoryBudget.check(count: MemoryBudget.physicalBytes, elementSize: 2, what: "a thing", fix: "smaller"), ["a thing", "would need", "smaller"])
        // Ground-truth sizes, from options or config.json, are checked where the data is loaded.
        var c = try TestSupport.config("digits")
        c.masks = 100_000_000_000
        assertAstraError(try PreparedData.load(c), ["--masks 100000000000", "would need", "fewer --masks"])
        c.masks = 4; c.repeats = Int.max
        assertAstraError(try PreparedData.load(c), ["--repeats \(Int.max)", "overflows"])
        // An absurd --hidden is refused before any allocation, by the CLI.
        let dir = TestSupport.temporaryDirectory("hidden")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try TestSupport.run(["train", "--workdir", dir, "--hidden", "100000000,100000000", "--epochs", "1"], timeout: 60)
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("--hidden") && r.stderr.contains("would need"), r.stderr)
        let seeds = try TestSupport.run(["train", "--workdir", dir, "--seeds", "0-100000000000"], timeout: 60)
        XCTAssertEqual(seeds.status, 1, seeds.stderr)
        XCTAssertTrue(seeds.stderr.hasPrefix("error: ") && seeds.stderr.contains("--seeds range 0-100000000000"), seeds.stderr)
    }

    func testManifestWithHugeLayerEntryIsRefused() throws {
        let json = #"{"exampleCount": 5, "fisher": "sampled", "format": "astra-dist-ekfac-1", "meta": {}, "widths": [2, 3], "layers": [{"files": {}, "inputs": 9223372036854775807, "outputs": 3}]}"#
        assertError(try EKFAC.validateManifest(Array(json.utf8), path: "F/factors.json"), ["F/factors.json", "9223372036854775807 inputs"])
    }

    func testConfigErrorsNameTheFileAndTheKey() throws {
        let config = try TestSupport.config("digits")
        let text = config.canonicalJSON()
        let mistyped = text.replacingOccurrences(of: "\"batchSize\" : \(config.recipe.batchSize)", with: "\"batchSize\" : \"many\"")
        assertError(try WorkDirectory.decodeConfig(Array(mistyped.utf8), path: "W/config.json"), ["W/config.json", "key 'recipe.batchSize'", "wrong type"])
        let missing = text.replacingOccurrences(of: "\"alpha\"", with: "\"alfa\"")
        assertError(try WorkDirectory.decodeConfig(Array(missing.utf8), path: "W/config.json"), ["W/config.json", "missing key 'alpha'"])
        let invalid = text.replacingOccurrences(of: "\"masks\" : \(config.masks)", with: "\"masks\" : 1")
        assertError(try WorkDirectory.decodeConfig(Array(invalid.utf8), path: "W/config.json"), ["W/config.json key masks", "must be ≥ 2"])
        assertError(try WorkDirectory.decodeConfig(Array("{\"alpha\": ".utf8), path: "W/config.json"), ["W/config.json", "not valid JSON"])
    }

    func assertError<T>(_ body: @autoclosure () throws -> T, _ parts: [String], file: StaticString = #filePath, line: UInt = #line) {
        assertAstraError(try body(), parts, file: file, line: line)
    }
}
