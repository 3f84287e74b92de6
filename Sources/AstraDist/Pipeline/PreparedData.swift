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
        case "cifar": hint = CIFAR10.hint
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
            guard nTrain >= 2 else {
                throw AstraError("\(path) has \(all.count) data row(s): \(nTrain) would train and \(all.count - nTrain) be held out; a model needs at least 2 training rows and 1 held-out row")
            }
            train = all.subset(Array(order[..<nTrain]))
            heldOut = all.subset(Array(order[nTrain...]))
        case "idx", "cifar":
            let (full, test) = kind == "idx" ? try loadMNISTStyle(directory: path, hint: hint) : try CIFAR10.load(directory: path)
            guard c.trainSize <= full.count else { throw AstraError("--train-size \(c.trainSize) exceeds the \(full.count) training images in \(path)") }
            var rng = CounterRandom(seed: c.dataSeed, purpose: .split)
            let order = rng.permutation(full.count)
            guard c.trainSize >= 2 else { throw AstraError("\(path) holds \(full.count) training image(s) and --train-size is \(c.trainSize); a model needs at least 2") }
            guard test.count > 0 else { throw AstraError("\(path): the t10k (test) files hold no images; queries come from them") }
            train = full.subset(Array(order[..<c.trainSize]).sorted())
            heldOut = test
        default:
            throw AstraError("unknown data source '\(c.data)'; use digits:PATH, csv:PATH, idx:DIR or cifar:DIR")
        }
        if c.recipe.augmentation != nil, train.image == nil {
            throw AstraError("recipe.augmentation (random crops and flips) needs image data such as --data cifar:DIR, not \(c.data); drop it")
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
        try checkShapeFits(c, train: train, source: path)
        try checkGroundTruthFits(c, trainCount: train.count, queryCount: nq)
        if train.task == .regression {
            try refuseConstantTargets(train, config: c, path: path)
            let s = Standardizer(fitting: train)
            s.apply(&train); s.apply(&queries); s.apply(&test)
            standardizer = s
        }
        var h = ContentHash()
        h.update(train.inputs); h.update(train.targets); h.update(queries.inputs); h.update(queries.targets)
        return PreparedData(train: train, queries: queries, test: test, hash: h.hex, standardizer: standardizer)
    }

    /// A constant training target has standard deviation 0: standardising it divides by zero
    /// and every R² against it is undefined, so it is refused, naming the column.
    static func refuseConstantTargets(_ train: Dataset, config c: ExperimentConfig, path: String) throws {
        let w = train.targetWidth
        for k in 0..<w where (0..<train.count).allSatisfy({ train.targets[$0 * w + k] == train.targets[k] }) {
            throw AstraError("\(path): target column '\(c.target ?? String(k))' is constant (\(train.targets[k]) in all \(train.count) training rows, std 0); standardisation and R² are undefined; choose another --target")
        }
    }

    /// The network (input width from the data, --hidden, outputs) is valid and it, with a
    /// training batch of activations, fits in memory: checked here, where the widths are first
    /// known, so an absurd --hidden is one line rather than an aborted allocation.
    static func checkShapeFits(_ c: ExperimentConfig, train: Dataset, source: String) throws {
        let widths = [train.featureCount] + c.hidden + [train.outputCount]
        let shape = try NetworkShape.validated(widths: widths, source: "--hidden with \(source)", fix: "use smaller --hidden widths")
        // Weights, gradient, momentum, plus two activations per layer for a batch.
        let batch = min(c.recipe.batchSize, max(train.count, 1))
        let total = MemoryBudget.sum([MemoryBudget.product([batch, widths.reduce(0, +), 2]), MemoryBudget.product([shape.parameterCount, 3])])
        try MemoryBudget.check(count: total, elementSize: MemoryLayout<Float>.stride,
                               what: "training a \(shape) network with batches of \(batch)", fix: "use smaller --hidden widths or --batch-size")
    }

    /// The ground truth's arrays (masks M×N uint8, raw M×R×Q float32, means M×Q float64) fit
    /// in memory: --masks and --repeats are refused here, with the size, rather than by an
    /// aborted allocation when `groundtruth` starts.
    static func checkGroundTruthFits(_ c: ExperimentConfig, trainCount n: Int, queryCount q: Int) throws {
        let total = MemoryBudget.sum([MemoryBudget.product([c.masks, n]), MemoryBudget.product([c.masks, c.repeats, q, 4]),
                                      MemoryBudget.product([c.masks, q, 8])])
        try MemoryBudget.check(count: total, elementSize: 1, what: "the ground truth of --masks \(c.masks) × --repeats \(c.repeats) on \(n) training rows and \(q) queries",
                               fix: "use fewer --masks or --repeats")
    }

    static func splitSource(_ s: String) throws -> (String, String) {
        guard let colon = s.firstIndex(of: ":") else { throw AstraError("data source '\(s)' needs a kind: digits:PATH, csv:PATH, idx:DIR or cifar:DIR") }
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
