@testable import AstraDist
import Foundation
import XCTest

/// The CIFAR-10 binary loader on files written here in its format (the data is not on this
/// machine), the crop-and-flip augmentation, the `cifar10` preset training a few steps of
/// the full ResNet-9, and a network with batch norm and a residual trained under `mpirun`.
final class CIFARSettingTests: XCTestCase {
    /// CIFAR-10 binary files in a new directory: `records[k]` records in data_batch_{k+1}.bin
    /// and `test` in test_batch.bin; labels (file·7 + r) mod 10, pixels from the test stream.
    static func writeCIFAR(_ name: String, records: [Int] = [3, 2, 4, 1, 2], test: Int = 4) throws -> String {
        let dir = TestSupport.temporaryDirectory(name)
        var rng = CounterRandom(seed: 1, purpose: .test, index: 77)
        for (f, (file, n)) in zip(CIFAR10.trainingFiles + [CIFAR10.testFile], records + [test]).enumerated() {
            var bytes: [UInt8] = []
            for r in 0..<n {
                bytes.append(UInt8((f * 7 + r) % 10))
                for _ in 0..<3072 { bytes.append(UInt8(rng.nextInt(below: 256))) }
            }
            try Data(bytes).write(to: URL(fileURLWithPath: dir + "/" + file))
        }
        return dir
    }

    func testLoaderReadsTheBinaryFormat() throws {
        let dir = try Self.writeCIFAR("cifar-load")
        let (train, test) = try CIFAR10.load(directory: dir)
        XCTAssertEqual(train.count, 12); XCTAssertEqual(test.count, 4)
        XCTAssertEqual(train.featureCount, 3072); XCTAssertEqual(train.outputCount, 10)
        XCTAssertEqual(train.globalIndex, Array(0..<12))
        XCTAssertEqual(train.targets[3], Float((1 * 7 + 0) % 10), "the first record of data_batch_2.bin follows data_batch_1.bin's three")
        XCTAssertEqual(train.image, CIFAR10.layout)
        // Record 4 (data_batch_2.bin, record 1): planes R, G, B of 32×32 become [y, x, c],
        // each (byte/255 − mean_c)/std_c (kronfluence's Normalize).
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/data_batch_2.bin")))
        let record = Array(bytes[3073..<6146])
        for (y, x, c) in [(0, 0, 0), (5, 17, 1), (31, 31, 2), (12, 3, 0)] {
            let byte = record[1 + c * 1024 + y * 32 + x]
            let expected = (Float(byte) / 255 - [0.4914, 0.4822, 0.4465][c]) / [0.247, 0.243, 0.261][c]
            XCTAssertEqual(train.inputs[4 * 3072 + (y * 32 + x) * 3 + c], expected, "pixel (\(y), \(x), \(c))")
        }
        XCTAssertEqual(train.targets[4], Float(record[0]))
    }

    /// Missing, short and corrupt files: one line naming the file and what is wrong.
    func testLoaderErrors() throws {
        let missing = try Self.writeCIFAR("cifar-missing")
        try FileManager.default.removeItem(atPath: missing + "/data_batch_3.bin")
        XCTAssertThrowsError(try CIFAR10.load(directory: missing)) { XCTAssertTrue("\($0)".contains("data_batch_3.bin: file missing"), "\($0)") }
        let short = try Self.writeCIFAR("cifar-short")
        let path = short + "/test_batch.bin"
        try Data(try Data(contentsOf: URL(fileURLWithPath: path)).dropLast(100)).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try CIFAR10.load(directory: short)) { XCTAssertTrue("\($0)".contains("test_batch.bin: 12192 bytes is not a whole number of 3073-byte records"), "\($0)") }
        let corrupt = try Self.writeCIFAR("cifar-corrupt")
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: corrupt + "/data_batch_1.bin")))
        bytes[3073] = 12
        try Data(bytes).write(to: URL(fileURLWithPath: corrupt + "/data_batch_1.bin"))
        XCTAssertThrowsError(try CIFAR10.load(directory: corrupt)) { XCTAssertTrue("\($0)".contains("data_batch_1.bin: record 1 has label 12"), "\($0)") }
        // Through the command: one error line, nothing written.
        let work = TestSupport.temporaryDirectory("cifar-missing-work")
        let r = try TestSupport.run(["train", "--workdir", work, "--setting", "cifar10", "--data", "cifar:" + missing], timeout: 60)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertEqual(r.stderr.split(separator: "\n").filter { $0.hasPrefix("error:") }.count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("data_batch_3.bin"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: work + "/config.json"))
    }

    /// Augmentation against a direct pad–crop–flip of the image; an example's draw depends on
    /// (seed, epoch, global index) only, not on the batch it is in.
    func testAugmentationIsPadCropFlip() {
        let layout = ImageLayout(channels: 2, height: 5, width: 4, fill: [-1, -2]), d = layout.features
        let augmentation = ImageAugmentation(padding: 2, horizontalFlip: true)
        let images = (0..<(6 * d)).map { Float($0 % 97) / 10 }, indices = [40, 3, 17, 8, 1000, 21]
        var batch = images, scratch = [Float](repeating: 0, count: d)
        batch.withUnsafeMutableBufferPointer { b in scratch.withUnsafeMutableBufferPointer { s in
            augmentation.apply(b.baseAddress!, globalIndices: indices, layout: layout, seed: 5, epoch: 2, scratch: s.baseAddress!)
        } }
        var flips = 0, crops = Set<Int>()
        for (e, n) in indices.enumerated() {
            let (top, left, flip) = augmentation.draw(seed: 5, epoch: 2, globalIndex: n)
            flips += flip ? 1 : 0; crops.insert(top * 5 + left)
            // Padded image, then the window at (top, left), then the mirror.
            let ph = 5 + 4, pw = 4 + 4
            var padded = [Float](repeating: 0, count: ph * pw * 2)
            for y in 0..<ph { for x in 0..<pw { for c in 0..<2 {
                let inside = y >= 2 && y < 7 && x >= 2 && x < 6
                padded[(y * pw + x) * 2 + c] = inside ? images[e * d + ((y - 2) * 4 + (x - 2)) * 2 + c] : layout.fill[c]
            } } }
            for y in 0..<5 { for x in 0..<4 { for c in 0..<2 {
                let sx = flip ? 3 - x : x
                XCTAssertEqual(batch[e * d + (y * 4 + x) * 2 + c], padded[((y + top) * pw + sx + left) * 2 + c], "example \(n) (\(y), \(x), \(c))")
            } } }
        }
        XCTAssertTrue(flips > 0 && flips < 6 && crops.count > 1, "draws vary: \(flips) flips, \(crops.count) crops")
        var alone = Array(images[(2 * d)..<(3 * d)])
        alone.withUnsafeMutableBufferPointer { b in scratch.withUnsafeMutableBufferPointer { s in
            augmentation.apply(b.baseAddress!, globalIndices: [17], layout: layout, seed: 5, epoch: 2, scratch: s.baseAddress!)
        } }
        XCTAssertEqual(alone, Array(batch[(2 * d)..<(3 * d)]))
        XCTAssertNotEqual((0..<20).map { augmentation.draw(seed: 5, epoch: 2, globalIndex: $0).top }, (0..<20).map { augmentation.draw(seed: 5, epoch: 3, globalIndex: $0).top })
    }

    /// The `cifar10` preset: the full ResNet-9 (batch norm, residual pairs) trains two steps at
    /// batch 4 on generated files with the one-cycle schedule and augmentation; the model keeps
    /// its batch-norm state, and records the rate of its last step.
    func testCIFARPresetTrainsAFewSteps() throws {
        let data = try Self.writeCIFAR("cifar-preset")
        let dir = TestSupport.temporaryDirectory("cifar-preset-work")
        let r = try TestSupport.run(["train", "--workdir", dir, "--setting", "cifar10", "--data", "cifar:" + data, "--train-size", "8", "--query-size", "2",
                                     "--batch-size", "4", "--epochs", "1", "--seeds", "0"], timeout: 300)
        XCTAssertEqual(r.status, 0, r.stderr)
        let model = dir + "/models/seed-0"
        let (net, description) = try ModelStore.load(from: model)
        XCTAssertEqual(net.shape.layerCount, 9); XCTAssertEqual(net.shape.normalizations.count, 8)
        XCTAssertEqual(net.shape.operations.filter { if case .residual = $0 { true } else { false } }.count, 2)
        XCTAssertEqual(net.shape.parameterCount, 64 * 27 + 128 * 1600 + 2 * 128 * 1152 + 256 * 1152 + 2 * 256 * 2304 + 128 * 2304 + 10 * 128)
        // Two steps of a one-cycle run peaking at 0.4 of them: the last step's rate is 0.4·(2 − 1)/(2 − 0.4).
        XCTAssertEqual(description.learningRate ?? 0, 0.25, accuracy: 1e-12)
        let first = try NPY.read(model + "/batchnorm-0.npy").values(Float.self)
        XCTAssertTrue(first[(2 * 64)..<(3 * 64)].contains { $0 != 0 }, "running means moved")
        XCTAssertTrue(first[0..<64].contains { $0 != 1 }, "γ trained")
        let config = try String(contentsOfFile: dir + "/config.json", encoding: .utf8)
        XCTAssertTrue(config.contains("\"oneCyclePeak\" : 0.2") && config.contains("\"padding\" : 4"), config)
    }

    /// A small network with batch norm and a residual (by `--config operations`) on the
    /// cifar10 recipe (augmentation, one cycle): tier 1, seeds trained under `mpirun -n 2` are
    /// byte-identical to the same seeds trained alone; then fit and EK-FAC scores (frozen
    /// batch norm) run on it.
    func testBatchNormResidualTrainingIsRankCountInvariant() throws {
        let data = try Self.writeCIFAR("cifar-ranks", records: [6, 5, 5, 4, 4], test: 5)
        let ops = """
        {"operations": [
          {"op": "conv2d", "channels": 3, "height": 32, "width": 32, "filters": 4, "kernel": 3, "stride": 2, "padding": 1, "bias": false},
          {"op": "batchnorm2d", "channels": 4, "height": 16, "width": 16}, {"op": "relu"},
          {"op": "conv2d", "channels": 4, "height": 16, "width": 16, "filters": 4, "kernel": 3, "stride": 1, "padding": 1, "bias": false},
          {"op": "batchnorm2d", "channels": 4, "height": 16, "width": 16}, {"op": "relu"}, {"op": "residual", "from": 3},
          {"op": "globalmaxpool", "channels": 4, "height": 16, "width": 16}, {"op": "linear", "inputs": 4, "outputs": 10}]}
        """
        let configFile = TestSupport.temporaryDirectory("cifar-ranks-config") + "/small.json"
        try ops.write(toFile: configFile, atomically: true, encoding: .utf8)
        let flags = ["--setting", "cifar10", "--data", "cifar:" + data, "--config", configFile, "--train-size", "24", "--query-size", "3",
                     "--batch-size", "8", "--epochs", "3", "--seeds", "0,1"]
        let alone = TestSupport.temporaryDirectory("cifar-ranks1"), two = TestSupport.temporaryDirectory("cifar-ranks2")
        let r1 = try TestSupport.run(["train", "--workdir", alone] + flags, timeout: 300)
        XCTAssertEqual(r1.status, 0, r1.stderr)
        let r2 = try TestSupport.run(["train", "--workdir", two] + flags, ranks: 2, timeout: 300)
        XCTAssertEqual(r2.status, 0, r2.stderr)
        for s in 0...1 {
            for file in ["layer-0", "layer-1", "layer-2", "batchnorm-0", "batchnorm-1", "model"].map({ $0 == "model" ? "model.json" : $0 + ".npy" }) {
                let a = FileManager.default.contents(atPath: "\(alone)/models/seed-\(s)/\(file)")
                XCTAssertNotNil(a, file)
                XCTAssertEqual(a, FileManager.default.contents(atPath: "\(two)/models/seed-\(s)/\(file)"), "seed \(s) \(file)")
            }
        }
        XCTAssertNotEqual(FileManager.default.contents(atPath: "\(alone)/models/seed-0/batchnorm-1.npy"),
                          FileManager.default.contents(atPath: "\(alone)/models/seed-1/batchnorm-1.npy"))
        for args in [["fit", "--seeds", "0"], ["score", "--method", "ekfac", "--seeds", "0"]] {
            let r = try TestSupport.run(args + ["--workdir", alone], timeout: 300)
            XCTAssertEqual(r.status, 0, "\(args): \(r.stderr)")
        }
        let scores = try NPY.read("\(alone)/scores/ekfac/seed-0.npy")
        XCTAssertEqual(scores.shape, [3, 24])
        XCTAssertTrue(scores.doubles.allSatisfy(\.isFinite) && scores.doubles.contains { $0 != 0 })
    }
}
