import Foundation

/// The paper's settings (spec §10) and the small default `digits`.
public enum Presets {
    public static let names = ["digits", "concrete", "mnist", "mnist-cnn", "cifar10", "fashion-mnist", "fashion-mnist-n", "csv"]

    /// `repoData`: the repository's `data/` folder; `sharedData`: `../shared/data`.
    public static func config(_ name: String, dataRoot: DataRoots) throws -> ExperimentConfig {
        switch name {
        case "digits":
            // sklearn digits (1797 rows): 1297 train, queries from the 500 held out.
            // MLP 64-32-32-10 (P = 3,466: small enough for the exact solver and dense GGN).
            return ExperimentConfig(setting: name, data: "digits:" + dataRoot.digits, target: nil, trainSize: 1297, querySize: 100,
                                    labelNoise: 0, dataSeed: 0, hidden: [32, 32],
                                    recipe: TrainingRecipe(learningRate: 0.05, momentum: 0.9, weightDecay: 1e-3, batchSize: 32, epochs: 20),
                                    seeds: [0], damping: 0.0073, masks: 100, repeats: 10, alpha: 0.5)
        case "concrete":
            return ExperimentConfig(setting: name, data: "csv:" + dataRoot.concrete, target: "8", trainSize: 896, querySize: 103,
                                    labelNoise: 0, dataSeed: 0, hidden: [128, 128, 128],
                                    recipe: TrainingRecipe(learningRate: 0.03, momentum: 0.9, weightDecay: 1e-5, batchSize: 32, epochs: 20),
                                    seeds: [0], damping: 0.0017, masks: 100, repeats: 100, alpha: 0.5)
        case "mnist", "fashion-mnist", "fashion-mnist-n":
            let dir = name == "mnist" ? dataRoot.mnist : dataRoot.fashionMNIST
            let noisy = name == "fashion-mnist-n"
            return ExperimentConfig(setting: name, data: "idx:" + dir, target: nil, trainSize: 6144, querySize: 100,
                                    labelNoise: noisy ? 0.3 : 0, dataSeed: 0, hidden: [512, 256, 128],
                                    recipe: noisy ? TrainingRecipe(learningRate: 0.01, momentum: 0.9, weightDecay: 3e-5, batchSize: 64, epochs: 3)
                                                  : TrainingRecipe(learningRate: 0.03, momentum: 0.9, weightDecay: 1e-3, batchSize: 64, epochs: 20),
                                    seeds: [0], damping: noisy ? 0.10 : 0.0052, masks: 100, repeats: 50, alpha: 0.5)
        case "mnist-cnn":
            // The convolutional setting (issue 16): MNIST with the `cnn` architecture (two conv +
            // pool stages and a linear head, 0.79 M multiply-adds per image); costs in docs/results.md.
            var c = try config("mnist", dataRoot: dataRoot)
            c.setting = name; c.architecture = "cnn"; c.hidden = []; c.trainSize = 4096
            c.recipe = TrainingRecipe(learningRate: 0.05, momentum: 0.9, weightDecay: 1e-3, batchSize: 64, epochs: 5)
            return c
        case "cifar10":
            // The paper's CIFAR-10 setting (spec §10, issue 16): kronfluence's ResNet-9 (batch
            // norm, two residual pairs), one-cycle SGD peaking at epoch 25/5, crops and flips.
            // 1.7 GFLOP per image per step: a cluster setting (docs/cluster.md).
            return ExperimentConfig(setting: name, data: "cifar:" + dataRoot.cifar10, target: nil, trainSize: 3072, querySize: 100,
                                    labelNoise: 0, dataSeed: 0, hidden: [], architecture: "resnet9",
                                    recipe: TrainingRecipe(learningRate: 0.4, momentum: 0.9, weightDecay: 1e-3, batchSize: 512, epochs: 25,
                                                           oneCyclePeak: 0.2, augmentation: ImageAugmentation(padding: 4, horizontalFlip: true)),
                                    seeds: [0], damping: 0.014, masks: 100, repeats: 50, alpha: 0.5)
        case "csv":
            // A user's regression CSV (`--data csv:PATH --target COL`) with the Concrete recipe;
            // 85% of rows train, queries from the rest.
            var c = try config("concrete", dataRoot: dataRoot)
            c.setting = "csv"; c.data = ""; c.target = nil; c.trainSize = 0; c.querySize = 0
            return c
        default:
            throw AstraError("unknown setting '\(name)'; choose one of: \(names.joined(separator: ", "))")
        }
    }
}

/// Default locations of the data files.
public struct DataRoots: Sendable {
    public var digits: String
    public var concrete: String
    public var mnist: String
    public var fashionMNIST: String
    /// CIFAR-10's binary folder (`cifar-10-batches-bin`); not on this machine.
    public var cifar10: String

    public init(digits: String, concrete: String, mnist: String, fashionMNIST: String, cifar10: String = "../shared/data/cifar-10-batches-bin") {
        self.digits = digits; self.concrete = concrete; self.mnist = mnist; self.fashionMNIST = fashionMNIST; self.cifar10 = cifar10
    }

    /// Finds the repository's shipped `data/` and `../shared/data` relative to the executable
    /// (`.build/<config>/astra-dist` → repository root) or the working directory.
    public static func discover(executable: String) -> DataRoots {
        let fm = FileManager.default
        var candidates: [String] = [fm.currentDirectoryPath]
        // The real path of the running binary (argv[0] may be relative or a bare name).
        let exe = (try? fm.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? executable
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        for _ in 0..<5 where dir.path != "/" { candidates.append(dir.path); dir.deleteLastPathComponent() }
        let repo = candidates.first { fm.fileExists(atPath: $0 + "/data/digits/digits.csv.gz") } ?? fm.currentDirectoryPath
        let shared = repo + "/../shared/data"
        // Outside a checkout, Debian's python3-sklearn installs the same digits file.
        let sklearn = "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz"
        let digits = fm.fileExists(atPath: repo + "/data/digits/digits.csv.gz") || !fm.fileExists(atPath: sklearn) ? repo + "/data/digits/digits.csv.gz" : sklearn
        return DataRoots(digits: digits, concrete: shared + "/concrete/concrete.csv",
                         mnist: shared + "/mnist", fashionMNIST: "/usr/share/datasets/fashion-mnist", cifar10: shared + "/cifar-10-batches-bin")
    }
}
