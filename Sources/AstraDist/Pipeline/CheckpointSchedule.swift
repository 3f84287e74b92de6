/// The training checkpoint schedule (`ExperimentConfig.checkpointEvery`), in one place: the
/// default a new workspace records and the interval a refusal suggests. SOURCE's
/// FAST-SOURCE average needs several checkpoints per segment (spec §7), so the default records
/// `checkpointsPerSegment` per segment of the default `defaultSegments`.
public enum CheckpointSchedule {
    /// L, SOURCE segments by default (the paper's).
    public static let defaultSegments = 3
    /// Checkpoints per default segment the default schedule records (at least).
    public static let checkpointsPerSegment = 5

    /// Checkpoints saved by a run of `steps` steps every `every` steps (at k·every ≤ steps).
    public static func count(steps: Int, every: Int?) -> Int {
        guard let every, every > 0 else { return 0 }
        return steps / every
    }

    /// The default interval for a run of `steps` steps: `steps / 15`, at least 1, which records
    /// 15 checkpoints (5 per default segment) whenever `steps ≥ 225`, sub-epoch where a recipe
    /// has few epochs (MNIST: every 128 of 1,920 steps; Fashion-MNIST-N: every 19 of 288).
    public static func defaultEvery(steps: Int) -> Int {
        max(1, steps / (defaultSegments * checkpointsPerSegment))
    }

    /// The largest interval that records a positive multiple of `segments` checkpoints, at
    /// least `checkpointsPerSegment` per segment (or, for runs too short for that, at least
    /// one); nil if no interval gives a multiple of `segments`.
    public static func suggestedEvery(steps: Int, segments: Int) -> Int? {
        guard segments >= 1, steps >= segments else { return nil }
        let most = max(1, steps / (segments * checkpointsPerSegment))
        return stride(from: most, through: 1, by: -1).first { steps / $0 % segments == 0 }
    }
}
