import Foundation

/// Everything that defines an experiment, resolved from a preset plus overrides and fixed in
/// `DIR/config.json` by the first command run on a workspace. Its hash is recorded in every
/// artifact, so a stale file is refused.
public struct ExperimentConfig: Codable, Equatable, Sendable {
    /// Preset name (`digits`, `concrete`, `mnist`, `fashion-mnist`, `fashion-mnist-n`, `csv`).
    public var setting: String
    /// Where the data comes from: `digits:PATH`, `csv:PATH`, `idx:DIR`.
    public var data: String
    /// CSV target column (name or 0-based index); CSV settings only.
    public var target: String?
    /// Training examples (a seeded subset of the source's training part).
    public var trainSize: Int
    /// Query examples (a seeded subset of the held-out part), fixed for the workspace.
    public var querySize: Int
    /// Fraction of training labels replaced by uniformly random classes (Fashion-MNIST-N).
    public var labelNoise: Double
    /// Seed for the split, subset and label noise.
    public var dataSeed: UInt64
    /// Hidden widths of the MLP (`[128, 128, 128]`).
    public var hidden: [Int]
    /// The MLP's activation (`Pointwise` name, `gelu`); nil is ReLU, and is left out of the
    /// JSON so configurations from before the field keep their hash.
    public var activation: String?
    /// A named architecture (`Architectures`, e.g. `cnn`) instead of the MLP of `hidden`; nil
    /// (the MLP) is left out of the JSON, so earlier configurations keep their hash.
    public var architecture: String? = nil
    public var recipe: TrainingRecipe
    /// Default model seeds (the ensemble), fixed by the workspace's first command; a later
    /// `--seeds` selects models for one command without changing the configuration.
    public var seeds: [UInt64]
    /// IF damping λ (spec §5, paper's values per setting).
    public var damping: Double
    /// Ground truth (spec §9): M subsets, R repeats, subset fraction α.
    public var masks: Int
    public var repeats: Int
    public var alpha: Double

    /// Canonical JSON (sorted keys): what the hash is computed on.
    public func canonicalJSON() -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted]
        return String(decoding: try! e.encode(self), as: UTF8.self)
    }
    public var hash: String { ContentHash.of(canonicalJSON()) }

    /// Steps of one training run on `n` examples.
    public func steps(examples n: Int) -> Int { recipe.steps(examples: n) }

    /// SOURCE's implied damping `1/(η̄K)` with `η̄ = lr/(1−β)` and K a third of the steps (spec §5).
    public var sourceRuleDamping: Double {
        let eta = recipe.learningRate / (1 - recipe.momentum)
        return 1 / (eta * Double(recipe.steps(examples: trainSize)) / 3)
    }

    public func validate() throws {
        func bad(_ s: String) -> AstraError { AstraError("invalid configuration: \(s)") }
        // 0 means automatic (CSV settings: 85% of rows train, up to 100 queries from the rest).
        guard trainSize > 1 || trainSize == 0 else { throw bad("--train-size must be at least 2 (got \(trainSize))") }
        guard querySize >= 0 else { throw bad("--query-size must be positive (got \(querySize))") }
        guard recipe.learningRate > 0, recipe.learningRate.isFinite else { throw bad("--lr must be positive (got \(recipe.learningRate))") }
        guard (0..<1).contains(recipe.momentum) else { throw bad("--momentum must be in [0, 1) (got \(recipe.momentum))") }
        guard recipe.weightDecay >= 0 else { throw bad("--weight-decay must be ≥ 0") }
        guard recipe.batchSize > 0, recipe.epochs > 0 else { throw bad("--batch-size and --epochs must be positive") }
        guard !seeds.isEmpty else { throw bad("--seeds needs at least one seed") }
        guard activation.map({ Pointwise(rawValue: $0) != nil }) ?? true else { throw bad("--activation must be relu or gelu (got \(activation!))") }
        guard damping > 0, damping.isFinite else { throw bad("--damping must be positive (got \(damping))") }
        guard masks > 1, repeats > 0 else { throw bad("--masks must be ≥ 2 and --repeats ≥ 1") }
        guard alpha > 0, alpha < 1 else { throw bad("--alpha must be in (0, 1) (got \(alpha))") }
        guard (0...1).contains(labelNoise) else { throw bad("label noise must be in [0, 1]") }
        guard hidden.allSatisfy({ $0 > 0 }) else { throw bad("--hidden widths must be positive") }
        guard architecture.map(Architectures.names.contains) ?? true else {
            throw bad("architecture must be one of \(Architectures.names.joined(separator: ", ")) (got \(architecture!))")
        }
    }
}
