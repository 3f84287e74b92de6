/// One SOURCE segment of a training run (spec §7), as recorded in
/// `models/seed-S/segment-L/segment.json`: which checkpoints its averaged weights θ̄_ℓ are the
/// mean of (FAST-SOURCE), the steps it spans, and its momentum-effective learning rate.
///
/// The C checkpoints split into L consecutive groups of C/L; segment ℓ runs from the last
/// checkpoint of the group before (step 0 for ℓ = 1) to the last of its own, the final
/// segment to the end of training T (so Σ K_ℓ = T, even when T is not a checkpoint).
public struct SegmentPlan: Codable, Equatable, Sendable {
    /// ℓ, from 1.
    public var segment: Int
    /// L, segments of the split this segment belongs to.
    public var segments: Int
    /// Training steps of the checkpoints averaged.
    public var checkpoints: [Int]
    public var startStep: Int
    public var endStep: Int
    /// K_ℓ = endStep − startStep.
    public var steps: Int
    /// Mean over the checkpoints of the learning rate in force (η).
    public var learningRate: Double
    /// Training momentum β.
    public var momentum: Double
    /// η̄_ℓ = η/(1−β).
    public var effectiveLearningRate: Double
    /// Training weight decay (part of the segment's dynamics).
    public var weightDecay: Double
    /// η̄_ℓ·K_ℓ.
    public var time: Double
    /// λ_ℓ = 1/(η̄_ℓK_ℓ).
    public var damping: Double
    /// `parametersHash` of the final model θ_T whose run this is.
    public var finalModelHash: String

    public var dynamics: SegmentDynamics { SegmentDynamics(time: time, weightDecay: weightDecay) }

    /// Splits a run of `totalSteps` steps with checkpoints at `checkpoints` (ascending, with
    /// the learning rate in force at each) into `segments` segments.
    /// - Throws: one line when the checkpoints do not split into `segments` equal groups,
    ///   naming `--checkpoint-every` with an interval that would (and `--segments` values that
    ///   divide the checkpoints there are).
    public static func split(checkpoints: [Int], learningRates: [Double], totalSteps: Int, segments: Int, recipe: TrainingRecipe,
                             finalModelHash: String, model: String) throws -> [SegmentPlan] {
        precondition(checkpoints.count == learningRates.count, "SegmentPlan.split: \(checkpoints.count) checkpoints, \(learningRates.count) rates")
        let c = checkpoints.count
        guard segments >= 1, c >= segments, c % segments == 0 else {
            let every = CheckpointSchedule.suggestedEvery(steps: totalSteps, segments: segments)
            let fix = every.map { "train a new --workdir with --checkpoint-every \($0) (\(totalSteps / $0) checkpoints of \(totalSteps) steps)" }
                ?? "no interval gives a multiple of \(segments) checkpoints in \(totalSteps) steps"
            let divisors = c > 0 ? (1...c).filter { c % $0 == 0 }.map(String.init).joined(separator: ", ") : ""
            throw AstraError("SOURCE with \(segments) segments needs a positive multiple of \(segments) checkpoints; \(model) records \(c)"
                             + "; \(fix)" + (divisors.isEmpty ? "" : ", or pass --segments \(divisors)"))
        }
        let per = c / segments
        return (0..<segments).map { l in
            let group = Array(checkpoints[(l * per)..<((l + 1) * per)])
            let start = l == 0 ? 0 : checkpoints[l * per - 1], end = l == segments - 1 ? totalSteps : group.last!
            let eta = learningRates[(l * per)..<((l + 1) * per)].reduce(0, +) / Double(per)
            let etaBar = eta / (1 - recipe.momentum), time = etaBar * Double(end - start)
            return SegmentPlan(segment: l + 1, segments: segments, checkpoints: group, startStep: start, endStep: end, steps: end - start,
                               learningRate: eta, momentum: recipe.momentum, effectiveLearningRate: etaBar, weightDecay: recipe.weightDecay,
                               time: time, damping: 1 / time, finalModelHash: finalModelHash)
        }
    }
}
