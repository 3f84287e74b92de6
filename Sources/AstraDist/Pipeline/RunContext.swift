import Foundation

/// What every stage needs: the communicator, the workspace, the resolved configuration and
/// the prepared data (loaded identically on every rank).
public final class RunContext: @unchecked Sendable {
    public let comm: Communicator
    public let workspace: WorkDirectory
    public let config: ExperimentConfig
    public let data: PreparedData
    /// BLAS threads per rank for work whose result must not depend on the rank count.
    public let threads: Int
    /// The model seeds this command processes (`--seeds`, default the configuration's).
    public let seeds: [UInt64]

    /// The network of the configuration on this data.
    public let shape: NetworkShape

    /// Throws if the configuration's architecture does not fit the data.
    public init(comm: Communicator, workspace: WorkDirectory, config: ExperimentConfig, data: PreparedData, threads: Int, seeds: [UInt64]? = nil) throws {
        self.comm = comm; self.workspace = workspace; self.config = config; self.data = data; self.threads = threads
        self.seeds = seeds ?? config.seeds
        shape = try Self.networkShape(config: config, data: data)
    }

    /// This context for other model seeds (the same communicator, workspace, configuration and data).
    public func with(seeds: [UInt64]) throws -> RunContext {
        try RunContext(comm: comm, workspace: workspace, config: config, data: data, threads: threads, seeds: seeds)
    }

    /// The network `config` describes for `data`: a named architecture or the MLP of `hidden`.
    /// Throws if the architecture does not fit the data.
    public static func networkShape(config: ExperimentConfig, data: PreparedData) throws -> NetworkShape {
        // An imported model's operation list, else a named architecture, else the MLP of `hidden`.
        if let ops = config.operations { return NetworkShape(operations: ops) }
        let activation = config.activation.flatMap(Pointwise.init(rawValue:)) ?? .relu
        if let name = config.architecture {
            return try Architectures.shape(name, features: data.train.featureCount, classes: data.train.outputCount, activation: activation)
        }
        return NetworkShape(widths: [data.train.featureCount] + config.hidden + [data.train.outputCount], activation: activation)
    }

    /// Progress and results for people: rank 0 only, on stderr, flushed at once.
    public func log(_ message: String) {
        guard comm.isRoot else { return }
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }

    /// Loads the trained model of `seed`, refusing one trained on another config or data.
    public func loadModel(seed: UInt64) throws -> (Network<Float>, ModelDescription) { try loadModel(ModelReference(seed: seed)) }

    /// Loads the model `reference` (a seed's final weights, a checkpoint or a SOURCE segment),
    /// refusing one made on another config or data.
    public func loadModel(_ reference: ModelReference) throws -> (Network<Float>, ModelDescription) {
        let dir = workspace.modelDirectory(reference)
        let (net, d) = try ModelStore.load(from: dir)
        guard d.configHash == config.hash, d.dataHash == data.hash, d.shape == shape else {
            throw AstraError("\(dir)/model.json was trained on another configuration or data; re-run `astra-dist train --workdir \(workspace.root)`")
        }
        return (net, d)
    }
}

/// Wall-clock seconds.
public func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}
