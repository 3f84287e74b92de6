import Foundation

// Dataset loaders for the file formats the experiments use. Each returns rows in file order
// with `globalIndex` = the row (or item) index in its file; no shuffling, no standardising
// (the caller splits and standardises with training statistics, spec §10).

/// An IDX image/label pair as a classification dataset: N×(rows·cols) inputs scaled to
/// [0, 1] (pixel/255), targets = class index, C = max(10, max label + 1).
/// Throws if either file fails `IDX` checks, their counts differ or the float32 inputs
/// would not fit in memory.
/// Complexity: O(N·rows·cols); peak memory ≈ 5 bytes per pixel.
public func loadIDXDataset(images: String, labels: String, hint: String) throws -> Dataset {
    try idxDataset(images: images, labels: labels, hint: hint).data
}

/// `loadIDXDataset` with the image size, for checks across files.
func idxDataset(images: String, labels: String, hint: String) throws -> (data: Dataset, rows: Int, cols: Int) {
    let img = try IDX.loadImages(images, hint: hint)
    let lab = try IDX.loadLabels(labels, hint: hint)
    guard img.count == lab.count else {
        throw AstraError("\(images) has \(img.count) images but \(labels) has \(lab.count) labels; use files from the same release: \(hint)")
    }
    let d = img.rows * img.cols, total = img.pixels.count
    try MemoryBudget.check(count: total, elementSize: MemoryLayout<Float>.stride + 1, what: "\(images): \(img.count) images of \(img.rows)×\(img.cols) pixels as float32",
                           fix: "use a smaller file")
    // Exact x/255 for each of the 256 byte values, looked up (no per-pixel division).
    let scale = (0..<256).map { Float($0) / 255 }
    let inputs = [Float](unsafeUninitializedCapacity: total) { buf, n in
        img.pixels.withUnsafeBufferPointer { src in
            scale.withUnsafeBufferPointer { s in
                guard total > 0 else { return }
                let out = buf.baseAddress!, p = src.baseAddress!, t = s.baseAddress!
                for i in 0..<total { out[i] = t[Int(p[i])] }
            }
        }
        n = total
    }
    let classes = max(10, Int(lab.max() ?? 0) + 1)
    let data = Dataset(task: .classification, featureCount: d, outputCount: classes,
                       inputs: inputs, targets: lab.map { Float($0) }, globalIndex: Array(0..<img.count))
    return (data, img.rows, img.cols)
}

/// The four MNIST-layout files in `directory` (`train-images-idx3-ubyte.gz`,
/// `train-labels-idx1-ubyte.gz`, `t10k-images-idx3-ubyte.gz`, `t10k-labels-idx1-ubyte.gz`);
/// for each, the un-gzipped name without `.gz` (or the `train-images.idx3-ubyte` spelling)
/// is used when the `.gz` is absent. Works for MNIST and Fashion-MNIST.
/// Throws if the test images are not the size of the training images; both parts get the
/// same class count (the larger), so a test label is never beyond the network's outputs.
public func loadMNISTStyle(directory: String, hint: String) throws -> (train: Dataset, test: Dataset) {
    func find(_ stem: String, _ kind: String) throws -> String {
        let base = "\(stem)-\(kind)-ubyte"
        let dotted = "\(stem)-\(kind.replacingOccurrences(of: "-", with: "."))-ubyte"
        let candidates = [base + ".gz", base, dotted + ".gz", dotted].map { (directory as NSString).appendingPathComponent($0) }
        if let hit = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) { return hit }
        throw AstraError("cannot read \(candidates[0]): file missing (also tried \(base) without .gz); \(hint)")
    }
    let trainImages = try find("train", "images-idx3"), testImages = try find("t10k", "images-idx3")
    var train = try idxDataset(images: trainImages, labels: find("train", "labels-idx1"), hint: hint)
    var test = try idxDataset(images: testImages, labels: find("t10k", "labels-idx1"), hint: hint)
    guard (test.rows, test.cols) == (train.rows, train.cols) else {
        throw AstraError("\(testImages) holds \(test.rows)×\(test.cols) images but \(trainImages) holds \(train.rows)×\(train.cols); use the test and training files of the same dataset")
    }
    let classes = max(train.data.outputCount, test.data.outputCount)
    train.data.outputCount = classes; test.data.outputCount = classes
    return (train.data, test.data)
}

/// A numeric CSV as a regression dataset: target = column `target` (header name, compared
/// trimmed, or 0-based index), features = every other column in file order; C = 1.
/// `hasHeader` nil means: the first row is a header when any of its cells is not a finite number.
/// Values are not standardised. Throws (naming file, line and column) on non-numeric cells
/// and values beyond float32's range.
public func loadCSVRegression(path: String, target: String, hint: String, hasHeader: Bool? = nil) throws -> Dataset {
    try csvRegressionDataset(CSVTable.load(path, hasHeader: hasHeader ?? false, hint: hint), target: target, hint: hint, detectHeader: hasHeader == nil)
}

/// `loadCSVRegression` on a parsed table (read without a header when `detectHeader`).
public func csvRegressionDataset(_ parsed: CSVTable, target: String, hint: String, detectHeader: Bool) throws -> Dataset {
    var table = parsed
    let path = table.path
    if detectHeader, let first = table.rows.first,
       first.contains(where: { cell in Double(cell.trimmingCharacters(in: .whitespaces)).map { !$0.isFinite } ?? true }) {
        table = CSVTable(header: first, rows: Array(table.rows.dropFirst()), path: path, lineNumbers: Array(table.lineNumbers.dropFirst()))
    }
    guard !table.rows.isEmpty else { throw AstraError("\(path): no data rows; \(hint)") }
    guard table.columnCount >= 2 else { throw AstraError("\(path): \(table.columnCount) column(s); need at least one feature and the target") }
    let t = try table.columnIndex(target)
    let featureColumns = (0..<table.columnCount).filter { $0 != t }
    let x = try table.float32Columns(featureColumns)
    let y = try table.float32Columns([t])
    return Dataset(task: .regression, featureCount: featureColumns.count, outputCount: 1,
                   inputs: x, targets: y, globalIndex: Array(table.rows.indices))
}

/// scikit-learn's `digits.csv.gz` (UCI optdigits test part): no header, 64 pixel values
/// 0–16 (8×8, row-major) then the label 0–9. Inputs scaled by 1/16 to [0, 1]; 10 classes.
/// Throws (naming file and line) for a wrong column count, a pixel outside 0–16 or a bad label.
public func loadDigits(path: String, hint: String) throws -> Dataset {
    try digitsDataset(CSVTable.load(path, hasHeader: false, hint: hint), hint: hint)
}

/// `loadDigits` on a table parsed without a header.
public func digitsDataset(_ table: CSVTable, hint: String) throws -> Dataset {
    let path = table.path
    guard table.columnCount == 65 else {
        throw AstraError("\(path): \(table.columnCount) columns, expected 65 (64 pixels then the label); is this sklearn's digits.csv.gz? \(hint)")
    }
    let x = try table.numericColumns(Array(0..<64))
    let y = try table.numericColumns([64])
    for (i, v) in x.enumerated() where !(v >= 0 && v <= 16) {
        throw AstraError("\(path): line \(table.lineNumbers[i / 64]), column \(i % 64): pixel value \(v) outside 0–16")
    }
    for (r, v) in y.enumerated() where !(v == v.rounded() && v >= 0 && v <= 9) {
        throw AstraError("\(path): line \(table.lineNumbers[r]), column 64: label \(v) is not an integer 0–9")
    }
    return Dataset(task: .classification, featureCount: 64, outputCount: 10,
                   inputs: x.map { Float($0 / 16) }, targets: y.map { Float($0) }, globalIndex: Array(table.rows.indices))
}
