import Foundation

/// `astra-dist fit`: EK-FAC factors for each model seed (spec §3), the training set sharded
/// over ranks in contiguous blocks. Rank 0 writes `factors/seed-S/`; a seed whose factors
/// exist and match its model is skipped.
public enum FitStage {
    public static func run(_ ctx: RunContext, mode: FisherMode, batchSize: Int = 256) throws {
        for seed in ctx.seeds {
            let (net, model) = try ctx.loadModel(seed: seed)
            try fitOne(ctx, ModelReference(seed: seed), network: net, model: model, mode: mode, batchSize: batchSize)
        }
    }

    /// The factors of the model `reference` (a seed, or a SOURCE segment): loaded if valid
    /// ones exist (a re-run skips them), else fitted with the training set sharded over
    /// ranks and written by rank 0 to `factors/MODEL/`. Collective.
    @discardableResult
    public static func fitOne(_ ctx: RunContext, _ reference: ModelReference, network net: Network<Float>, model: ModelDescription,
                              mode: FisherMode, batchSize: Int = 256) throws -> EKFAC {
        let label = reference.checkpoint == nil && reference.segment == nil ? "seed \(reference.seed)" : reference.component
        if let f = try? load(ctx, reference, model: model, mode: mode) { ctx.log("fit: \(label) already fitted, skipped"); return f }
        setBLASThreads(ctx.threads)
        let shard = blockRange(count: ctx.data.train.count, rank: ctx.comm.rank, size: ctx.comm.size)
        let ekfac = try FitRunner.fit(network: net, data: ctx.data.train, shard: shard, comm: ctx.comm, mode: mode, seed: reference.seed,
                                      batchSize: batchSize, progress: { ctx.log($0) })
        let meta = provenance(ctx, reference, model: model)
        if ctx.comm.isRoot { try ekfac.write(to: ctx.workspace.factorsDirectory(reference), meta: meta) }
        ctx.comm.barrier()
        return ekfac.with(meta: meta)
    }

    static func provenance(_ ctx: RunContext, _ reference: ModelReference, model: ModelDescription) -> [String: String] {
        var p = ["modelHash": model.parametersHash, "configHash": ctx.config.hash, "dataHash": ctx.data.hash, "seed": "\(reference.seed)"]
        if reference.checkpoint != nil || reference.segment != nil { p["model"] = reference.component }
        return p
    }

    /// Loads the factors of `seed`, refusing factors fitted on another model or configuration.
    public static func load(_ ctx: RunContext, seed: UInt64, model: ModelDescription, mode: FisherMode? = nil) throws -> EKFAC {
        try load(ctx, ModelReference(seed: seed), model: model, mode: mode)
    }

    /// Loads the factors of `reference`, refusing factors fitted on another model or configuration.
    public static func load(_ ctx: RunContext, _ reference: ModelReference, model: ModelDescription, mode: FisherMode? = nil) throws -> EKFAC {
        let dir = ctx.workspace.factorsDirectory(reference)
        let f = try EKFAC.read(from: dir, expecting: ctx.shape)
        let expected = provenance(ctx, reference, model: model)
        guard f.meta["modelHash"] == expected["modelHash"], f.meta["configHash"] == expected["configHash"], f.meta["dataHash"] == expected["dataHash"] else {
            throw AstraError("\(dir)/\(EKFAC.manifestName) was fitted on another model or configuration; re-run `astra-dist fit --workdir \(ctx.workspace.root)`")
        }
        if let mode, f.mode != mode {
            throw AstraError("\(dir) holds \(f.mode.rawValue)-Fisher factors, not \(mode.rawValue); delete it or re-run fit with --fisher \(f.mode.rawValue)")
        }
        return f
    }
}
