import Foundation

/// Resuming `score`: a seed whose scores are already filed, made exactly as asked, is not
/// scored again, so re-running a killed multi-seed command (or a launch script) continues
/// where it stopped. `run` uses the same test for a whole method.
extension ScoreStage {
    /// Whether `seed`'s scores under `name` for `querySet` exist and were made exactly as `req`
    /// asks: the same model, configuration, data, queries, solver settings and Fisher mode, the
    /// current factors (the segments' factors for the SOURCE family), and the top-k and trace
    /// files if `req` asks for them. Reads files only: O(size of the metadata and factor manifests).
    static func isFinished(_ ctx: RunContext, _ req: Request, name: String, seed: UInt64, querySet: QuerySet) -> Bool {
        guard let (_, meta) = try? ScoreFiles.read(ctx, method: name, seed: seed, querySet: querySet.name),
              let (_, model) = try? ctx.loadModel(seed: seed),
              meta.modelHash == model.parametersHash, meta.configHash == ctx.config.hash, meta.dataHash == ctx.data.hash,
              meta.settings == req.settings, meta.querySet == querySet.name, meta.queriesHash == querySet.contentHash else { return false }
        let stem = ctx.workspace.scoresStem(name: name, model: ModelReference(seed: seed), querySet: querySet.name)
        if req.top > 0 && !FileManager.default.fileExists(atPath: stem + ".top.json") { return false }
        if let trace = req.tracePath, !FileManager.default.fileExists(atPath: trace) { return false }
        guard req.method.usesEigenbasis else { return true }
        let segments = req.options.segments ?? CheckpointSchedule.defaultSegments
        let factors = req.method.isSource ? try? SourceStage.factorsHash(ctx, seed: seed, segments: segments) : try? factorsHash(ctx, seed: seed)
        return meta.fisher == req.fisher && factors != nil && meta.factorsHash == factors
    }

    /// `ctx` restricted to the seeds some request of `sweep` still has to score, logging each
    /// finished seed. Rank 0 decides and broadcasts, so every rank skips the same seeds.
    static func unfinished(_ ctx: RunContext, _ sweep: [Request]) throws -> RunContext {
        let querySet = querySet(ctx, sweep[0])
        var finished = ctx.seeds.map { seed -> UInt8 in
            guard ctx.comm.isRoot else { return 0 }
            return sweep.allSatisfy { isFinished(ctx, $0, name: $0.resultName(defaultDamping: ctx.config.damping), seed: seed, querySet: querySet) } ? 1 : 0
        }
        ctx.comm.broadcast(&finished, root: 0)
        let names = sweep.map { "scores/" + $0.resultName(defaultDamping: ctx.config.damping) }.joined(separator: ", ")
        for (seed, done) in zip(ctx.seeds, finished) where done == 1 {
            ctx.log("score: seed \(seed): \(names) exist, made with these options and this model, skipped (delete its seed-\(seed).* files to score it again)")
        }
        return try ctx.with(seeds: zip(ctx.seeds, finished).filter { $0.1 == 0 }.map(\.0))
    }
}
