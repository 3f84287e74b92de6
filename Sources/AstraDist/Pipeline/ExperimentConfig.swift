import Foundation

/// Everything that defines an experiment, resolved from a preset plus overrides and fixed in
/// `DIR/config.json` by the first command run on a workspace. Its hash is recorded in every
/// artifact, so a stale file is refused.
public struct ExperimentConfig: Codable, Equatable, Sendable {
    /// Preset name (`digits`, `concrete`, `mnist`, `fashion-mnist`, `fashion-mnist-n`, `csv`).
    public var setting: String
    /// Where the data comes from: `digits:PATH`, `csv:PATH`, `idx:DIR`, `cifar:DIR`.
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
    /// The network as an operation list (`NetworkShape`), set by `import` from its
    /// architecture file; nil (absent from the JSON, so older hashes hold) is the MLP of
    /// `hidden` and `activation`. With it, `hidden` only records the layers' widths.
    public var operations: [NetworkOperation]?
    /// True for a workspace `import` made without a training recipe (no --lr, --epochs, …,
    /// no `recipe` keys): `recipe` is then the preset's, which did not make the model, so
    /// `train` and `groundtruth` refuse it. nil (absent) otherwise.
    public var recipeUnknown: Bool?
    /// Default model seeds (the ensemble), fixed by the workspace's first command; a later
    /// `--seeds` selects models for one command without changing the configuration.
    public var seeds: [UInt64]
    /// IF damping λ (spec §5, paper's values per setting).
    public var damping: Double
    /// Ground truth (spec §9): M subsets, R repeats, subset fraction α. M and R are the
    /// workspace's defaults (like `seeds`): `groundtruth --masks/--repeats` extend or select a
    /// prefix of the sweep without changing the configuration; α fixes the subsets.
    public var masks: Int
    public var repeats: Int
    public var alpha: Double
    /// Training saves the weights every `checkpointEvery` steps (`models/seed-S/checkpoint-K/`);
    /// nil (absent from config.json) = no checkpoints. Part of the configuration and its hash,
    /// so a workspace's models and checkpoints always belong together.
    public var checkpointEvery: Int?

    /// Canonical JSON (sorted keys): what the hash is computed on.
    public func canonicalJSON() -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted]
        return String(decoding: try! e.encode(self), as: UTF8.self)
    }
    public var hash: String { ContentHash.of(canonicalJSON()) }

    /// Refuses work that retrains the network (`what`: "ground truth", "train") in a
    /// workspace without a known recipe: one line saying how to give it.
    public func requireRecipe(for what: String, workspace: String) throws {
        guard recipeUnknown == true else { return }
        throw AstraError("\(what) retrains the network from scratch with the workspace's training recipe, but \(workspace) holds an imported model and no recipe: "
                         + "re-import into a new --workdir with the recipe PyTorch used (--lr, --momentum, --weight-decay, --batch-size, --epochs)")
    }

    /// Steps of one training run on `n` examples.
    public func steps(examples n: Int) -> Int { recipe.steps(examples: n) }

    /// SOURCE's implied damping `1/(η̄K)` with `η̄ = lr/(1−β)` and K a third of the steps (spec §5).
    public var sourceRuleDamping: Double {
        let eta = recipe.learningRate / (1 - recipe.momentum)
        return 1 / (eta * Double(recipe.steps(examples: trainSize)) / 3)
    }

    /// Checks every value; a problem names where the value came from: `origin(key)` for a
    /// configuration key (`recipe.learningRate`) returns e.g. "--lr" or "config.json key
    /// recipe.learningRate".
    public func validate(origin: (String) -> String = { "key " + $0 }) throws {
        func bad(_ key: String, _ s: String) -> AstraError { AstraError("invalid configuration: \(origin(key)) \(s)") }
        // 0 means automatic (CSV settings: 85% of rows train, up to 100 queries from the rest).
        guard trainSize > 1 || trainSize == 0 else { throw bad("trainSize", "must be at least 2 (got \(trainSize))") }
        guard querySize >= 0 else { throw bad("querySize", "must be positive (got \(querySize))") }
        guard recipe.learningRate > 0, recipe.learningRate.isFinite else { throw bad("recipe.learningRate", "must be positive (got \(recipe.learningRate))") }
        guard (0..<1).contains(recipe.momentum) else { throw bad("recipe.momentum", "must be in [0, 1) (got \(recipe.momentum))") }
        guard recipe.weightDecay >= 0, recipe.weightDecay.isFinite else { throw bad("recipe.weightDecay", "must be ≥ 0 (got \(recipe.weightDecay))") }
        guard recipe.batchSize > 0 else { throw bad("recipe.batchSize", "must be positive (got \(recipe.batchSize))") }
        guard recipe.epochs > 0 else { throw bad("recipe.epochs", "must be positive (got \(recipe.epochs))") }
        if let f = recipe.oneCyclePeak { guard f > 0, f <= 1 else { throw bad("recipe.oneCyclePeak", "must be in (0, 1], the fraction of the steps at which the rate peaks (got \(f))") } }
        if let a = recipe.augmentation { guard a.padding >= 0, a.padding <= 64 else { throw bad("recipe.augmentation.padding", "must be in 0…64 (got \(a.padding))") } }
        guard !seeds.isEmpty else { throw bad("seeds", "needs at least one seed") }
        guard Set(seeds).count == seeds.count else { throw bad("seeds", "lists a seed twice (\(seeds.map(String.init).joined(separator: ",")))") }
        guard damping > 0, damping.isFinite else { throw bad("damping", "must be positive (got \(damping))") }
        guard masks > 1 else { throw bad("masks", "must be ≥ 2 (got \(masks))") }
        guard repeats > 0 else { throw bad("repeats", "must be ≥ 1 (got \(repeats))") }
        guard alpha > 0, alpha < 1 else { throw bad("alpha", "must be in (0, 1) (got \(alpha))") }
        guard (0...1).contains(labelNoise) else { throw bad("labelNoise", "must be in [0, 1] (got \(labelNoise))") }
        guard hidden.allSatisfy({ $0 > 0 }) else { throw bad("hidden", "widths must be positive (got \(hidden))") }
        guard activation.map({ Pointwise(rawValue: $0) != nil }) ?? true else { throw bad("activation", "must be relu or gelu (got \(activation!))") }
        if let ops = operations, let problem = NetworkShape.problem(with: ops) { throw bad("operations", problem) }
        guard architecture.map(Architectures.names.contains) ?? true else {
            throw bad("architecture", "must be one of \(Architectures.names.joined(separator: ", ")) (got \(architecture!))")
        }
        if let k = checkpointEvery { guard k > 0 else { throw bad("checkpointEvery", "must be positive (got \(k))") } }
    }

    /// Every key (dotted for `recipe.*`) whose value differs, with this and the other value
    /// as canonical JSON ("(unset)" for an absent optional key), in key order.
    public func differences(from other: ExperimentConfig) -> [(key: String, this: String, other: String)] {
        let a = flattened(), b = other.flattened()
        return Set(a.keys).union(b.keys).sorted().compactMap { k in
            a[k] == b[k] ? nil : (k, a[k] ?? "(unset)", b[k] ?? "(unset)")
        }
    }

    /// Key path → canonical JSON text of the value (`recipe.learningRate` → `0.1`).
    public func flattened() -> [String: String] {
        let object = try! JSONSerialization.jsonObject(with: Data(canonicalJSON().utf8)) as! [String: Any]
        return Self.flatten(object)
    }

    /// Key paths of a JSON object, nested objects joined with dots.
    public static func flatten(_ object: [String: Any], prefix: String = "") -> [String: String] {
        var out: [String: String] = [:]
        for (k, v) in object {
            if let nested = v as? [String: Any] { out.merge(flatten(nested, prefix: prefix + k + ".")) { a, _ in a }; continue }
            let data = (try? JSONSerialization.data(withJSONObject: [v], options: [.sortedKeys, .fragmentsAllowed])) ?? Data()
            out[prefix + k] = String(String(decoding: data, as: UTF8.self).dropFirst().dropLast())
        }
        return out
    }
}
