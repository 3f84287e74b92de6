import Foundation

/// The training set and the query set of an experiment, ready for every stage: split,
/// subset, label noise and standardisation applied (spec §10), each row keeping its
/// global index in the source file. Built identically on every rank.
public struct PreparedData: Sendable {
    public var train: Dataset
    public var queries: Dataset
    /// Held-out rows not used as queries (for test metrics).
    public var test: Dataset
    /// Hash of the training and query arrays.
    public var hash: String
    /// Regression: the training statistics every other input must be scaled with.
    public var standardizer: Standardizer?

    public static func load(_ c: ExperimentConfig) throws -> PreparedData {
        let (kind, path) = try splitSource(c.data)
        let hint: String
        switch kind {
        case "digits": hint = "the repository ships data/digits/digits.csv.gz (also installed by Debian's python3-sklearn)"
        case "idx": hint = path.contains("fashion") ? "install it with: apt-get install -y dataset-fashion-mnist" : "MNIST lives in ../shared/data/mnist; pass --data idx:DIR"
        default: hint = "pass --data csv:PATH with an existing file"
        }
        var train: Dataset, heldOut: Dataset
        switch kind {
        case "digits", "csv":
            let all: Dataset
            if kind == "digits" { all = try loadDigits(path: path, hint: hint) }
            else {
                guard let t = c.target else { throw AstraError("--target COLUMN is required with --data csv:PATH") }
                all = try loadCSVRegression(path: path, target: t, hint: hint)
            }
            var rng = CounterRandom(seed: c.dataSeed, purpose: .split)
            let order = rng.permutation(all.count)
            let nTrain = c.trainSize > 0 ? c.trainSize : Int(Double(all.count) * 0.85)
            guard nTrain < all.count else { throw AstraError("\(path) has \(all.count) rows: --train-size \(nTrain) leaves none for queries") }
            train = all.subset(Array(order[..<nTrain]))
            heldOut = all.subset(Array(order[nTrain...]))
        case "idx":
            let (full, test) = try loadMNISTStyle(directory: path, hint: hint)
            guard c.trainSize <= full.count else { throw AstraError("--train-size \(c.trainSize) exceeds the \(full.count) training images in \(path)") }
            var rng = CounterRandom(seed: c.dataSeed, purpose: .split)
            let order = rng.permutation(full.count)
            train = full.subset(Array(order[..<c.trainSize]).sorted())
            heldOut = test
        default:
            throw AstraError("unknown data source '\(c.data)'; use digits:PATH, csv:PATH or idx:DIR")
        }
        if c.labelNoise > 0, train.task == .classification {
            for i in 0..<train.count {
                var rng = CounterRandom(seed: c.dataSeed, purpose: .labelNoise, index: UInt64(train.globalIndex[i]))
                if rng.nextUniform() < c.labelNoise { train.targets[i] = Float(rng.nextInt(below: train.outputCount)) }
            }
        }
        let nq = c.querySize > 0 ? c.querySize : min(100, heldOut.count)
        guard nq <= heldOut.count else { throw AstraError("--query-size \(nq) exceeds the \(heldOut.count) held-out rows of \(path)") }
        var rq = CounterRandom(seed: c.dataSeed, purpose: .queryChoice)
        let qOrder = rq.permutation(heldOut.count)
        var queries = heldOut.subset(Array(qOrder[..<nq]))
        var test = heldOut
        var standardizer: Standardizer? = nil
        if train.task == .regression {
            let s = Standardizer(fitting: train)
            s.apply(&train); s.apply(&queries); s.apply(&test)
            standardizer = s
        }
        var h = ContentHash()
        h.update(train.inputs); h.update(train.targets); h.update(queries.inputs); h.update(queries.targets)
        return PreparedData(train: train, queries: queries, test: test, hash: h.hex, standardizer: standardizer)
    }

    static func splitSource(_ s: String) throws -> (String, String) {
        guard let colon = s.firstIndex(of: ":") else { throw AstraError("data source '\(s)' needs a kind: digits:PATH, csv:PATH or idx:DIR") }
        return (String(s[..<colon]), String(s[s.index(after: colon)...]))
    }
}

/// Standardises features and regression targets with training-set mean and standard deviation.
public struct Standardizer: Sendable {
    public var featureMean: [Double], featureStd: [Double], targetMean: [Double], targetStd: [Double]

    public init(fitting d: Dataset) {
        func stats(_ v: [Float], width: Int) -> ([Double], [Double]) {
            let n = v.count / width
            var mean = [Double](repeating: 0, count: width), sd = mean
            for i in 0..<n { for k in 0..<width { mean[k] += Double(v[i * width + k]) } }
            for k in 0..<width { mean[k] /= Double(n) }
            for i in 0..<n { for k in 0..<width { let x = Double(v[i * width + k]) - mean[k]; sd[k] += x * x } }
            // A constant column keeps scale 1 instead of dividing by zero.
            for k in 0..<width { sd[k] = (sd[k] / Double(max(n - 1, 1))).squareRoot(); if sd[k] == 0 { sd[k] = 1 } }
            return (mean, sd)
        }
        (featureMean, featureStd) = stats(d.inputs, width: d.featureCount)
        (targetMean, targetStd) = stats(d.targets, width: d.targetWidth)
    }
    public func apply(_ d: inout Dataset) {
        for i in 0..<d.count {
            for k in 0..<d.featureCount { d.inputs[i * d.featureCount + k] = Float((Double(d.inputs[i * d.featureCount + k]) - featureMean[k]) / featureStd[k]) }
            for k in 0..<d.targetWidth { d.targets[i * d.targetWidth + k] = Float((Double(d.targets[i * d.targetWidth + k]) - targetMean[k]) / targetStd[k]) }
        }
    }
}
