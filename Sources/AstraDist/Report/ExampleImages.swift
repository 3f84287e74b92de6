import Foundation

/// How the report shows an example: image data (digits 8×8, MNIST-style 28×28: one channel,
/// a square number of pixels) as a greyscale PNG scaled by the training inputs' range,
/// tabular data as a row of its features in the source file's units.
struct ExampleImages {
    let data: PreparedData
    /// Side of the square images, or nil for tabular data.
    let side: Int?
    let lo: Float, hi: Float

    init(data: PreparedData, config: ExperimentConfig) {
        self.data = data
        let d = data.train.featureCount, s = Int(Double(d).squareRoot().rounded())
        let kind = config.data.split(separator: ":").first.map(String.init) ?? ""
        side = (kind == "digits" || kind == "idx") && s * s == d ? s : nil
        lo = data.train.inputs.min() ?? 0; hi = data.train.inputs.max() ?? 1
    }

    var isImage: Bool { side != nil }

    func png(train column: Int) -> [UInt8] { png(data.train, column) }
    func png(query i: Int) -> [UInt8] { png(data.queries, i) }
    private func png(_ set: Dataset, _ i: Int) -> [UInt8] {
        let d = set.featureCount
        return PNG.greyscale(PNG.pixels(set.inputs[(i * d)..<((i + 1) * d)], lo: lo, hi: hi), width: side!, height: side!)
    }

    func rowTable(train column: Int) -> String { rowTable(data.train, column) }
    func rowTable(query i: Int) -> String { rowTable(data.queries, i) }
    /// The features of row `i` (at most 16, then "…"), standardisation undone.
    private func rowTable(_ set: Dataset, _ i: Int) -> String {
        let d = set.featureCount, shown = min(d, 16)
        let values = (0..<shown).map { k -> String in
            let v = Double(set.inputs[i * d + k])
            return String(format: "%.4g", data.standardizer.map { v * $0.featureStd[k] + $0.featureMean[k] } ?? v)
        }
        return "<table class=\"row\"><tr>" + (0..<shown).map { "<th>x\($0)</th>" }.joined() + (d > shown ? "<th>…</th>" : "") + "</tr><tr>"
            + values.map { "<td class=\"num\">\($0)</td>" }.joined() + (d > shown ? "<td>…</td>" : "") + "</tr></table>"
    }
}
