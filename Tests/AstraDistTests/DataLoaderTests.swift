import Foundation
import XCTest
import AstraDist

/// Loaders against the real files (values checked beforehand with Python/NumPy) and against
/// malformed files written to a temporary directory.
final class DataLoaderTests: XCTestCase {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let shared = (repo as NSString).deletingLastPathComponent + "/shared/data"
    static let digitsPath = repo + "/data/digits/digits.csv.gz"
    static let hint = "HINT-get-it-from-somewhere"

    /// MNIST decompressed once for all tests (~55 MB of IDX).
    static let mnist: Result<(train: Dataset, test: Dataset), Error>? = {
        let dir = shared + "/mnist"
        guard FileManager.default.fileExists(atPath: dir + "/train-images-idx3-ubyte.gz") else { return nil }
        return Result { try loadMNISTStyle(directory: dir, hint: hint) }
    }()

    var tmp: String!

    override func setUpWithError() throws {
        tmp = NSTemporaryDirectory() + "astra-data-tests-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: tmp)
    }

    // MARK: helpers

    func write(_ name: String, _ bytes: [UInt8]) -> String {
        let p = tmp + "/" + name
        XCTAssertTrue(FileManager.default.createFile(atPath: p, contents: Data(bytes)))
        return p
    }
    func write(_ name: String, _ text: String) -> String { write(name, Array(text.utf8)) }

    /// Asserts `body` throws an AstraError whose single-line message contains every string in `parts`.
    func assertError<T>(_ body: @autoclosure () throws -> T, _ parts: [String], file: StaticString = #filePath, line: UInt = #line) {
        assertAstraError(try body(), parts, file: file, line: line)
    }

    static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
    static func idxImages(count: Int, rows: Int, cols: Int, pixels: [UInt8]) -> [UInt8] {
        be32(2051) + be32(UInt32(count)) + be32(UInt32(rows)) + be32(UInt32(cols)) + pixels
    }
    static func idxLabels(_ labels: [UInt8], count: Int? = nil) -> [UInt8] {
        be32(2049) + be32(UInt32(count ?? labels.count)) + labels
    }

    // MARK: real files

    func testMNIST() throws {
        guard let result = Self.mnist else { throw TestDataMissing("MNIST not found under \(Self.shared)/mnist") }
        let (train, test) = try result.get()
        XCTAssertEqual(train.count, 60000)
        XCTAssertEqual(test.count, 10000)
        for d in [train, test] {
            XCTAssertEqual(d.task, .classification)
            XCTAssertEqual(d.featureCount, 784)
            XCTAssertEqual(d.outputCount, 10)
            XCTAssertEqual(d.inputs.count, d.count * 784)
            XCTAssertEqual(d.globalIndex, Array(0..<d.count))
        }
        XCTAssertEqual(train.targets[0], 5)
        XCTAssertEqual(Array(test.targets[0..<5]), [7, 2, 1, 0, 4])
        // Pixel (row 5, col 12) of image 0 is 3 and (14, 14) is 240 (NumPy), stored as x/255.
        XCTAssertEqual(train.inputs[5 * 28 + 12], Float(3) / 255)
        XCTAssertEqual(train.inputs[5 * 28 + 16], Float(126) / 255)
        XCTAssertEqual(train.inputs[14 * 28 + 14], Float(240) / 255)
        XCTAssertEqual(train.inputs[0], 0)
        // Class counts (README) and the exact integer pixel sums (NumPy): every byte round-trips.
        var counts = [Int](repeating: 0, count: 10)
        for t in train.targets { counts[Int(t)] += 1 }
        XCTAssertEqual(counts, [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
        var total = 0, lo: Float = 1, hi: Float = 0
        train.inputs.withUnsafeBufferPointer { p in
            for v in p {
                total += Int((Double(v) * 255).rounded())
                lo = min(lo, v); hi = max(hi, v)
            }
        }
        XCTAssertEqual(total, 1_567_298_545)
        XCTAssertEqual(lo, 0)
        XCTAssertEqual(hi, 1)
        var first = 0, last = 0, test0 = 0
        for k in 0..<784 {
            first += Int((Double(train.inputs[k]) * 255).rounded())
            last += Int((Double(train.inputs[59999 * 784 + k]) * 255).rounded())
            test0 += Int((Double(test.inputs[k]) * 255).rounded())
        }
        XCTAssertEqual([first, last, test0], [27525, 20920, 18454])
    }

    func testFashionMNIST() throws {
        let dir = "/usr/share/datasets/fashion-mnist"
        guard FileManager.default.fileExists(atPath: dir + "/train-images-idx3-ubyte.gz") else {
            throw TestDataMissing("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
        }
        let (train, test) = try loadMNISTStyle(directory: dir, hint: Self.hint)
        XCTAssertEqual(train.count, 60000)
        XCTAssertEqual(test.count, 10000)
        XCTAssertEqual(train.outputCount, 10)
        XCTAssertEqual(Array(train.targets[0..<12]), [9, 0, 0, 3, 0, 2, 7, 2, 5, 5, 0, 9])
        var counts = [Int](repeating: 0, count: 10), testCounts = counts
        for t in train.targets { counts[Int(t)] += 1 }
        for t in test.targets { testCounts[Int(t)] += 1 }
        XCTAssertEqual(counts, [Int](repeating: 6000, count: 10))
        XCTAssertEqual(testCounts, [Int](repeating: 1000, count: 10))
        let first = (0..<784).reduce(0) { $0 + Int((Double(train.inputs[$1]) * 255).rounded()) }
        XCTAssertEqual(first, 76247)
    }

    func testConcrete() throws {
        let path = Self.shared + "/concrete/concrete.csv"
        guard FileManager.default.fileExists(atPath: path) else { throw TestDataMissing("\(path) not found") }
        let name = "Concrete compressive strength(MPa, megapascals)"
        let table = try CSVTable.load(path, hasHeader: true, hint: Self.hint)
        XCTAssertEqual(table.header?.count, 9)
        XCTAssertEqual(table.header?[8], name + " ")   // quoted, comma inside, trailing space kept
        XCTAssertEqual(table.header?[3], "Water  (component 4)(kg in a m^3 mixture)")
        XCTAssertEqual(table.rows.count, 1030)
        XCTAssertEqual(try table.columnIndex(name), 8)
        XCTAssertEqual(try table.columnIndex("8"), 8)
        XCTAssertEqual(try table.columnIndex("  Age (day) "), 7)
        XCTAssertEqual(table.lineNumbers.first, 2)
        let y = try table.numericColumns([8])
        XCTAssertEqual(y[0], 79.98611076)
        XCTAssertEqual(y[1], 61.887365759999994)
        XCTAssertEqual(y.reduce(0, +), 36892.37090089701, accuracy: 1e-8)

        for ref in [name, "8", name + " "] {
            let d = try loadCSVRegression(path: path, target: ref, hint: Self.hint)
            XCTAssertEqual(d.task, .regression)
            XCTAssertEqual(d.count, 1030)
            XCTAssertEqual(d.featureCount, 8)
            XCTAssertEqual(d.outputCount, 1)
            XCTAssertEqual(Array(d.inputs[0..<8]), [540, 0, 0, 162, 2.5, 1040, 676, 28])
            XCTAssertEqual(d.targets[0], Float(79.98611076))
            XCTAssertEqual(Array(d.inputs[(1029 * 8)...]), [260.9, 100.5, 78.3, 200.6, 8.6, 864.5, 761.5, 28])
            XCTAssertEqual(d.targets[1029], Float(32.401235144))
            XCTAssertEqual(d.globalIndex, Array(0..<1030))
        }
        // Another target: features are the other 8 columns in order (strength moves to the end).
        let byAge = try loadCSVRegression(path: path, target: "Age (day)", hint: Self.hint)
        XCTAssertEqual(Array(byAge.inputs[0..<8]), [540, 0, 0, 162, 2.5, 1040, 676, Float(79.98611076)])
        XCTAssertEqual(byAge.targets[0], 28)
        assertError(try table.columnIndex("Strength"), [path, "no column \"Strength\"", "Age (day)", name, "0–8"])
        assertError(try table.columnIndex("9"), [path, "no column \"9\""])
    }

    func testDigits() throws {
        let d = try loadDigits(path: Self.digitsPath, hint: Self.hint)
        XCTAssertEqual(d.count, 1797)
        XCTAssertEqual(d.featureCount, 64)
        XCTAssertEqual(d.outputCount, 10)
        XCTAssertEqual(d.task, .classification)
        var counts = [Int](repeating: 0, count: 10)
        for t in d.targets { counts[Int(t)] += 1 }
        XCTAssertEqual(counts, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])
        XCTAssertEqual(Array(d.inputs[0..<6]), [0, 0, Float(5) / 16, Float(13) / 16, Float(9) / 16, Float(1) / 16])
        XCTAssertEqual(d.targets[0], 0)
        XCTAssertEqual(d.targets[1], 1)
        XCTAssertEqual(d.targets[1796], 8)
        XCTAssertEqual(d.inputs.reduce(0.0) { $0 + Double($1) * 16 }, 561718, accuracy: 1e-6)
        XCTAssertEqual(d.inputs.min(), 0)
        XCTAssertEqual(d.inputs.max(), 1)
        // The shipped file is the sklearn one; Gzip and plain reading agree after decompression.
        let raw = try Gzip.readAll(Self.digitsPath, hint: Self.hint)
        let plain = write("digits.csv", raw)
        let d2 = try loadDigits(path: plain, hint: Self.hint)
        XCTAssertEqual(d2.inputs, d.inputs)
        XCTAssertEqual(d2.targets, d.targets)
    }

    // MARK: gzip

    func testGzipPassThroughAndErrors() throws {
        let plain = write("plain.bin", [1, 2, 3, 0x1f])
        XCTAssertEqual(try Gzip.readAll(plain, hint: Self.hint), [1, 2, 3, 0x1f])
        XCTAssertEqual(try Gzip.readAll(write("empty.bin", [UInt8]()), hint: Self.hint), [])

        let missing = tmp + "/nope.gz"
        assertError(try Gzip.readAll(missing, hint: Self.hint), [missing, "missing", Self.hint])

        let gz = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.digitsPath)))
        let full = try Gzip.readAll(Self.digitsPath, hint: Self.hint)
        XCTAssertEqual(full.count, 264_712)   // Python: len(gzip.decompress(...))
        XCTAssertEqual(full.filter { $0 == 0x0a }.count, 1797)
        // Two concatenated members decode to both contents, as gzip -d does.
        let twice = try Gzip.readAll(write("twice.gz", gz + gz), hint: Self.hint)
        XCTAssertEqual(twice, full + full)

        let half = write("half.csv.gz", Array(gz[0..<(gz.count / 2)]))
        assertError(try Gzip.readAll(half, hint: Self.hint), [half, "truncated gzip", Self.hint])
        assertError(try CSVTable.load(half, hasHeader: false, hint: Self.hint), [half, "truncated gzip"])
        // Only the 8-byte trailer missing: still truncated.
        let noTrailer = write("notrailer.gz", Array(gz.dropLast(8)))
        assertError(try Gzip.readAll(noTrailer, hint: Self.hint), [noTrailer, "truncated gzip"])

        var bad = gz
        bad[bad.count - 8] ^= 0xff   // CRC-32 of the content
        let badCRC = write("badcrc.gz", bad)
        assertError(try Gzip.readAll(badCRC, hint: Self.hint), [badCRC, "corrupt gzip", "incorrect data check", Self.hint])
        var badHeader = gz
        badHeader[2] = 7             // compression method must be 8 (deflate)
        let badMethod = write("badmethod.gz", badHeader)
        assertError(try Gzip.readAll(badMethod, hint: Self.hint), [badMethod, "corrupt gzip"])
    }

    // MARK: IDX

    func testIDXSmallFilesAndLoaders() throws {
        let pixels: [UInt8] = [0, 255, 128, 1, 2, 3, 4, 5, 6, 7, 8, 9]
        let dir = tmp + "/mnistlike"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // Un-gzipped names (no .gz): accepted when the .gz is absent.
        for stem in ["train", "t10k"] {
            _ = FileManager.default.createFile(atPath: dir + "/\(stem)-images-idx3-ubyte", contents: Data(Self.idxImages(count: 3, rows: 2, cols: 2, pixels: pixels)))
            _ = FileManager.default.createFile(atPath: dir + "/\(stem)-labels-idx1-ubyte", contents: Data(Self.idxLabels(stem == "train" ? [3, 12, 0] : [1, 2, 3])))
        }
        let img = try IDX.loadImages(dir + "/train-images-idx3-ubyte", hint: Self.hint)
        XCTAssertEqual(img.count, 3); XCTAssertEqual(img.rows, 2); XCTAssertEqual(img.cols, 2)
        XCTAssertEqual(img.pixels, pixels)
        XCTAssertEqual(try IDX.loadLabels(dir + "/t10k-labels-idx1-ubyte", hint: Self.hint), [1, 2, 3])

        let (train, test) = try loadMNISTStyle(directory: dir, hint: Self.hint)
        XCTAssertEqual(train.count, 3)
        XCTAssertEqual(train.featureCount, 4)
        XCTAssertEqual(train.outputCount, 13)   // max label 12 + 1
        XCTAssertEqual(test.outputCount, 13)    // the same class count as training (test labels are 1–3)
        XCTAssertEqual(train.targets, [3, 12, 0])
        XCTAssertEqual(train.inputs, pixels.map { Float($0) / 255 })
        XCTAssertEqual(train.inputs[1], 1)
        XCTAssertEqual(train.globalIndex, [0, 1, 2])

        // Missing file in the directory.
        try FileManager.default.removeItem(atPath: dir + "/t10k-labels-idx1-ubyte")
        assertError(try loadMNISTStyle(directory: dir, hint: Self.hint), ["t10k-labels-idx1-ubyte.gz", "missing", Self.hint])

        // Count mismatch between images and labels.
        let im = write("im", Self.idxImages(count: 3, rows: 2, cols: 2, pixels: pixels))
        let lb = write("lb", Self.idxLabels([1, 2]))
        assertError(try loadIDXDataset(images: im, labels: lb, hint: Self.hint), [im, lb, "3 images", "2 labels"])
    }

    func testIDXErrors() throws {
        let pixels = [UInt8](repeating: 7, count: 12)
        // Bad magic: a labels file given as images, and random bytes.
        let labelsFile = write("labels-as-images", Self.idxLabels([1, 2, 3]))
        assertError(try IDX.loadImages(labelsFile, hint: Self.hint), [labelsFile, "bad magic number 2049", "expected 2051", "labels file", Self.hint])
        let junk = write("junk", Self.be32(0x1234_5678) + [UInt8](repeating: 0, count: 12))
        assertError(try IDX.loadLabels(junk, hint: Self.hint), [junk, "bad magic number 305419896", "expected 2049"])
        let short = write("short", [0, 0, 8])
        assertError(try IDX.loadImages(short, hint: Self.hint), [short, "shorter than the 16-byte header"])

        // Truncated payload: 3×2×2 = 12 bytes promised, 10 present.
        let cut = write("cut-images", Self.idxImages(count: 3, rows: 2, cols: 2, pixels: Array(pixels[0..<10])))
        assertError(try IDX.loadImages(cut, hint: Self.hint), [cut, "truncated IDX data", "12 bytes", "found 10", Self.hint])
        let cutLabels = write("cut-labels", Self.idxLabels([1, 2], count: 5))
        assertError(try IDX.loadLabels(cutLabels, hint: Self.hint), [cutLabels, "truncated IDX data", "5 bytes", "found 2"])
        let extra = write("extra-images", Self.idxImages(count: 3, rows: 2, cols: 2, pixels: pixels + [1]))
        assertError(try IDX.loadImages(extra, hint: Self.hint), [extra, "1 trailing bytes"])

        let missing = tmp + "/absent-idx3-ubyte.gz"
        assertError(try IDX.loadImages(missing, hint: Self.hint), [missing, "file missing", Self.hint])

        // A real .gz cut in half fails as truncated gzip, before any IDX check.
        let real = Self.shared + "/mnist/t10k-labels-idx1-ubyte.gz"
        if FileManager.default.fileExists(atPath: real) {
            let gz = [UInt8](try Data(contentsOf: URL(fileURLWithPath: real)))
            let half = write("t10k-labels-half.gz", Array(gz[0..<(gz.count / 2)]))
            assertError(try IDX.loadLabels(half, hint: Self.hint), [half, "truncated gzip", Self.hint])
            XCTAssertEqual(try IDX.loadLabels(real, hint: Self.hint).count, 10000)
        }
    }

    // MARK: CSV

    func testCSVParsing() throws {
        // BOM, CRLF, quoted fields with commas, doubled quotes, newline inside quotes, blank line.
        let text = "\u{FEFF}name,\"a, b\",c\r\n\"x \"\"q\"\", y\",1.5,-2e3\r\n\r\nplain,\"multi\nline\",\"\"\r\n"
        let p = write("q.csv", text)
        let t = try CSVTable.load(p, hasHeader: true, hint: Self.hint)
        XCTAssertEqual(t.header, ["name", "a, b", "c"])
        XCTAssertEqual(t.rows, [["x \"q\", y", "1.5", "-2e3"], ["plain", "multi\nline", ""]])
        XCTAssertEqual(t.lineNumbers, [2, 4])
        XCTAssertEqual(try t.columnIndex("a, b"), 1)
        XCTAssertEqual(try t.columnIndex(" c"), 2)
        XCTAssertEqual(try CSVTable(header: t.header, rows: [t.rows[0]]).numericColumns([1, 2]), [1.5, -2000])
        // A cell with a newline is shown escaped, so the message stays one line.
        assertError(try t.numericColumns([1]), [p, "line 4", "column 1 (\"a, b\")", "non-numeric value \"multi\\nline\""])

        let headerless = try CSVTable.load(write("n.csv", "1,2\n3,4"), hasHeader: false, hint: Self.hint)
        XCTAssertNil(headerless.header)
        XCTAssertEqual(try headerless.numericColumns([1, 0]), [2, 1, 4, 3])
        XCTAssertEqual(try headerless.columnIndex("1"), 1)
        assertError(try headerless.columnIndex("x"), ["no column \"x\"", "no header", "0–1"])

        // loadCSVRegression: header detected, quoted header name with comma, target in the middle.
        let reg = write("reg.csv", "f1,\"t, y \",f2\n1,10,2\n3,30,4\n")
        let d = try loadCSVRegression(path: reg, target: "t, y", hint: Self.hint)
        XCTAssertEqual(d.inputs, [1, 2, 3, 4])
        XCTAssertEqual(d.targets, [10, 30])
        let noHeader = try loadCSVRegression(path: write("nh.csv", "1,10,2\n3,30,4\n"), target: "1", hint: Self.hint)
        XCTAssertEqual(noHeader.count, 2)
        XCTAssertEqual(noHeader.targets, [10, 30])
    }

    func testCSVErrors() throws {
        let wrong = write("w.csv", "alpha,beta\n1,2\n")
        assertError(try loadCSVRegression(path: wrong, target: "gamma", hint: Self.hint), [wrong, "no column \"gamma\"", "\"alpha\"", "\"beta\""])

        let nonNumeric = write("nn.csv", "a,b,y\n1,2,3\n4,five,6\n")
        assertError(try loadCSVRegression(path: nonNumeric, target: "y", hint: Self.hint), [nonNumeric, "line 3", "column 1 (\"b\")", "non-numeric value \"five\""])
        let nan = write("nan.csv", "a,b,y\n1,2,3\n4,5,NaN\n")
        assertError(try loadCSVRegression(path: nan, target: "y", hint: Self.hint), [nan, "line 3", "column 2 (\"y\")", "non-finite value \"NaN\""])
        let inf = write("inf.csv", "a,y\n1,inf\n")
        assertError(try loadCSVRegression(path: inf, target: "y", hint: Self.hint), [inf, "line 2", "non-finite"])
        let empty = write("empty-cell.csv", "a,y\n1,\n")
        assertError(try loadCSVRegression(path: empty, target: "y", hint: Self.hint), [empty, "line 2", "empty cell"])

        let ragged = write("r.csv", "a,b,c\n1,2,3\n4,5\n")
        assertError(try CSVTable.load(ragged, hasHeader: true, hint: Self.hint), [ragged, "ragged row", "line 3 has 2 fields", "header (line 1) has 3"])
        // An unquoted comma makes a row ragged, the quoted one does not.
        let commas = write("c.csv", "name,v\n\"Smith, J\",1\nSmith, J,2\n")
        assertError(try CSVTable.load(commas, hasHeader: true, hint: Self.hint), [commas, "line 3 has 3 fields"])
        let unterminated = write("u.csv", "a,b\n\"open,1\n2,3\n")
        assertError(try CSVTable.load(unterminated, hasHeader: true, hint: Self.hint), [unterminated, "line 2", "never closed"])
        let afterQuote = write("aq.csv", "a,b\n\"x\"y,1\n")
        assertError(try CSVTable.load(afterQuote, hasHeader: true, hint: Self.hint), [afterQuote, "line 2", "after a closing quote"])
        let missing = tmp + "/missing.csv"
        assertError(try CSVTable.load(missing, hasHeader: true, hint: Self.hint), [missing, "file missing", Self.hint])
        let blank = write("blank.csv", "\n\n")
        assertError(try CSVTable.load(blank, hasHeader: true, hint: Self.hint), [blank, "empty CSV"])

        // Digits-specific checks.
        let wide = write("d.csv", "1,2,3\n")
        assertError(try loadDigits(path: wide, hint: Self.hint), [wide, "3 columns, expected 65", Self.hint])
        let badPixel = write("dp.csv", (Array(repeating: "0", count: 63) + ["17", "3"]).joined(separator: ",") + "\n")
        assertError(try loadDigits(path: badPixel, hint: Self.hint), [badPixel, "line 1, column 63", "outside 0–16"])
        let badLabel = write("dl.csv", (Array(repeating: "0", count: 64) + ["2.5"]).joined(separator: ",") + "\n")
        assertError(try loadDigits(path: badLabel, hint: Self.hint), [badLabel, "line 1, column 64", "label 2.5"])
    }
}
