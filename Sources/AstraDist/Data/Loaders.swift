import Foundation

// Dataset loaders for the file formats the experiments use. Each returns rows in file order
// with `globalIndex` = the row (or item) index in its file; no shuffling, no standardising
// (the caller splits and standardises with training statistics, spec §10).

/// An IDX image/label pair as a classification dataset: N×(rows·cols) inputs scaled to
/// [0, 1] (pixel/255), targets = class index, C = max(10, max label + 1).
/// Throws if either file fails `IDX` checks or their counts differ.
/// Complexity: O(N·rows·cols); peak memory ≈ 5 bytes per pixel.
public func loadIDXDataset(images: String, labels: String, hint: String) throws -> Dataset {
    let img = try IDX.loadImages(images, hint: hint)
    let lab = try IDX.loadLabels(labels, hint: hint)
    guard img.count == lab.count else {
        throw AstraError("\(images) has \(img.count) images but \(labels) has \(lab.count) labels; use files from the same release: \(hint)")
    }
    let d = img.rows * img.cols, total = img.pixels.count
    // Exact x/255 for each of the 256 byte values, looked up (no per-pixel division).
    let scale = (0..<256).map { Float($0) / 255 }
    let inputs = [Float](unsafeUninitializedCapacity: total) { buf, n in
        img.pixels.withUnsafeBufferPointer { src in
            scale.withUnsafeBufferPointer { s in
                let out = buf.baseAddress!, p = src.baseAddress!, t = s.baseAddress!
                for i in 0..<total { out[i] = t[Int(p[i])] }
            }
        }
        n = total
    }
    let classes = max(10, Int(lab.max() ?? 0) + 1)
    return Dataset(task: .classification, featureCount: d, outputCount: classes,
                   inputs: inputs, targets: lab.map { Float($0) }, globalIndex: Array(0..<img.count))
}

/// The four MNIST-layout files in `directory` (`train-images-idx3-ubyte.gz`,
/// `train-labels-idx1-ubyte.gz`, `t10k-images-idx3-ubyte.gz`, `t10k-labels-idx1-ubyte.gz`);
/// for each, the un-gzipped name without `.gz` (or the `train-images.idx3-ubyte` spelling)
/// is used when the `.gz` is absent. Works for MNIST and Fashion-MNIST.
public func loadMNISTStyle(directory: String, hint: String) throws -> (train: Dataset, test: Dataset) {
    func find(_ stem: String, _ kind: String) throws -> String {
        let base = "\(stem)-\(kind)-ubyte"
        let dotted = "\(stem)-\(kind.replacingOccurrences(of: "-", with: "."))-ubyte"
        let candidates = [base + ".gz", base, dotted + ".gz", dotted].map { (directory as NSString).appendingPathComponent($0) }
        if let hit = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) { return hit }
        throw AstraError("cannot read \(candidates[0]): file missing (also tried \(base) without .gz); \(hint)")
    }
    let train = try loadIDXDataset(images: find("train", "images-idx3"), labels: find("train", "labels-idx1"), hint: hint)
    let test = try loadIDXDataset(images: find("t10k", "images-idx3"), labels: find("t10k", "labels-idx1"), hint: hint)
    return (train, test)
}

/// A numeric CSV as a regression dataset: target = column `target` (header name, compared
/// trimmed, or 0-based index), features = every other column in file order; C = 1.
/// `hasHeader` nil means: the first row is a header when any of its cells is not a finite number.
/// Values are not standardised. Throws (naming file, line and column) on non-numeric cells.
public func loadCSVRegression(path: String, target: String, hint: String, hasHeader: Bool? = nil) throws -> Dataset {
    var table = try CSVTable.load(path, hasHeader: hasHeader ?? false, hint: hint)
    if hasHeader == nil, let first = table.rows.first,
       first.contains(where: { cell in Double(cell.trimmingCharacters(in: .whitespaces)).map { !$0.isFinite } ?? true }) {
        table = CSVTable(header: first, rows: Array(table.rows.dropFirst()), path: path, lineNumbers: Array(table.lineNumbers.dropFirst()))
    }
    guard !table.rows.isEmpty else { throw AstraError("\(path): no data rows; \(hint)") }
    guard table.columnCount >= 2 else { throw AstraError("\(path): \(table.columnCount) column(s); need at least one feature and the target") }
    let t = try table.columnIndex(target)
    let featureColumns = (0..<table.columnCount).filter { $0 != t }
    let x = try table.numericColumns(featureColumns)
    let y = try table.numericColumns([t])
    return Dataset(task: .regression, featureCount: featureColumns.count, outputCount: 1,
                   inputs: x.map { Float($0) }, targets: y.map { Float($0) }, globalIndex: Array(table.rows.indices))
}

/// scikit-learn's `digits.csv.gz` (UCI optdigits test part): no header, 64 pixel values
/// 0–16 (8×8, row-major) then the label 0–9. Inputs scaled by 1/16 to [0, 1]; 10 classes.
/// Throws (naming file and line) for a wrong column count, a pixel outside 0–16 or a bad label.
public func loadDigits(path: String, hint: String) throws -> Dataset {
    let table = try CSVTable.load(path, hasHeader: false, hint: hint)
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
