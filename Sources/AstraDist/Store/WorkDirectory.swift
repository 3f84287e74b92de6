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

    /// Loads `config.json`, or nil if the workspace has none yet.
    public func loadConfig() throws -> ExperimentConfig? {
        guard FileManager.default.fileExists(atPath: configPath) else { return nil }
        let bytes = try AtomicFile.read(configPath, hint: "")
        do { return try JSONDecoder().decode(ExperimentConfig.self, from: Data(bytes)) }
        catch { throw AstraError("\(configPath) is not a valid configuration (\(error)); fix it or start a new --workdir") }
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

    /// Writes a JSON object atomically.
    public static func writeJSON<T: Encodable>(_ value: T, to path: String) throws {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted]
        try AtomicFile.write(String(decoding: try e.encode(value), as: UTF8.self) + "\n", to: path)
    }
    public static func readJSON<T: Decodable>(_ type: T.Type, from path: String, hint: String) throws -> T {
        let bytes = try AtomicFile.read(path, hint: hint)
        do { return try JSONDecoder().decode(type, from: Data(bytes)) }
        catch { throw AstraError("\(path) is corrupt or from another version (\(error)); \(hint)") }
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
    public var checkpoints: [Int]
}

public struct TrainingMetrics: Codable, Sendable {
    public var train: Evaluation
    public var test: Evaluation
    public var seconds: Double
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

    /// Loads `dir`, checking every layer's shape and the parameter hash.
    public static func load(from dir: String) throws -> (Network<Float>, ModelDescription) {
        let hint = "train it with `astra-dist train`"
        let d = try WorkDirectory.readJSON(ModelDescription.self, from: dir + "/model.json", hint: hint)
        if let ops = d.operations, let problem = NetworkShape.problem(with: ops) { throw AstraError("\(dir)/model.json: \(problem); \(hint)") }
        let shape = d.shape
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

extension ModelDescription {
    /// The network this model is: its operations, or an MLP with ReLU of `widths`.
    public var shape: NetworkShape { operations.map { NetworkShape(operations: $0) } ?? NetworkShape(widths: widths) }
}
