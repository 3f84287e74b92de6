import Foundation

/// The per-segment artifacts of `score --method source|astra-source` (spec §7), made on
/// demand and kept as files, so a re-run (after a kill, or for the other method) skips what
/// is finished:
/// - `models/seed-S/segment-L/`: θ̄_ℓ, the mean of the segment's checkpoints (FAST-SOURCE),
///   with `segment.json` (`SegmentPlan`) written before `model.json`;
/// - `factors/seed-S/segment-L/`: the EK-FAC fitted at θ̄_ℓ exactly as `fit` fits a seed
///   (`FitStage.fitOne`: sharded training set, one allreduce per layer, eigendecompositions
///   spread over ranks).
public enum SourceStage {
    /// A seed's segments, ready to score.
    public struct Prepared: Sendable {
        public var plans: [SegmentPlan]
        public var segments: [SourceSegment<Float>]
        /// Hash of the segments' factor manifests, in order (recorded in the scores).
        public var factorsHash: String
        /// The K_ℓ-weighted mean of the λ_ℓ.
        public var impliedDamping: Double { SourceScoring.impliedDamping(steps: plans.map(\.steps), times: plans.map(\.time)) }

        /// Scores of one query block (`SourceScoring.scores`); astra-source keeps segment ℓ's
        /// solver state beside the block's (`block-Q0-Q1.segment-L.bin`).
        func scores(_ v: QueryGradients<Float>, _ req: ScoreStage.Request, train: Dataset, rows: Range<Int>, comm: Communicator,
                    seconds: inout [String: Double], progress: ((String) -> Void)?, checkpoint: SolverCheckpoint) throws -> ([Float], [SolverReport]) {
            try SourceScoring.scores(v, segments: segments, method: req.method, options: req.options, train: train, rows: rows, comm: comm,
                                     seconds: &seconds, progress: progress) { l in
                SolverCheckpoint(path: String(checkpoint.path.dropLast(4)) + ".segment-\(l + 1).bin",
                                 provenance: checkpoint.provenance.merging(["segment": "\(l + 1)"]) { _, new in new })
            }
        }

        /// Records the segments and the damping SOURCE implies (beside the setting's stated one).
        func annotate(_ meta: inout ScoreMetadata, statedDamping: Double) {
            meta.damping = impliedDamping
            meta.factorsHash = factorsHash
            meta.solver["damping"] = .init(impliedDamping); meta.solver["impliedDamping"] = .init(impliedDamping)
            meta.solver["statedDamping"] = .init(statedDamping)
            meta.solver["segments"] = .init(plans.count)
            for p in plans {
                meta.solver["segment\(p.segment)"] = .text("steps \(p.startStep)-\(p.endStep), K \(p.steps), eta \(p.effectiveLearningRate), lambda \(p.damping), checkpoints \(p.checkpoints.map(String.init).joined(separator: ","))")
            }
        }
    }

    /// Makes (or loads) the segment models and factors of `seed` for `options.segments`.
    /// Collective: every rank averages the same checkpoints (identically; rank 0 writes),
    /// then fits together.
    /// - Throws: one line if the checkpoints do not split into the segments (naming
    ///   `--checkpoint-every`), if a checkpoint is missing, or if a segment directory belongs to
    ///   another split (it names the directories to move aside).
    public static func prepare(_ ctx: RunContext, seed: UInt64, model final: ModelDescription, options: SolverOptions, fisher: FisherMode,
                               batchSize: Int = 256) throws -> Prepared {
        let segments = options.segments ?? CheckpointSchedule.defaultSegments
        let steps = final.checkpoints.sorted()
        let rates = try steps.map { k in
            try WorkDirectory.readJSON(ModelDescription.self, from: ctx.workspace.modelDirectory(ModelReference(seed: seed, checkpoint: k)) + "/model.json",
                                       hint: "re-run `astra-dist train` in a new --workdir").learningRate ?? ctx.config.recipe.learningRate
        }
        let plans = try SegmentPlan.split(checkpoints: steps, learningRates: rates, totalSteps: final.steps, segments: segments, recipe: ctx.config.recipe,
                                          finalModelHash: final.parametersHash, model: ctx.workspace.modelDirectory(seed: seed) + "/model.json")
        var prepared: [SourceSegment<Float>] = []
        for plan in plans {
            let reference = ModelReference(seed: seed, segment: plan.segment)
            let (net, model) = try segmentModel(ctx, reference, plan: plan)
            let ekfac = try FitStage.fitOne(ctx, reference, network: net, model: model, mode: fisher, batchSize: batchSize)
            prepared.append(SourceSegment(network: net, ekfac: ekfac, dynamics: plan.dynamics))
        }
        let result = Prepared(plans: plans, segments: prepared, factorsHash: try factorsHash(ctx, seed: seed, segments: plans.map(\.segment)))
        ctx.log(String(format: "source: seed %llu, %d segments (K %@; λ_ℓ %@): implied damping %.4g (the setting's %.4g)", seed, plans.count,
                       plans.map { "\($0.steps)" }.joined(separator: ", "), plans.map { String(format: "%.4g", $0.damping) }.joined(separator: ", "),
                       result.impliedDamping, ctx.config.damping))
        return result
    }

    /// Hash of the factor manifests of `seed`'s segments 1…L, in order (what SOURCE scores record).
    static func factorsHash(_ ctx: RunContext, seed: UInt64, segments: Int) throws -> String {
        try factorsHash(ctx, seed: seed, segments: Array(1...max(segments, 1)))
    }

    static func factorsHash(_ ctx: RunContext, seed: UInt64, segments: [Int]) throws -> String {
        let manifests = try segments.map { l in
            ContentHash.of(try AtomicFile.read(ctx.workspace.factorsDirectory(ModelReference(seed: seed, segment: l)) + "/" + EKFAC.manifestName,
                                               hint: "re-run `astra-dist score`"))
        }
        return ContentHash.of(manifests.joined(separator: ","))
    }

    /// θ̄_ℓ: loaded if `segment.json` matches `plan`, else averaged from the checkpoints and
    /// written (rank 0). A directory of another split is refused, never overwritten: scores
    /// made from it record its hashes.
    static func segmentModel(_ ctx: RunContext, _ reference: ModelReference, plan: SegmentPlan) throws -> (Network<Float>, ModelDescription) {
        let dir = ctx.workspace.modelDirectory(reference), planPath = dir + "/segment.json"
        // Rank 0 decides: another rank could otherwise look after rank 0 has written it.
        let exists = ctx.comm.broadcastBytes([FileManager.default.fileExists(atPath: dir + "/model.json") ? 1 : 0], root: 0) == [1]
        if exists {
            let stored = try WorkDirectory.readJSON(SegmentPlan.self, from: planPath, hint: "move \(dir) aside")
            guard stored == plan else {
                throw AstraError("\(dir) holds segment \(stored.segment) of \(stored.segments) (checkpoints \(stored.checkpoints.map(String.init).joined(separator: ","))), this request segment \(plan.segment) of \(plan.segments): move \(ctx.workspace.root)/models/seed-\(reference.seed)/segment-* and factors/seed-\(reference.seed)/segment-* aside, or pass --segments \(stored.segments)")
            }
            ctx.log("source: \(reference) already averaged, skipped")
            return try ctx.loadModel(reference)
        }
        var sum = [Double](repeating: 0, count: ctx.shape.parameterCount)
        // Batch norm (not attributed, not averaged): the state of the segment's last checkpoint.
        var normalization: [Float]? = nil
        for k in plan.checkpoints {
            let (net, _) = try ctx.loadModel(ModelReference(seed: reference.seed, checkpoint: k))
            for i in sum.indices { sum[i] += Double(net.parameters[i]) }
            normalization = net.normalization
        }
        let mean = sum.map { Float($0 / Double(plan.checkpoints.count)) }
        let net = Network<Float>(shape: ctx.shape, loss: ctx.data.train.loss, parameters: mean, normalization: normalization)
        let model = TrainStage.describe(ctx, net, seed: reference.seed, steps: plan.endStep, checkpoints: plan.checkpoints)
        var failure: String? = nil
        if ctx.comm.isRoot {
            do {
                try WorkDirectory.writeJSON(plan, to: planPath)
                try ModelStore.save(net, description: model, to: dir)
            } catch { failure = "\(error)" }
        }
        if let message = ctx.comm.firstFailure(failure) { throw AstraError(message) }
        ctx.log("source: \(reference) averaged from checkpoints \(plan.checkpoints.map(String.init).joined(separator: ","))")
        return (net, model)
    }
}
