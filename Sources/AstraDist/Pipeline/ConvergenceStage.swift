import Foundation

/// The paper's Figure 3 on CPU: objective and LDS versus iteration for ASTRA and SNI on a few
/// queries, over several solver seeds (mean ± standard error). ASTRA uses the one automatic
/// rule α = c/λ_max with the default c in every setting; SNI uses the best fixed α of a sweep.
/// Writes `report/convergence.{csv,json}` and two SVG plots.
public enum ConvergenceStage {
    public struct Options: Sendable {
        public var queries = 10
        public var solverSeeds = 10
        public var astraIterations = 200
        public var sniIterations = 2000
        public var sniRates: [Double] = [1, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5]
        public var damping: Double? = nil
        public init() {}
    }

    public struct Point: Codable, Sendable { public var iteration: Int; public var objective: Double; public var objectiveSE: Double; public var lds: Double; public var ldsSE: Double }
    public struct Curve: Codable, Sendable { public var method: String; public var learningRate: String; public var seeds: Int; public var points: [Point] }
    public struct Result: Codable, Sendable {
        public var setting: String
        public var queries: Int
        public var damping: Double
        public var curves: [Curve]
        /// SNI sweep: fixed α → final objective (nil: diverged).
        public var sniSweep: [String: Double?]
        /// First checkpoint where ASTRA's mean objective is at or below SNI's final mean.
        public var astraIterationsToMatchSNI: Int?
    }

    static func checkpoints(upTo k: Int) -> [Int] {
        var c: Set<Int> = [0, k]
        var d = 1
        while d <= k { for m in [1, 2, 5] where m * d <= k { c.insert(m * d) }; d *= 10 }
        return c.sorted()
    }

    public static func run(_ ctx: RunContext, _ opt: Options) throws -> Result {
        setBLASThreads(ctx.threads)
        let eval = try IterateEvaluator(ctx, label: "convergence", queries: opt.queries, damping: opt.damping)
        let q = eval.queries, damping = eval.damping
        /// One solve; objective and LDS at the checkpoints.
        func trajectory(_ o: SolverOptions) throws -> [(Int, Double, Double)] {
            try eval.iterates(o, at: Set(checkpoints(upTo: o.iterations))).map { ($0.0, eval.objective($0.1), try eval.lds($0.1)) }
        }

        var astraRuns: [[(Int, Double, Double)]] = []
        for s in 0..<opt.solverSeeds {
            var o = SolverOptions(method: .astra, damping: damping)
            o.iterations = opt.astraIterations; o.seed = UInt64(s); o.traceEvery = 0
            astraRuns.append(try trajectory(o))
            ctx.log("convergence: astra seed \(s) done")
        }
        var sniBase = SolverOptions(method: .sni, damping: damping)
        sniBase.iterations = opt.sniIterations; sniBase.traceEvery = 0
        let (bestRate, sweep) = eval.bestSNIRate(opt.sniRates, base: sniBase)
        var curves = [curve("astra", rate: "c/λ_max, c = \(SolverOptions.defaultScale(.astra))", astraRuns)]
        if let rate = bestRate {
            var sniRuns: [[(Int, Double, Double)]] = []
            for s in 0..<opt.solverSeeds {
                var o = SolverOptions(method: .sni, damping: damping)
                o.iterations = opt.sniIterations; o.learningRate = rate; o.seed = UInt64(s); o.traceEvery = 0
                sniRuns.append(try trajectory(o))
                ctx.log("convergence: sni seed \(s) done")
            }
            curves.append(curve("sni", rate: String(rate), sniRuns))
        }
        var match: Int? = nil
        if curves.count == 2, let target = curves[1].points.last?.objective { match = curves[0].points.first { $0.objective <= target }?.iteration }
        let result = Result(setting: ctx.config.setting, queries: q, damping: damping, curves: curves, sniSweep: sweep, astraIterationsToMatchSNI: match)
        if ctx.comm.isRoot { try write(result, to: ctx.workspace.root + "/report") }
        return result
    }

    /// Mean ± standard error over solver seeds of runs of (iteration, objective, LDS); the runs share checkpoints.
    static func curve(_ method: String, rate: String, _ runs: [[(Int, Double, Double)]]) -> Curve {
        let iters = runs[0].map(\.0)
        func stat(_ xs: [Double]) -> (Double, Double) {
            let m = xs.reduce(0, +) / Double(xs.count)
            let sd = xs.count > 1 ? (xs.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(xs.count - 1)).squareRoot() : 0
            return (m, sd / Double(xs.count).squareRoot())
        }
        return Curve(method: method, learningRate: rate, seeds: runs.count, points: iters.indices.map { i in
            let (om, ose) = stat(runs.map { $0[i].1 }), (lm, lse) = stat(runs.map { $0[i].2 })
            return Point(iteration: iters[i], objective: om, objectiveSE: ose, lds: lm, ldsSE: lse)
        })
    }

    static func write(_ r: Result, to dir: String) throws {
        var csv = "method,learning_rate,iteration,objective_mean,objective_se,lds_mean,lds_se\n"
        // The learning-rate label holds a comma ("c/λ_max, c = 0.1"): quoted, RFC 4180.
        for c in r.curves { for p in c.points { csv += "\(c.method),\"\(c.learningRate)\",\(p.iteration),\(p.objective),\(p.objectiveSE),\(p.lds),\(p.ldsSE)\n" } }
        try AtomicFile.write(csv, to: dir + "/convergence.csv")
        try WorkDirectory.writeJSON(r, to: dir + "/convergence.json")
        for (metric, label) in [("objective", "objective h(x) (mean over queries)"), ("lds", "LDS (mean over queries)")] {
            var plot = SVGPlot(title: "\(r.setting): \(metric) vs iteration (mean ± s.e. over solver seeds)", xLabel: "iteration + 1", yLabel: label, logX: true)
            for c in r.curves {
                let pts = c.points
                plot.series.append(.init(label: "\(c.method) (α: \(c.learningRate))", x: pts.map { Double($0.iteration + 1) },
                                         y: pts.map { metric == "lds" ? $0.lds : $0.objective }, band: pts.map { metric == "lds" ? $0.ldsSE : $0.objectiveSE }))
            }
            try AtomicFile.write(plot.render(), to: dir + "/convergence-\(metric).svg")
        }
    }
}
