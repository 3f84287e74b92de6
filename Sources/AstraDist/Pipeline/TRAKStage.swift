import Foundation

/// `score --method trak` (spec §8): TRAK per model with the Kronecker-factored Gaussian
/// projection (`TRAKProjection.kronecker`, keyed by the model seed), the training set
/// sharded over ranks and ΦᵀΦ summed with one allreduce (`TRAK.scores`). Besides the scores
/// it writes the two factors of the ensemble rule, `STEM.kernel.npy` (Q×N: `ψ_qᵀ(ΦᵀΦ +
/// εI)⁻¹φ_m`) and `STEM.weights.npy` (N: `Q_mm`), so `lds --ensemble` can average them
/// separately (`ensembleScores`).
public enum TRAKStage {
    /// `req` with k canonical: an explicit `--projection-dim` equal to the workspace's default
    /// is stored as nil, so the result is named `trak` either way.
    public static func resolved(_ req: ScoreStage.Request, _ ctx: RunContext) -> ScoreStage.Request {
        var r = req
        if r.options.projectionDimension == defaultDimension(ctx) { r.options.projectionDimension = nil }
        return r
    }

    /// The default k of this workspace (`TRAK.defaultProjectionDimension`).
    public static func defaultDimension(_ ctx: RunContext) -> Int {
        TRAK.defaultProjectionDimension(parameters: ctx.shape.parameterCount, setting: ctx.config.setting)
    }

    public static func run(_ ctx: RunContext, _ req: ScoreStage.Request) throws {
        let comm = ctx.comm
        let (querySet, name) = try ScoreStage.begin(ctx, req)
        let q = querySet.data.count, n = ctx.data.train.count
        let shard = blockRange(count: n, rank: comm.rank, size: comm.size)
        let k = req.options.projectionDimension ?? defaultDimension(ctx)
        for seed in ctx.seeds {
            let (net, model) = try ctx.loadModel(seed: seed)
            ctx.log("score: trak, seed \(seed): \(q) queries × \(n) training examples, k = \(k) (P = \(ctx.shape.parameterCount)) on \(comm.size) rank(s)")
            let part = try TRAK.scores(network: net, train: ctx.data.train, rows: shard, queries: querySet.data,
                                       options: TRAK.Options(projection: .kronecker(seed: seed, dimension: k)), comm: comm)
            var seconds = part.seconds
            for key in seconds.keys.sorted() { seconds[key] = comm.allreduceMax(seconds[key]!) }
            let kernel = ScoreStage.gatherMatrix(part.kernel.map { Float($0) }, rows: 0..<q, columns: shard, shape: (q, n), comm: comm)
            let weights = ScoreStage.gatherMatrix(part.weights.map { Float($0) }, rows: 0..<1, columns: shard, shape: (1, n), comm: comm)
            if let kernel, let weights {
                let stem = ctx.workspace.scoresStem(name: name, model: ModelReference(seed: seed), querySet: querySet.name)
                try NPY.write(kernel, shape: [q, n], to: stem + ".kernel.npy")
                try NPY.write(weights, shape: [n], to: stem + ".weights.npy")
                var meta = ScoreStage.metadata(ctx, req, seed: seed, model: model, querySet: querySet, reports: [], seconds: seconds)
                meta.name = name; meta.damping = part.ridge
                meta.solver = ["method": .text("trak"), "projection": .text("kronecker-gaussian"), "projectionDimension": .init(k), "projectionSeed": .init(Double(seed)),
                               "ridge": .init(part.ridge), "ridgeScale": .init(TRAK.defaultRidgeScale)]
                let written = try ScoreStage.write(TRAK.weighted(kernel: kernel, weights: weights), ctx, req, meta: meta, network: net, queries: querySet.data,
                                                   advice: "the features overflow")
                ScoreStage.report([stem + ".kernel.npy", stem + ".weights.npy"] + written)
                ctx.log(String(format: "score: seed %llu done: features %.2f s, gram %.2f s, solve %.2f s, scores %.2f s", seed,
                               seconds["features"]!, seconds["gram"]!, seconds["solve"]!, seconds["scores"]!))
            }
            comm.barrier()
        }
    }

    /// TRAK's ensemble rule (spec §8): the mean over `seeds` of the kernels times the mean of
    /// the weights (not the mean of the per-model scores), from `scores/NAME/seed-S.kernel.npy`
    /// and `.weights.npy` of the workspace's queries.
    public static func ensembleScores(_ ctx: RunContext, name: String, seeds: [UInt64]) throws -> [Float] {
        var kernel: [Double] = [], weights: [Double] = []
        let hint = "re-run `astra-dist score --workdir \(ctx.workspace.root) --method trak`"
        for seed in seeds {
            let stem = ctx.workspace.scoresStem(name: name, model: ModelReference(seed: seed))
            let kv = try NPY.read(stem + ".kernel.npy", hint: hint).values(Float.self), wv = try NPY.read(stem + ".weights.npy", hint: hint).values(Float.self)
            guard wv.count == ctx.data.train.count, kv.count == wv.count * ctx.data.queries.count else {
                throw AstraError("\(stem).kernel.npy and .weights.npy do not match the workspace's \(ctx.data.queries.count) queries × \(ctx.data.train.count) examples; \(hint)")
            }
            if kernel.isEmpty { kernel = [Double](repeating: 0, count: kv.count); weights = [Double](repeating: 0, count: wv.count) }
            for i in kv.indices { kernel[i] += Double(kv[i]) }
            for i in wv.indices { weights[i] += Double(wv[i]) }
        }
        let e = Double(seeds.count * seeds.count)
        return TRAK.weighted(kernel: kernel.map { Float($0) }, weights: weights.map { Float($0 / e) })
    }
}
