import Foundation

/// `astra-dist curvature` (spec §12): the seed's sweeps on digits, one dimension at a time
/// from its base network (depth 8, width 16, 100 epochs). Every sweep point is a workspace of
/// its own, `DIR/curvature/<sweep>-<value>/`, with its model, its ground truth (the resumable
/// MPI work queue of `groundtruth`) and its ladder result `ladder.json`; a re-run skips what is
/// finished. The sweep's table and figures go to `DIR/curvature/<sweep>.{csv,json}` and SVGs.
public enum CurvatureStudy {
    public enum Sweep: String, CaseIterable, Sendable {
        case epochs, depth, width
        /// The seed's values (its Figures 1–3).
        public var values: [Int] {
            switch self { case .epochs: return [10, 100, 1000]; case .depth: return [1, 4, 8]; case .width: return [32, 64, 128] }
        }
        /// (depth, width, epochs) of a point.
        public func network(_ value: Int) -> (depth: Int, width: Int, epochs: Int) {
            switch self {
            case .epochs: return (8, 16, value)
            case .depth: return (value, 16, 100)
            case .width: return (1, value, 100)
            }
        }
    }

    public struct Options: Sendable {
        public var sweep: Sweep
        public var values: [Int]
        public var masks = 100
        public var repeats = 100
        /// The second damping beside the seed's 1e-4 (default: the digits preset's).
        public var damping: Double? = nil
        public var bootstrap = 1000
        /// Train each point's model, print the ground-truth cost estimate, stop.
        public var estimateOnly = false
        public var threads = 1
        public init(sweep: Sweep) { self.sweep = sweep; values = sweep.values }
    }

    public struct PointResult: Codable, Sendable {
        public var sweep: String
        public var value: Int
        public var depth: Int
        public var width: Int
        public var epochs: Int
        public var configHash: String
        public var trainAccuracy: Double?
        public var testAccuracy: Double?
        public var trainSeconds: Double
        public var ladder: LadderResult
    }

    /// The seed's recipe at one point (spec §12): GELU, SGD momentum 0.9, lr 0.03, batch 32,
    /// no weight decay, 90/10 split of the 1,797 digits, every held-out row a query.
    public static func config(_ o: Options, value: Int, digits: String) throws -> ExperimentConfig {
        let (depth, width, epochs) = o.sweep.network(value)
        var c = try Presets.config("digits", dataRoot: DataRoots(digits: digits, concrete: "", mnist: "", fashionMNIST: ""))
        c.setting = "curvature-digits"
        c.trainSize = 1617; c.querySize = 180
        c.hidden = Array(repeating: width, count: depth); c.activation = Pointwise.gelu.rawValue
        c.recipe = TrainingRecipe(learningRate: 0.03, momentum: 0.9, weightDecay: 0, batchSize: 32, epochs: epochs)
        c.masks = o.masks; c.repeats = o.repeats
        if let d = o.damping { c.damping = d }
        try c.validate()
        return c
    }

    /// The digits of `c` with features standardised by the training split's mean and
    /// standard deviation (the seed's `StandardScaler`; constant pixels keep scale 1).
    public static func standardisedData(_ c: ExperimentConfig) throws -> PreparedData {
        var d = try PreparedData.load(c)
        var s = Standardizer(fitting: d.train)
        s.targetMean = s.targetMean.map { _ in 0 }; s.targetStd = s.targetStd.map { _ in 1 }  // labels stay labels
        s.apply(&d.train); s.apply(&d.queries); s.apply(&d.test)
        var h = ContentHash()
        h.update("features standardised"); h.update(d.train.inputs); h.update(d.train.targets); h.update(d.queries.inputs); h.update(d.queries.targets)
        d.hash = h.hex
        return d
    }

    /// Runs (or resumes) every point of the sweep, then writes the sweep's report.
    /// Returns the finished points. Collective.
    public static func run(root: String, options o: Options, comm: Communicator, digits: String, log: @escaping (String) -> Void) throws -> [PointResult] {
        var done: [PointResult] = []
        for value in o.values {
            if let r = try runPoint(root: root, options: o, value: value, comm: comm, digits: digits, log: log) { done.append(r) }
        }
        if comm.isRoot && !done.isEmpty { try CurvatureReport.write(done, sweep: o.sweep.rawValue, to: root + "/curvature") }
        comm.barrier()
        return done
    }

    static func runPoint(root: String, options o: Options, value: Int, comm: Communicator, digits: String, log: @escaping (String) -> Void) throws -> PointResult? {
        let c = try config(o, value: value, digits: digits)
        let ws = WorkDirectory(root + "/curvature/\(o.sweep.rawValue)-\(value)")
        let data = try standardisedData(c)
        if comm.isRoot { try ws.establish(c) }
        comm.barrier()
        let ctx = try RunContext(comm: comm, workspace: ws, config: c, data: data, threads: o.threads, seeds: [0])
        log("curvature: \(o.sweep.rawValue) = \(value): depth \(c.hidden.count), width \(c.hidden.first ?? 0), \(c.recipe.epochs) epochs, P = \(ctx.shape.parameterCount), in \(ws.root)")
        let resultPath = ws.root + "/ladder.json"
        if let cached = try? WorkDirectory.readJSON(PointResult.self, from: resultPath, hint: ""), cached.configHash == c.hash {
            log("curvature: \(ws.root)/ladder.json already done, skipped")
            return cached
        }
        try TrainStage.run(ctx)
        let metrics = try WorkDirectory.readJSON(TrainingMetrics.self, from: ws.modelDirectory(seed: 0) + "/metrics.json", hint: "delete \(ws.root)/models and rerun")
        // A subset job trains on ⌊αN⌋ examples: about α of the full model's time.
        let estimate = Double(c.masks * c.repeats) * metrics.seconds * c.alpha / Double(comm.size)
        log(String(format: "curvature: one training %.2f s; ground truth %d×%d ≈ %.0f s (%.1f h) on %d rank(s)", metrics.seconds, c.masks, c.repeats, estimate, estimate / 3600, comm.size))
        if o.estimateOnly { return nil }
        try GroundTruthStage.run(ctx, masks: c.masks, repeats: c.repeats)
        let (gt, masks) = try GroundTruthStage.load(ctx)
        let (net, _) = try ctx.loadModel(seed: 0)
        setBLASThreads(o.threads)
        let ladder = try CurvatureLadderRun.run(network: net.converted(to: Double.self), train: data.train, queries: data.queries, masks: masks, groundTruth: gt,
                                                dampings: [CurvatureLadderRun.seedDamping, c.damping], bootstrap: o.bootstrap, comm: comm, seed: 0, progress: log)
        let (depth, width, epochs) = o.sweep.network(value)
        let result = PointResult(sweep: o.sweep.rawValue, value: value, depth: depth, width: width, epochs: epochs, configHash: c.hash,
                                 trainAccuracy: metrics.train.accuracy, testAccuracy: metrics.test.accuracy, trainSeconds: metrics.seconds, ladder: ladder)
        if comm.isRoot { try WorkDirectory.writeJSON(result, to: resultPath) }
        comm.barrier()
        return result
    }
}
