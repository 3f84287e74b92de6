import Foundation

/// `astra-dist fit`: EK-FAC factors for each model seed (spec §3), the training set sharded
/// over ranks in contiguous blocks. Rank 0 writes `factors/seed-S/`; a seed whose factors
/// exist and match its model is skipped.
public enum FitStage {
    public static func run(_ ctx: RunContext, mode: FisherMode, batchSize: Int = 256) throws {
        for seed in ctx.seeds {
            let (net, model) = try ctx.loadModel(seed: seed)
            let dir = ctx.workspace.factorsDirectory(seed: seed)
            if (try? load(ctx, seed: seed, model: model, mode: mode)) != nil { ctx.log("fit: seed \(seed) already fitted, skipped"); continue }
            setBLASThreads(ctx.threads)
            let shard = blockRange(count: ctx.data.train.count, rank: ctx.comm.rank, size: ctx.comm.size)
            let ekfac = try FitRunner.fit(network: net, data: ctx.data.train, shard: shard, comm: ctx.comm, mode: mode, seed: seed,
                                          batchSize: batchSize, progress: { ctx.log($0) })
            if ctx.comm.isRoot { try ekfac.write(to: dir, meta: provenance(ctx, seed: seed, model: model)) }
            ctx.comm.barrier()
        }
    }

    static func provenance(_ ctx: RunContext, seed: UInt64, model: ModelDescription) -> [String: String] {
        ["modelHash": model.parametersHash, "configHash": ctx.config.hash, "dataHash": ctx.data.hash, "seed": "\(seed)"]
    }

    /// Loads the factors of `seed`, refusing factors fitted on another model or configuration.
    public static func load(_ ctx: RunContext, seed: UInt64, model: ModelDescription, mode: FisherMode? = nil) throws -> EKFAC {
        let dir = ctx.workspace.factorsDirectory(seed: seed)
        let f = try EKFAC.read(from: dir, expecting: ctx.shape)
        let expected = provenance(ctx, seed: seed, model: model)
        guard f.meta["modelHash"] == expected["modelHash"], f.meta["configHash"] == expected["configHash"], f.meta["dataHash"] == expected["dataHash"] else {
            throw AstraError("\(dir)/\(EKFAC.manifestName) was fitted on another model or configuration; re-run `astra-dist fit --workdir \(ctx.workspace.root)`")
        }
        if let mode, f.mode != mode {
            throw AstraError("\(dir) holds \(f.mode.rawValue)-Fisher factors, not \(mode.rawValue); delete it or re-run fit with --fisher \(f.mode.rawValue)")
        }
        return f
    }
}
