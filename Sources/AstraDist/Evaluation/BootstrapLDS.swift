/// A 95% bootstrap confidence interval of the LDS over subsets, as the seed's code takes it
/// (SteveHong1901/Hessian, `influence/lds.py`: scipy's `bootstrap` resampling the M subsets
/// with replacement, statistic the mean over queries of each query's Spearman correlation on
/// the resampled subsets, NaN queries left out). Differences, written down: a percentile
/// interval (scipy's default is BCa) over `resamples` draws (the seed: M) from the
/// counter-based generator; and the point estimate stays the LDS on all subsets (the seed
/// reports the interval's midpoint).
public struct BootstrapInterval: Codable, Sendable, Equatable {
    public var low: Double
    public var high: Double
    public var resamples: Int

    /// `groundTruth` and `predictions` M×Q row-major. Complexity: resamples · Q · M log M.
    public init(groundTruth: [Double], predictions: [Double], subsets m: Int, queries q: Int, resamples: Int = 1000, seed: UInt64 = 42) {
        precondition(groundTruth.count == m * q && predictions.count == m * q && m > 1 && resamples > 1, "BootstrapInterval: M×Q inputs, M ≥ 2")
        var stats: [Double] = []
        var gt = [Double](repeating: 0, count: m * q), pr = gt
        for b in 0..<resamples {
            var rng = CounterRandom(seed: seed, purpose: .bootstrap, index: UInt64(b))
            for j in 0..<m {
                let row = rng.nextInt(below: m)
                for k in 0..<q { gt[j * q + k] = groundTruth[row * q + k]; pr[j * q + k] = predictions[row * q + k] }
            }
            let mean = LDS.evaluate(groundTruth: gt, predictions: pr, subsets: m, queries: q).mean
            if mean.isFinite { stats.append(mean) }
        }
        stats.sort()
        func quantile(_ p: Double) -> Double {
            guard !stats.isEmpty else { return .nan }
            let x = p * Double(stats.count - 1), i = Int(x), f = x - Double(i)
            return i + 1 < stats.count ? stats[i] * (1 - f) + stats[i + 1] * f : stats[i]
        }
        low = quantile(0.025); high = quantile(0.975); self.resamples = resamples
    }
}
