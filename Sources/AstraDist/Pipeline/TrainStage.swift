import Foundation

/// `astra-dist train`: one model per seed, seeds spread over ranks (seed k on rank k mod K).
/// Each model trains with a fixed BLAS thread count, so a seed is bit-identical whatever
/// the number of ranks. A rank writes the directories of the seeds it trained (nobody else
/// writes them); a seed whose valid model exists is skipped, so a re-run resumes.
public enum TrainStage {
    /// Trains every seed of `ctx` that has no valid model, saving checkpoints on the
    /// configuration's schedule (`checkpointEvery`).
    public static func run(_ ctx: RunContext) throws {
        let seeds = ctx.seeds
        var failure: String? = nil
        for (k, seed) in seeds.enumerated() where k % ctx.comm.size == ctx.comm.rank {
            if (try? ctx.loadModel(seed: seed)) != nil { ctx.log("train: seed \(seed) already trained, skipped"); continue }
            do { try ctx.config.requireRecipe(for: "train (seed \(seed))", workspace: ctx.workspace.root) } catch { failure = "\(error)"; break }
            do { try trainOne(ctx, seed: seed, checkpointEvery: ctx.config.checkpointEvery ?? 0) }
            catch { failure = "\(error)"; break }
        }
        if let message = ctx.comm.firstFailure(failure) { throw AstraError(message) }
    }

    static func trainOne(_ ctx: RunContext, seed: UInt64, checkpointEvery: Int) throws {
        setBLASThreads(ctx.threads)
        let dir = ctx.workspace.modelDirectory(seed: seed)
        let start = now()
        var trainer = Trainer<Float>(shape: ctx.shape, recipe: ctx.config.recipe)
        let steps = ctx.config.steps(examples: ctx.data.train.count)
        if checkpointEvery > 0 { trainer.checkpointSteps = Set(stride(from: checkpointEvery, through: steps, by: checkpointEvery)) }
        var checkpoints: [Int] = []
        var checkpointError: Error? = nil
        let net = trainer.train(on: ctx.data.train, seed: seed) { step, n in
            checkpoints.append(step)
            let checkpointDirectory = ctx.workspace.modelDirectory(ModelReference(seed: seed, checkpoint: step))
            do { try ModelStore.save(n, description: describe(ctx, n, seed: seed, steps: step, checkpoints: []), to: checkpointDirectory) }
            catch { checkpointError = error }
        }
        if let checkpointError { throw checkpointError }
        guard net.parameters.allSatisfy(\.isFinite), net.normalization.allSatisfy(\.isFinite) else {
            throw AstraError("training seed \(seed) diverged (NaN weights); lower --lr (now \(ctx.config.recipe.learningRate))")
        }
        let seconds = now() - start
        let metrics = TrainingMetrics(train: net.evaluate(on: ctx.data.train), test: net.evaluate(on: ctx.data.test), seconds: seconds)
        try WorkDirectory.writeJSON(metrics, to: dir + "/metrics.json")
        try ModelStore.save(net, description: describe(ctx, net, seed: seed, steps: steps, checkpoints: checkpoints), to: dir)
        let r2 = metrics.test.r2.flatMap { $0.isFinite ? String(format: "test R² %.4f", $0) : nil } ?? "test R² undefined (constant held-out target)"
        let quality = metrics.test.accuracy.map { String(format: "test accuracy %.4f", $0) } ?? r2
        FileHandle.standardError.write(Data("train: seed \(seed) done in \(String(format: "%.2f", seconds)) s, train loss \(String(format: "%.4f", metrics.train.loss)), \(quality)\n".utf8))
    }

    static func describe(_ ctx: RunContext, _ net: Network<Float>, seed: UInt64, steps: Int, checkpoints: [Int]) -> ModelDescription {
        ModelDescription(widths: net.shape.widths, operations: net.shape == NetworkShape(widths: net.shape.widths) ? nil : net.shape.operations, loss: net.loss, seed: seed, steps: steps, configHash: ctx.config.hash,
                         dataHash: ctx.data.hash, parametersHash: net.contentHash, checkpoints: checkpoints,
                         learningRate: ctx.config.recipe.learningRate(afterSteps: steps, examples: ctx.data.train.count))
    }
}
