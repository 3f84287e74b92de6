import Foundation

/// `score --method tracin` (spec §8): TracInCP over a model's training checkpoints
/// (`models/seed-S/checkpoint-K/`, the configuration's `checkpointEvery` schedule), the
/// training set sharded over ranks, every rank scoring all queries against its shard.
///
/// θ_T is always one of the checkpoints: the last scheduled one when the schedule ends at the
/// final step, else the final weights are appended, standing for the steps after the last
/// checkpoint. Checkpoint c stands for the steps since the previous one, at the learning rate
/// its `model.json` records (`TracIn.weights`).
public enum TracInStage {
    public static func run(_ ctx: RunContext, _ req: ScoreStage.Request) throws {
        let comm = ctx.comm
        let (querySet, name) = try ScoreStage.begin(ctx, req)
        let q = querySet.data.count, n = ctx.data.train.count
        let shard = blockRange(count: n, rank: comm.rank, size: comm.size)
        for seed in ctx.seeds {
            let (net, model) = try ctx.loadModel(seed: seed)
            var t = now()
            let (checkpoints, steps) = try load(ctx, seed: seed, final: net, model: model)
            ctx.log("score: tracin, seed \(seed): \(q) queries × \(n) training examples over \(steps.count) checkpoints (steps \(steps.map(String.init).joined(separator: ","))) on \(comm.size) rank(s)")
            var seconds = ["checkpoints": now() - t]
            t = now()
            let local = TracIn.scores(checkpoints: checkpoints, queries: querySet.data, train: ctx.data.train, rows: shard, queryBlock: req.queryBlock)
            seconds["contraction"] = now() - t
            for k in seconds.keys.sorted() { seconds[k] = comm.allreduceMax(seconds[k]!) }
            if let scores = ScoreStage.gatherMatrix(local, rows: 0..<q, columns: shard, shape: (q, n), comm: comm) {
                var meta = ScoreStage.metadata(ctx, req, seed: seed, model: model, querySet: querySet, reports: [], seconds: seconds)
                meta.name = name; meta.damping = 0
                meta.solver = ["method": .text("tracin"), "checkpointSteps": .text(steps.map(String.init).joined(separator: ",")),
                               "checkpointWeights": .text(checkpoints.map { "\($0.weight)" }.joined(separator: ","))]
                ScoreStage.report(try ScoreStage.write(scores, ctx, req, meta: meta, network: net, queries: querySet.data,
                                                       advice: "a checkpoint's gradients overflow"))
                ctx.log(String(format: "score: seed %llu done: checkpoints %.2f s, contraction %.2f s", seed, seconds["checkpoints"]!, seconds["contraction"]!))
            }
            comm.barrier()
        }
    }

    /// The checkpoints of `seed` with their weights, and their steps (θ_T last).
    /// - Throws: one line naming `--checkpoint-every` when the workspace records none; a
    ///   checkpoint of another configuration or data is refused like a model.
    static func load(_ ctx: RunContext, seed: UInt64, final: Network<Float>, model: ModelDescription) throws -> ([TracIn.Checkpoint<Float>], [Int]) {
        guard !model.checkpoints.isEmpty else { throw AstraError(missingCheckpoints(ctx, seed: seed)) }
        var nets: [Network<Float>] = [], steps: [Int] = [], rates: [Double] = []
        for k in model.checkpoints.sorted() {
            let dir = ctx.workspace.modelDirectory(ModelReference(seed: seed, checkpoint: k))
            let (net, d) = try ModelStore.load(from: dir)
            guard d.configHash == ctx.config.hash, d.dataHash == ctx.data.hash, d.steps == k, d.shape == ctx.shape else {
                throw AstraError("\(dir)/model.json is not step \(k) of this workspace's training; re-run `astra-dist train` in a new --workdir")
            }
            nets.append(net); steps.append(k); rates.append(d.learningRate ?? ctx.config.recipe.learningRate)
        }
        if steps.last! < model.steps {
            nets.append(final); steps.append(model.steps); rates.append(model.learningRate ?? ctx.config.recipe.learningRate)
        }
        let weights = TracIn.weights(steps: steps, learningRates: rates)
        return (zip(nets, weights).map { TracIn.Checkpoint(network: $0, weight: $1) }, steps)
    }

    /// The refusal when a workspace has no checkpoints, with a schedule that gives 15 (5 per
    /// SOURCE segment of 3; spec §7).
    static func missingCheckpoints(_ ctx: RunContext, seed: UInt64) -> String {
        let steps = ctx.config.steps(examples: ctx.data.train.count), every = max(1, steps / 15)
        return "score: tracin needs training checkpoints, and \(ctx.workspace.modelDirectory(seed: seed)) has none (config.json sets no checkpointEvery); "
            + "train a new --workdir with --checkpoint-every K, e.g. K = \(every) for this recipe's \(steps) steps (15 checkpoints, 5 per SOURCE segment)"
    }
}
