import Foundation

/// The ASTRA paper's §6 / Figure 4 (spec §11): as ASTRA and SNI run, the objective of the
/// iterate projected onto each EK-FAC curvature subspace (eigenvalues ≥ a threshold) and the
/// LDS of the projected iterate, mean ± standard error over solver seeds. Steps follow the
/// `convergence` rule (ASTRA α = c/λ_max with the default c; SNI the fixed α of a sweep with
/// the lowest final unprojected objective), both without momentum as in the paper.
/// Writes `report/subspace.{csv,json}` and one SVG per method and metric (a line per bin).
public enum SubspaceStage {
    public struct Options: Sendable {
        public var queries = 10
        public var solverSeeds = 3
        public var astraIterations = 200
        public var sniIterations = 2000
        public var sniRates: [Double] = [1, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5]
        /// Bin thresholds: bin b keeps the directions with eigenvalue ≥ thresholds[b].
        public var thresholds: [Double] = [1e-1, 1e-2, 1e-3, 1e-4, 1e-5]
        /// The paper's λ for this study.
        public var damping: Double = 1e-4
        public init() {}
    }

    /// One bin's curve; `threshold` nil is the unprojected iterate.
    public struct Curve: Codable, Sendable {
        public var threshold: Double?
        public var dimension: Int
        public var curve: ConvergenceStage.Curve
        public var label: String { threshold.map { "λ ≥ \($0)" } ?? "unprojected" }
    }
    public struct Result: Codable, Sendable {
        public var setting: String
        public var queries: Int
        public var damping: Double
        public var parameterCount: Int
        public var curves: [Curve]
        /// SNI sweep: fixed α → final unprojected objective (nil: diverged).
        public var sniSweep: [String: Double?]
    }

    /// Precondition: train, fit and groundtruth are done; thresholds are finite and ≥ 0.
    public static func run(_ ctx: RunContext, _ opt: Options) throws -> Result {
        setBLASThreads(ctx.threads)
        let eval = try IterateEvaluator(ctx, label: "subspace", queries: opt.queries, damping: opt.damping)
        let bins = opt.thresholds.map { EigenSubspace(eval.ekfac, threshold: $0) }
        for b in bins { ctx.log("subspace: λ ≥ \(b.threshold): \(b.dimension) of \(eval.ekfac.shape.parameterCount) directions") }
        /// One solve: per checkpoint, (objective, LDS) unprojected and then per bin.
        func trajectory(_ o: SolverOptions) throws -> [[(Int, Double, Double)]] {
            let stored = try eval.iterates(o, at: Set(ConvergenceStage.checkpoints(upTo: o.iterations)))
            let unprojected = try stored.map { ($0.0, eval.objective($0.1), try eval.lds($0.1)) }
            return try [unprojected] + bins.map { b in try stored.map { k, x in let px = b.project(x); return (k, eval.objective(px), try eval.lds(px)) } }
        }
        func curves(_ method: SolverMethod, rate: Double?, label: String) throws -> [Curve] {
            var runs: [[[(Int, Double, Double)]]] = []
            for s in 0..<opt.solverSeeds {
                var o = SolverOptions(method: method, damping: eval.damping)
                o.iterations = method == .astra ? opt.astraIterations : opt.sniIterations
                o.learningRate = rate; o.momentum = 0; o.seed = UInt64(s); o.traceEvery = 0
                runs.append(try trajectory(o))
                ctx.log("subspace: \(method.rawValue) seed \(s) done")
            }
            return (0...bins.count).map { i in
                Curve(threshold: i == 0 ? nil : bins[i - 1].threshold, dimension: i == 0 ? eval.ekfac.shape.parameterCount : bins[i - 1].dimension,
                      curve: ConvergenceStage.curve(method.rawValue, rate: label, runs.map { $0[i] }))
            }
        }
        var all = try curves(.astra, rate: nil, label: "c/λ_max, c = \(SolverOptions.defaultScale(.astra))")
        var sniBase = SolverOptions(method: .sni, damping: eval.damping)
        sniBase.iterations = opt.sniIterations; sniBase.momentum = 0; sniBase.traceEvery = 0
        let (best, sweep) = eval.bestSNIRate(opt.sniRates, base: sniBase)
        if let rate = best { all += try curves(.sni, rate: rate, label: String(rate)) }
        let result = Result(setting: ctx.config.setting, queries: eval.queries, damping: eval.damping,
                            parameterCount: eval.ekfac.shape.parameterCount, curves: all, sniSweep: sweep)
        if ctx.comm.isRoot { try write(result, to: ctx.workspace.root + "/report") }
        return result
    }

    static func write(_ r: Result, to dir: String) throws {
        var csv = "method,learning_rate,threshold,dimension,iteration,objective_mean,objective_se,lds_mean,lds_se\n"
        for b in r.curves {
            let c = b.curve, t = b.threshold.map { String($0) } ?? "none"
            // The learning-rate label holds a comma ("c/λ_max, c = 0.1"): quoted, RFC 4180.
            for p in c.points { csv += "\(c.method),\"\(c.learningRate)\",\(t),\(b.dimension),\(p.iteration),\(p.objective),\(p.objectiveSE),\(p.lds),\(p.ldsSE)\n" }
        }
        try AtomicFile.write(csv, to: dir + "/subspace.csv")
        try WorkDirectory.writeJSON(r, to: dir + "/subspace.json")
        for method in Set(r.curves.map(\.curve.method)).sorted() {
            let mine = r.curves.filter { $0.curve.method == method }
            for (metric, label) in [("objective", "objective h(Πx) (mean over queries)"), ("lds", "LDS of Πx (mean over queries)")] {
                var plot = SVGPlot(title: "\(r.setting), \(method) (α: \(mine[0].curve.learningRate)), λ = \(r.damping): \(metric) per subspace",
                                   xLabel: "iteration + 1", yLabel: label, logX: true)
                plot.legendOutside = true
                for b in mine {
                    let pts = b.curve.points
                    plot.series.append(.init(label: "\(b.label) (\(b.dimension))", x: pts.map { Double($0.iteration + 1) },
                                             y: pts.map { metric == "lds" ? $0.lds : $0.objective }, band: pts.map { metric == "lds" ? $0.ldsSE : $0.objectiveSE }))
                }
                try AtomicFile.write(plot.render(), to: dir + "/subspace-\(method)-\(metric).svg")
            }
        }
    }
}
