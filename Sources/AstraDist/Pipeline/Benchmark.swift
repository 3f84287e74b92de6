import Foundation

/// Measurements for `astra-dist bench`: medians over repeated runs, FLOP counts of the
/// work an algorithm needs (2 per multiply-add), and the SGEMM peak measured in the same run.
public enum Benchmark {
    /// Achieved SGEMM GFLOP/s on n×n×n products at the current BLAS thread count (best of `runs`).
    public static func sgemmPeak(n: Int = 1024, runs: Int = 5) -> Double {
        let a = [Float](repeating: 1.0 / Float(n), count: n * n)
        var c = [Float](repeating: 0, count: n * n)
        var best = Double.infinity
        for _ in 0..<runs {
            let t = now()
            a.withUnsafeBufferPointer { ap in c.withUnsafeMutableBufferPointer { cp in
                Float.gemm(transA: false, transB: false, m: n, n: n, k: n, alpha: 1, a: ap.baseAddress!, lda: n, b: ap.baseAddress!, ldb: n, beta: 0, c: cp.baseAddress!, ldc: n)
            } }
            best = min(best, now() - t)
        }
        return 2 * Double(n * n * n) / best / 1e9
    }

    public static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted(); return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    /// FLOPs of one training run: per example and epoch, forward 2P, weight gradients 2P,
    /// input gradients 2(P − P₁) (none for the first layer, which sees the data).
    public static func trainingFlops(shape: NetworkShape, examples n: Int, epochs: Int) -> Double {
        let p = Double(shape.parameterCount), p1 = Double(shape.layer(0).parameterCount)
        return Double(epochs) * Double(n) * (6 * p - 2 * p1)
    }

    public struct TrainResult: Codable, Sendable {
        public var setting: String
        public var threads: Int
        public var runs: Int
        public var secondsPerModel: [Double]
        public var medianSeconds: Double
        public var modelsPerHour: Double
        public var gflop: Double
        public var achievedGFLOPS: Double
        public var sgemmPeakGFLOPS: Double
        public var halfDataMedianSeconds: Double
    }

    /// Trains the setting's model `runs` times on the full training set and on half of it
    /// (an LDS retraining), one model at a time.
    public static func train(_ ctx: RunContext, runs: Int) -> TrainResult {
        setBLASThreads(ctx.threads)
        let peak = sgemmPeak()
        let trainer = Trainer<Float>(shape: ctx.shape, recipe: ctx.config.recipe)
        var times: [Double] = []
        for r in 0..<runs {
            let t = now(); _ = trainer.train(on: ctx.data.train, seed: UInt64(r)); times.append(now() - t)
        }
        let half = ctx.data.train.subset(Array(0..<(ctx.data.train.count / 2)))
        var halfTimes: [Double] = []
        for r in 0..<runs { let t = now(); _ = trainer.train(on: half, seed: UInt64(r)); halfTimes.append(now() - t) }
        let med = median(times)
        let flops = trainingFlops(shape: ctx.shape, examples: ctx.data.train.count, epochs: ctx.config.recipe.epochs)
        return TrainResult(setting: ctx.config.setting, threads: ctx.threads, runs: runs, secondsPerModel: times, medianSeconds: med,
                           modelsPerHour: 3600 / med, gflop: flops / 1e9, achievedGFLOPS: flops / med / 1e9, sgemmPeakGFLOPS: peak,
                           halfDataMedianSeconds: median(halfTimes))
    }
}
