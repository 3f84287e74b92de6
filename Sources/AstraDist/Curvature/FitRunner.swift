import Foundation

/// Wall-clock seconds of each fit pass (the maximum over ranks) and throughput.
public struct FitTimings: Codable, Sendable, Equatable {
    /// Pass 1: Kronecker factors, including their allreduce.
    public var factorSeconds: Double
    /// Pass 2: eigendecompositions and broadcasts.
    public var eigenSeconds: Double
    /// Pass 3: eigenvalue correction, including its allreduce.
    public var correctionSeconds: Double
    /// N, examples over all ranks.
    public var examples: Int
    public var totalSeconds: Double { factorSeconds + eigenSeconds + correctionSeconds }
    /// Examples per second over all ranks, per data pass.
    public var factorExamplesPerSecond: Double { Double(examples) / max(factorSeconds, 1e-9) }
    public var correctionExamplesPerSecond: Double { Double(examples) / max(correctionSeconds, 1e-9) }
}

/// Distributed EK-FAC fit (spec §3): every rank works its shard of the training set.
///  1. Kronecker factors A, S: per-batch SYRKs into Double, one allreduce per layer.
///  2. Eigendecompositions, spread over ranks by cost and broadcast.
///  3. Eigenvalue correction Λ: per-batch GEMMs into Double, one allreduce per layer.
/// Randomness is keyed by global example index, so the result does not depend on the rank
/// count (to summation order).
public enum FitRunner {
    /// Fits the preconditioner. `shard` is the positions in `data` this rank owns (the
    /// shards of all ranks partition the training set, e.g. `blockRange`). Collective.
    public static func fit<T: BLASScalar>(network: Network<T>, data: Dataset, shard: Range<Int>, comm: Communicator, mode: FisherMode,
                                          seed: UInt64, batchSize: Int, progress: ((String) -> Void)? = nil) throws -> EKFAC {
        try fitTimed(network: network, data: data, shard: shard, comm: comm, mode: mode, seed: seed, batchSize: batchSize, progress: progress).ekfac
    }

    /// `fit`, also returning the time of each pass.
    public static func fitTimed<T: BLASScalar>(network: Network<T>, data: Dataset, shard: Range<Int>, comm: Communicator, mode: FisherMode,
                                               seed: UInt64, batchSize: Int, progress: ((String) -> Void)? = nil) throws -> (ekfac: EKFAC, timings: FitTimings) {
        precondition(shard.lowerBound >= 0 && shard.upperBound <= data.count, "FitRunner: shard \(shard) outside 0..<\(data.count)")
        let report = progressReporter(shard: shard.count, progress: progress)
        var clock = Date()
        func lap() -> Double {
            let now = Date(), t = now.timeIntervalSince(clock)
            clock = now
            return comm.allreduceMax(t)
        }

        progress?("fit: pass 1/3, Kronecker factors (\(mode.rawValue) Fisher, \(shard.count) examples on this rank)")
        let factors = KroneckerFactors.shardSums(network: network, data: data, shard: shard, mode: mode, seed: seed,
                                                 batchSize: batchSize, progress: { report("factors", $0) }).reduced(over: comm)
        guard factors.exampleCount > 0 else { throw AstraError("fit: the training set is empty; check the data files") }
        let factorSeconds = lap()

        progress?("fit: pass 2/3, eigendecomposition of \(2 * network.shape.layerCount) factors over \(comm.size) rank(s)")
        let bases = try factors.eigendecomposed(comm: comm)
        let eigenSeconds = lap()

        progress?("fit: pass 3/3, eigenvalue correction")
        let correction = EigenvalueCorrection.shardSums(network: network, data: data, shard: shard, bases: bases, mode: mode, seed: seed,
                                                        batchSize: batchSize, progress: { report("correction", $0) }).reduced(over: comm)
        let correctionSeconds = lap()

        let ekfac = EKFAC(shape: network.shape, bases: bases, correction: correction, mode: mode)
        let timings = FitTimings(factorSeconds: factorSeconds, eigenSeconds: eigenSeconds, correctionSeconds: correctionSeconds,
                                 examples: factors.exampleCount)
        progress?(String(format: "fit: done in %.2f s (factors %.2f s, eigen %.2f s, correction %.2f s; %.0f examples/s per data pass)",
                         timings.totalSeconds, factorSeconds, eigenSeconds, correctionSeconds,
                         Double(timings.examples) / max(factorSeconds + correctionSeconds, 1e-9) * 2))
        return (ekfac, timings)
    }

    /// Reports about every 10% of the shard.
    static func progressReporter(shard: Int, progress: ((String) -> Void)?) -> (String, Int) -> Void {
        var next = 0
        return { pass, done in
            guard let progress, shard > 0 else { return }
            if done >= next || done == shard {
                progress("fit: \(pass) \(done)/\(shard) examples on this rank")
                next = done + max(1, shard / 10)
            }
        }
    }
}
