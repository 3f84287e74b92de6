import Foundation

/// The on-disk experiment directory (`--workdir`), shared by every rank (rank 0 writes, the
/// others read). Layout:
///
///     config.json                        resolved ExperimentConfig
///     models/MODEL/layer-L.npy           W̄_l, O×(I+1) float32; model.json; metrics.json
///     factors/MODEL/                     EK-FAC (see EKFAC.write)
///     scores/NAME/MODEL.npy (+ .json)    Q×N float32 scores
///     groundtruth/{masks.npy,journal,groundtruth.npy,groundtruth.json,raw.npy}
///     lds/NAME.json
///
/// MODEL is a `ModelReference` (`seed-S`, `seed-S/checkpoint-K`, `seed-S/segment-L`) and NAME
/// a `ResultName` (docs/commands.md, "Naming rule").
public struct WorkDirectory: Sendable {
    public let root: String
    public init(_ root: String) { self.root = root }

    /// A workspace at `path` after checking it can be one: not empty (which would write into
    /// the current directory's parent, or `/`) and not an existing non-directory.
    public static func validated(_ path: String) throws -> WorkDirectory {
        guard !path.isEmpty else { throw AstraError("--workdir is empty; name the experiment directory, e.g. --workdir ws/digits") }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw AstraError("--workdir \(path) is a file, not a directory; name a new or existing experiment directory")
        }
        return WorkDirectory(path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path)
    }

    public var configPath: String { root + "/config.json" }
    public var hasConfig: Bool { FileManager.default.fileExists(atPath: configPath) }
    public func modelDirectory(_ model: ModelReference) -> String { root + "/models/" + model.component }
    public func modelDirectory(seed: UInt64) -> String { modelDirectory(ModelReference(seed: seed)) }
    public func factorsDirectory(_ model: ModelReference) -> String { root + "/factors/" + model.component }
    public func factorsDirectory(seed: UInt64) -> String { factorsDirectory(ModelReference(seed: seed)) }
    /// `scores/NAME/`.
    public func scoresDirectory(name: String) -> String { root + "/scores/" + name }
    /// `scores/NAME/MODEL[.SET]` without extension; SET is omitted for the workspace's queries.
    public func scoresStem(name: String, model: ModelReference, querySet: String = "default") -> String {
        scoresDirectory(name: name) + "/" + model.component + (querySet == "default" ? "" : "." + querySet)
    }
    public func scoresPath(method: String, seed: UInt64) -> String { scoresStem(name: method, model: ModelReference(seed: seed)) + ".npy" }
    public var groundTruthDirectory: String { root + "/groundtruth" }
    public func ldsPath(method: String) -> String { root + "/lds/\(method).json" }

    /// Loads `config.json`, or nil if the workspace has none yet. Throws, naming the file and
    /// the key, if it is not a valid configuration (see `decodeConfig`).
    public func loadConfig() throws -> ExperimentConfig? {
        guard FileManager.default.fileExists(atPath: configPath) else { return nil }
        return try Self.decodeConfig(AtomicFile.read(configPath, hint: ""), path: configPath)
    }

    /// Parses and validates the bytes of a `config.json` at `path` (which names the file in
    /// errors): the key path of a missing or mistyped key, or the value `validate` refuses.
    public static func decodeConfig(_ bytes: [UInt8], path: String) throws -> ExperimentConfig {
        let fix = "fix it or start a new --workdir"
        let c = try JSONFile.decode(ExperimentConfig.self, from: bytes, path: path, hint: fix)
        do { try c.validate(origin: { "\(path) key \($0)" }) } catch let e as AstraError { throw AstraError("\(e.message); \(fix)") }
        return c
    }

    /// Fixes the configuration of a workspace: writes it if new, else requires it unchanged.
    public func establish(_ config: ExperimentConfig) throws {
        if let existing = try loadConfig() {
            let differences = existing.differences(from: config)
            guard differences.isEmpty else {
                let listed = differences.map { "\($0.key) \($0.this), this request \($0.other)" }.joined(separator: "; ")
                throw AstraError("\(configPath) has \(listed); use a new --workdir, or drop the options that change it")
            }
            return
        }
        try AtomicFile.write(config.canonicalJSON() + "\n", to: configPath)
    }

    /// Writes a JSON object atomically (sorted keys; NaN and ±Inf as `null`, see `JSONFile`).
    public static func writeJSON<T: Encodable>(_ value: T, to path: String) throws {
        try AtomicFile.write(JSONFile.encode(value) + [0x0a], to: path)
    }
    /// Reads a JSON file as `T`; errors name `path`, the key path that is wrong, and `hint`.
    public static func readJSON<T: Decodable>(_ type: T.Type, from path: String, hint: String) throws -> T {
        try JSONFile.decode(type, from: AtomicFile.read(path, hint: hint), path: path, hint: hint)
    }
}

/// `models/seed-S/model.json`.
public struct ModelDescription: Codable, Sendable {
    public var widths: [Int]
    /// The network's operations; absent (nil) in files of MLPs with ReLU written before them.
    public var operations: [NetworkOperation]?
    public var loss: LossKind
    public var seed: UInt64
    public var steps: Int
    public var configHash: String
    public var dataHash: String
    /// Hash of the float32 parameters: factors and scores record it.
    public var parametersHash: String
    /// Steps at which checkpoints were saved (`models/seed-S/checkpoint-K/`, K = step).
    public var checkpoints: [Int]
    /// The training learning rate in force at `steps` (the recipe's rate: it has no schedule).
    public var learningRate: Double?
    /// Set for a model `import` read from a weights file (nil: trained here).
    public var imported: ImportRecord?
}

/// Where an imported model came from: the weights file as given and the FNV-1a hash of its
/// bytes (`ContentHash`), so a re-import of another file is told apart.
public struct ImportRecord: Codable, Sendable, Equatable {
    public var file: String
    public var architecture: String
    public var hash: String
    public init(file: String, architecture: String, hash: String) { self.file = file; self.architecture = architecture; self.hash = hash }
}

public struct TrainingMetrics: Codable, Sendable {
    public var train: Evaluation
    public var test: Evaluation
    public var seconds: Double
    public init(train: Evaluation, test: Evaluation, seconds: Double) { self.train = train; self.test = test; self.seconds = seconds }
}

/// Saves and loads trained networks.
public enum ModelStore {
    public static func save(_ net: Network<Float>, description: ModelDescription, to dir: String) throws {
        for l in 0..<net.shape.layerCount {
            let layer = net.shape.layer(l), o = net.shape.offset(l)
            try NPY.write(Array(net.parameters[o..<(o + layer.parameterCount)]), shape: [layer.outputs, layer.augmented], to: dir + "/layer-\(l).npy")
        }
        for j in net.shape.normalizations.indices {
            try NPY.write(net.batchNormRows(j), shape: [4, net.shape.normalizations[j].channels], to: dir + "/batchnorm-\(j).npy")
        }
        // model.json last: its presence marks a complete model.
        try WorkDirectory.writeJSON(description, to: dir + "/model.json")
    }

    /// Parses the bytes of a `model.json` at `path`: its keys, and widths that make a valid
    /// network whose weights fit in memory (`NetworkShape.validated`).
    public static func decodeDescription(_ bytes: [UInt8], path: String) throws -> (ModelDescription, NetworkShape) {
        let hint = "train it with `astra-dist train`"
        let d = try JSONFile.decode(ModelDescription.self, from: bytes, path: path, hint: hint)
        let shape = try NetworkShape.validated(operations: d.operations, widths: d.widths, source: path, fix: "re-run `astra-dist train`")
        guard d.steps >= 0, d.checkpoints.allSatisfy({ $0 > 0 }) else {
            throw AstraError("\(path): negative steps or checkpoint steps; re-run `astra-dist train`")
        }
        return (d, shape)
    }

    /// Loads `dir`, checking every layer's shape and the parameter hash.
    public static func load(from dir: String) throws -> (Network<Float>, ModelDescription) {
        let hint = "train it with `astra-dist train`"
        let (d, shape) = try decodeDescription(AtomicFile.read(dir + "/model.json", hint: hint), path: dir + "/model.json")
        var p = [Float](); p.reserveCapacity(shape.parameterCount)
        for l in 0..<shape.layerCount {
            let path = dir + "/layer-\(l).npy", layer = shape.layer(l)
            let a = try NPY.read(path, hint: hint)
            guard a.shape == [layer.outputs, layer.augmented], a.dtype == .float32 else {
                throw AstraError("\(path) has shape \(a.shape) (\(a.dtype.rawValue)), model.json expects [\(layer.outputs), \(layer.augmented)] float32; re-run `astra-dist train`")
            }
            p += a.values(Float.self)
        }
        var net = Network(shape: shape, loss: d.loss, parameters: p)
        for (j, n) in shape.normalizations.enumerated() {
            let path = dir + "/batchnorm-\(j).npy", a = try NPY.read(path, hint: hint)
            guard a.shape == [4, n.channels], a.dtype == .float32 else {
                throw AstraError("\(path) has shape \(a.shape) (\(a.dtype.rawValue)), model.json expects [4, \(n.channels)] float32 (weight, bias, running_mean, running_var); re-run `astra-dist train`")
            }
            net.setBatchNormRows(j, a.values(Float.self))
        }
        guard p.allSatisfy(\.isFinite), net.normalization.allSatisfy(\.isFinite) else { throw AstraError("\(dir) holds NaN or Inf weights: training diverged; lower --lr and re-run `astra-dist train`") }
        guard net.contentHash == d.parametersHash else {
            throw AstraError("\(dir): weights do not match model.json's hash (files mixed or modified); re-run `astra-dist train`")
        }
        return (net, d)
    }
}

extension ModelDescription {
    /// The network this model is: its operations, or an MLP with ReLU of `widths`.
    public var shape: NetworkShape { operations.map { NetworkShape(operations: $0) } ?? NetworkShape(widths: widths) }
}
