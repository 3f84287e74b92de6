import Foundation

/// CIFAR-10's binary version (`cifar-10-batches-bin/`): `data_batch_1.bin` … `data_batch_5.bin`
/// (training) and `test_batch.bin`, each of records of 1 label byte (0–9) and 3072 pixel bytes,
/// the 32×32 red plane, then green, then blue, each row-major. The official files hold 10000
/// records each; a file of any positive whole number of records is read (tests write small ones).
public enum CIFAR10 {
    public static let side = 32, channels = 3, recordSize = 1 + 3 * 32 * 32
    public static let trainingFiles = (1...5).map { "data_batch_\($0).bin" }, testFile = "test_batch.bin"
    /// kronfluence's `examples/cifar/pipeline.py` normalisation (torchvision `Normalize`).
    public static let mean: [Float] = [0.4914, 0.4822, 0.4465], std: [Float] = [0.247, 0.243, 0.261]
    public static let hint = "--data cifar:DIR needs CIFAR-10's binary version (cifar-10-binary.tar.gz, folder cifar-10-batches-bin: data_batch_1.bin … data_batch_5.bin, test_batch.bin)"

    /// The input layout: `[y, x, c]`, black padding at each channel's normalised zero.
    public static var layout: ImageLayout {
        ImageLayout(channels: channels, height: side, width: side, fill: (0..<channels).map { (0 - mean[$0]) / std[$0] })
    }

    /// The training files (one dataset, global index = position across the five files) and the
    /// test file of `directory`, inputs `(pixel/255 − mean_c)/std_c` in float32 in the
    /// `[y, x, c]` layout, 10 classes. Throws one line naming the file for a missing or
    /// unreadable file, one that is empty or not a whole number of records, or a label beyond 9.
    public static func load(directory: String) throws -> (train: Dataset, test: Dataset) {
        let paths = trainingFiles.map { (directory as NSString).appendingPathComponent($0) }
        var train = try dataset(paths), test = try dataset([(directory as NSString).appendingPathComponent(testFile)])
        train.image = layout; test.image = layout
        return (train, test)
    }

    /// The records of `paths` in order as one dataset.
    static func dataset(_ paths: [String]) throws -> Dataset {
        var records: [[UInt8]] = []
        for path in paths {
            guard FileManager.default.fileExists(atPath: path) else { throw AstraError("cannot read \(path): file missing; \(hint)") }
            guard let data = FileManager.default.contents(atPath: path) else { throw AstraError("cannot read \(path): unreadable; \(hint)") }
            guard !data.isEmpty, data.count % recordSize == 0 else {
                throw AstraError("\(path): \(data.count) bytes is not a whole number of \(recordSize)-byte records (1 label + 3072 pixels; the official files hold 10000): truncated or not the binary version; \(hint)")
            }
            let bytes = [UInt8](data)
            for r in 0..<(bytes.count / recordSize) where bytes[r * recordSize] > 9 {
                throw AstraError("\(path): record \(r) has label \(bytes[r * recordSize]) (CIFAR-10 labels are 0–9): corrupt, or CIFAR-100's format; \(hint)")
            }
            records.append(bytes)
        }
        let n = records.reduce(0) { $0 + $1.count / recordSize }, d = recordSize - 1, plane = side * side
        try MemoryBudget.check(count: MemoryBudget.product([n, d]), elementSize: MemoryLayout<Float>.stride, what: "\(n) CIFAR-10 images as float32", fix: "use smaller files")
        // The normalised value of each byte per channel, in float32 as torchvision computes it.
        let table = (0..<channels).map { c in (0..<256).map { (Float($0) / 255 - mean[c]) / std[c] } }
        var inputs = [Float](repeating: 0, count: n * d), targets = [Float](repeating: 0, count: n)
        var row = 0
        for bytes in records {
            for r in 0..<(bytes.count / recordSize) {
                let at = r * recordSize
                targets[row] = Float(bytes[at])
                // Planes R, G, B (channel-major) to the [y, x, c] layout.
                for c in 0..<channels { for p in 0..<plane { inputs[row * d + p * channels + c] = table[c][Int(bytes[at + 1 + c * plane + p])] } }
                row += 1
            }
        }
        return Dataset(task: .classification, featureCount: d, outputCount: 10, inputs: inputs, targets: targets)
    }
}
