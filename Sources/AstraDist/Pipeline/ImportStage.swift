import Foundation

/// `astra-dist import`: a network trained elsewhere (PyTorch) becomes the workspace's model
/// `models/seed-S/`, as if `train` had made it, so `fit`, `score` and the studies use it
/// unchanged. Every rank reads and checks the file (the same error everywhere), rank 0 writes.
public enum ImportStage {
    /// The parameters of `weightsPath` checked against `architecture`: run before anything is
    /// written. Throws one line per mismatch (separate `error:` lines), every one listed.
    public static func parameters(weightsPath: String, architecture: ArchitectureFile, architecturePath: String) throws -> ArchitectureFile.ImportedWeights {
        switch architecture.parameters(from: try TensorArchive.read(weightsPath)) {
        case .success(let p): return p
        case .failure(let m):
            throw AstraError(m.lines.map { "--weights \(weightsPath) vs --architecture \(architecturePath): \($0)" }.joined(separator: "\nerror: "))
        }
    }

    /// Saves `parameters` (from `parameters(weightsPath:…)`) as the model of `seed`.
    /// Precondition: the configuration's operations are the architecture's (the command sets
    /// them), and `checkAgainstData` passed.
    public static func run(_ ctx: RunContext, parameters weights: ArchitectureFile.ImportedWeights, architecturePath: String, weightsPath: String, seed: UInt64) throws {
        let net = Network<Float>(shape: ctx.shape, loss: ctx.data.train.loss, parameters: weights.parameters, normalization: weights.normalization)
        let dir = ctx.workspace.modelDirectory(seed: seed)
        let record = ImportRecord(file: weightsPath, architecture: architecturePath, hash: ContentHash.of(try AtomicFile.read(weightsPath, hint: "")))
        if let (_, existing) = try? ctx.loadModel(seed: seed) {
            guard existing.parametersHash == net.contentHash else {
                throw AstraError("\(dir) already holds another model; import with another --seed or into a new --workdir")
            }
            ctx.log("import: \(dir) already holds these weights, nothing to do")
            return
        }
        let metrics = TrainingMetrics(train: net.evaluate(on: ctx.data.train), test: net.evaluate(on: ctx.data.test), seconds: 0)
        if ctx.comm.isRoot {
            try WorkDirectory.writeJSON(metrics, to: dir + "/metrics.json")
            let description = ModelDescription(widths: net.shape.widths, operations: net.shape.operations, loss: net.loss, seed: seed, steps: 0,
                                               configHash: ctx.config.hash, dataHash: ctx.data.hash, parametersHash: net.contentHash,
                                               checkpoints: [], learningRate: nil, imported: record)
            try ModelStore.save(net, description: description, to: dir)
        }
        ctx.comm.barrier()
        let quality = metrics.test.accuracy.map { String(format: "test accuracy %.4f", $0) } ?? String(format: "test R² %.4f", metrics.test.r2 ?? .nan)
        ctx.log("import: \(weightsPath) → \(dir)/ (\(net.shape.parameterCount) parameters, \(net.shape.description)): train loss \(String(format: "%.4f", metrics.train.loss)), \(quality)")
    }

    /// The architecture's loss must be the data's (classification: cross-entropy; regression: mse).
    public static func checkAgainstData(_ architecture: ArchitectureFile, path: String, ctx: RunContext) throws {
        let shape = architecture.shape, train = ctx.data.train
        guard architecture.loss == train.loss else {
            throw AstraError("--architecture \(path) has loss \(architecture.loss.rawValue), but setting \(ctx.config.setting)'s data needs \(train.loss.rawValue); fix \"loss\"")
        }
        guard shape.inputCount == train.featureCount, shape.outputCount == train.outputCount else {
            throw AstraError("--architecture \(path) maps \(shape.inputCount) inputs to \(shape.outputCount) outputs, but setting \(ctx.config.setting)'s data has \(train.featureCount) features and \(train.outputCount) outputs; fix the first and last layer widths")
        }
    }
}
