import Foundation

/// The on-disk experiment directory (`--workdir`), shared by every rank (rank 0 writes, the
/// others read). Layout:
///
///     config.json                        resolved ExperimentConfig
///     models/seed-S/layer-L.npy          W̄_l, O×(I+1) float32; model.json; metrics.json
///     models/seed-S/checkpoints/step-K/  the same for each checkpoint
///     factors/seed-S/                    EK-FAC (see EKFAC.write)
///     scores/METHOD/seed-S.npy (+ .json) Q×N float32 scores
///     groundtruth/{masks.npy,journal,groundtruth.npy,raw.npy}
///     lds/METHOD.json
public struct WorkDirectory: Sendable {
    public let root: String
    public init(_ root: String) { self.root = root }

    public var configPath: String { root + "/config.json" }
    public func modelDirectory(seed: UInt64) -> String { root + "/models/seed-\(seed)" }
    public func factorsDirectory(seed: UInt64) -> String { root + "/factors/seed-\(seed)" }
    public func scoresPath(method: String, seed: UInt64) -> String { root + "/scores/\(method)/seed-\(seed).npy" }
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
        do { try c.validate() } catch let e as AstraError { throw AstraError("\(path): \(e.message); \(fix)") }
        return c
    }

    /// Fixes the configuration of a workspace: writes it if new, else requires it unchanged.
    public func establish(_ config: ExperimentConfig) throws {
        if let existing = try loadConfig() {
            guard existing == config else {
                throw AstraError("\(configPath) holds a different configuration (\(existing.setting), hash \(existing.hash)) than requested (\(config.setting), hash \(config.hash)); use a new --workdir, or drop the options that change it")
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
    public var loss: LossKind
    public var seed: UInt64
    public var steps: Int
    public var configHash: String
    public var dataHash: String
    /// Hash of the float32 parameters: factors and scores record it.
    public var parametersHash: String
    public var checkpoints: [Int]
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
        // model.json last: its presence marks a complete model.
        try WorkDirectory.writeJSON(description, to: dir + "/model.json")
    }

    /// Parses the bytes of a `model.json` at `path`: its keys, and widths that make a valid
    /// network whose weights fit in memory (`NetworkShape.validated`).
    public static func decodeDescription(_ bytes: [UInt8], path: String) throws -> (ModelDescription, NetworkShape) {
        let hint = "train it with `astra-dist train`"
        let d = try JSONFile.decode(ModelDescription.self, from: bytes, path: path, hint: hint)
        let shape = try NetworkShape.validated(widths: d.widths, source: path, fix: "re-run `astra-dist train`")
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
        guard p.allSatisfy(\.isFinite) else { throw AstraError("\(dir) holds NaN or Inf weights: training diverged; lower --lr and re-run `astra-dist train`") }
        guard ContentHash.of(p) == d.parametersHash else {
            throw AstraError("\(dir): weights do not match model.json's hash (files mixed or modified); re-run `astra-dist train`")
        }
        return (Network(shape: shape, loss: d.loss, parameters: p), d)
    }
}
