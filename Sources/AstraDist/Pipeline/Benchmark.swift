import Foundation

/// Measurements for `astra-dist bench`: medians over repeated runs, FLOP counts of the
/// work an algorithm needs (2 per multiply-add), and the SGEMM peak measured in the same run.
public enum Benchmark {
    /// Achieved SGEMM GFLOP/s on n×n×n products at the current BLAS thread count (best of
    /// `runs`); with `cpu`, in this thread's CPU seconds (one BLAS thread: the peak a profile
    /// in CPU seconds is compared with on a shared machine).
    public static func sgemmPeak(n: Int = 1024, runs: Int = 5, cpu: Bool = false) -> Double {
        let clock = cpu ? threadCPUSeconds : now
        let a = [Float](repeating: 1.0 / Float(n), count: n * n)
        var c = [Float](repeating: 0, count: n * n)
        var best = Double.infinity
        for _ in 0..<runs {
            let t = clock()
            a.withUnsafeBufferPointer { ap in c.withUnsafeMutableBufferPointer { cp in
                Float.gemm(transA: false, transB: false, m: n, n: n, k: n, alpha: 1, a: ap.baseAddress!, lda: n, b: ap.baseAddress!, ldb: n, beta: 0, c: cp.baseAddress!, ldc: n)
            } }
            best = min(best, clock() - t)
        }
        return 2 * Double(n * n * n) / best / 1e9
    }

    public static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted(); return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    /// Multiply-adds of layer l's forward GEMM per example, T·O·K (P for a linear layer; a
    /// convolution repeats its O×K kernel at T positions).
    static func forwardMACs(_ layer: NetworkLayer) -> Double { Double(layer.positions * layer.outputs * layer.augmented) }

    /// FLOPs of one training run: per example and epoch, forward 2M, weight gradients 2M,
    /// input gradients 2M past the first layer, which sees the data (M = T·O·K per layer,
    /// counting the bias column in the input gradient as the MLP figures always did: for an
    /// MLP 2P, 2P and 2(P − P₁)).
    public static func trainingFlops(shape: NetworkShape, examples n: Int, epochs: Int) -> Double {
        let perExample = shape.layers.enumerated().reduce(0.0) { $0 + (($1.offset > 0 ? 6 : 4) * forwardMACs($1.element)) }
        return Double(epochs) * Double(n) * perExample
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
        /// OpenBLAS's kernel family in this run (`BLASCore`): the peak depends on it.
        public var blasCore = BLASCore.name
        public var halfDataMedianSeconds: Double
        /// The training thread's CPU seconds per model (on a shared machine the wall time
        /// also counts the time it waited for a core) and the GFLOP/s they give.
        public var cpuSecondsPerModel: [Double]
        public var medianCPUSeconds: Double
        public var cpuGFLOPS: Double
        /// The SGEMM peak in CPU seconds, measured after the runs; the profile's `ofPeak` is against it.
        public var sgemmPeakCPUGFLOPS: Double
        /// One more full-data run with every part of the step timed (`OperationProfile`).
        public var profile: [ProfileRow]
        public var profiledSeconds: Double
    }

    /// One part of the profile: an operation's pass (or a step's own part), its CPU seconds
    /// over the run, and for GEMM passes FLOPs, GFLOP/s and the fraction of the SGEMM peak
    /// measured in CPU seconds in the same run.
    public struct ProfileRow: Codable, Sendable {
        public var operation: String
        public var pass: String
        public var seconds: Double
        public var share: Double
        public var gflop: Double?
        public var gflops: Double?
        public var ofPeak: Double?
    }

    /// A short name of operation k (`conv2d 1→8 5×5`, `linear 784→10`, `relu`, `maxpool2d`).
    static func operationName(_ op: NetworkOperation) -> String {
        switch op {
        case .layer(.linear(let l)): return "linear \(l.inputs)→\(l.outputs)"
        case .layer(.conv2d(let l)): return "conv2d \(l.channels)→\(l.filters) \(l.kernel)×\(l.kernel)"
        case .pointwise(let f): return f.rawValue
        default:
            let json = (try? JSONEncoder().encode(op)).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
            return json?["op"] as? String ?? "\(op)"
        }
    }

    /// The profile's rows in walk order (forward, then backward), then gather, loss and the
    /// optimiser; `examples` is the number of examples the run processed (N·epochs).
    static func profileRows(_ profile: OperationProfile, shape: NetworkShape, examples: Double, peak: Double) -> [ProfileRow] {
        let total = profile.seconds.values.reduce(0, +)
        func row(_ k: Int?, _ pass: OperationProfile.Pass) -> ProfileRow? {
            guard let sec = profile.seconds[OperationProfile.Key(operation: k, pass: pass)] else { return nil }
            var flops: Double? = nil
            if let k, let l = shape.layerIndex[k] {
                let layer = shape.layer(l)
                switch pass {
                case .forward, .weightGradient, .inputGradient: flops = 2 * examples * forwardMACs(layer)
                default: break
                }
            }
            let gflops = flops.map { $0 / sec / 1e9 }
            return ProfileRow(operation: k.map { operationName(shape.operations[$0]) } ?? "step", pass: pass.rawValue, seconds: sec, share: sec / total,
                              gflop: flops.map { $0 / 1e9 }, gflops: gflops, ofPeak: gflops.map { $0 / peak })
        }
        let ops = Array(shape.operations.indices)
        let forward: [ProfileRow?] = ops.flatMap { k in [row(k, .rows), row(k, .forward)] }
        let backward: [ProfileRow?] = ops.reversed().flatMap { k in [row(k, .backward), row(k, .weightGradient), row(k, .inputGradient)] }
        return (forward + backward + [row(nil, .gather), row(nil, .loss), row(nil, .optimiser)]).compactMap { $0 }
    }

    /// Trains the setting's model `runs` times on the full training set and on half of it
    /// (an LDS retraining), one model at a time.
    public static func train(_ ctx: RunContext, runs: Int) -> TrainResult {
        setBLASThreads(ctx.threads)
        let peak = sgemmPeak()
        let trainer = Trainer<Float>(shape: ctx.shape, recipe: ctx.config.recipe)
        var times: [Double] = [], cpu: [Double] = []
        for r in 0..<runs {
            let t = now(), c = threadCPUSeconds()
            _ = trainer.train(on: ctx.data.train, seed: UInt64(r))
            times.append(now() - t); cpu.append(threadCPUSeconds() - c)
        }
        let half = ctx.data.train.subset(Array(0..<(ctx.data.train.count / 2)))
        var halfTimes: [Double] = []
        for r in 0..<runs { let t = now(); _ = trainer.train(on: half, seed: UInt64(r)); halfTimes.append(now() - t) }
        var profiled = trainer
        profiled.profile = OperationProfile()
        let tp = now(); _ = profiled.train(on: ctx.data.train, seed: 0); let profiledSeconds = now() - tp
        let med = median(times)
        let flops = trainingFlops(shape: ctx.shape, examples: ctx.data.train.count, epochs: ctx.config.recipe.epochs)
        let cpuPeak = sgemmPeak(cpu: true)
        let rows = profileRows(profiled.profile!, shape: ctx.shape, examples: Double(ctx.data.train.count * ctx.config.recipe.epochs), peak: cpuPeak)
        return TrainResult(setting: ctx.config.setting, threads: ctx.threads, runs: runs, secondsPerModel: times, medianSeconds: med,
                           modelsPerHour: 3600 / med, gflop: flops / 1e9, achievedGFLOPS: flops / med / 1e9, sgemmPeakGFLOPS: peak,
                           halfDataMedianSeconds: median(halfTimes), cpuSecondsPerModel: cpu, medianCPUSeconds: median(cpu),
                           cpuGFLOPS: flops / median(cpu) / 1e9, sgemmPeakCPUGFLOPS: cpuPeak, profile: rows, profiledSeconds: profiledSeconds)
    }
}

extension Benchmark {
    public struct FitResult: Codable, Sendable {
        public var setting: String
        public var ranks: Int
        public var mode: String
        public var runs: Int
        public var totalSeconds: Double
        public var factorSeconds: Double
        public var eigenSeconds: Double
        public var correctionSeconds: Double
        public var factorExamplesPerSecond: Double
        public var correctionExamplesPerSecond: Double
        /// GFLOP of the two data passes (forward, backward, SYRKs; rotations and the Λ GEMM).
        public var factorGFLOP: Double
        public var correctionGFLOP: Double
        public var factorGFLOPS: Double
        public var correctionGFLOPS: Double
        public var sgemmPeakGFLOPS: Double
        /// OpenBLAS's kernel family in this run (`BLASCore`): the peak depends on it.
        public var blasCore = BLASCore.name
    }

    /// FLOPs of the factor pass per example: forward 2P, backward 2P (weight-gradient-free: only
    /// input gradients 2(P − P₁)), SYRKs Σ_l ((I+1)² + O²); the correction pass adds the batch
    /// rotations 2Σ_l((I+1)² + O²) and the Λ GEMM 2Σ_l O(I+1).
    /// A convolution has T rows per example: its SYRKs and rotations are T times a linear
    /// layer's, and its correction forms each example's gradient in the eigenbasis (2M).
    static func fitFlops(shape: NetworkShape, examples n: Int) -> (Double, Double) {
        let m = shape.layers.reduce(0.0) { $0 + forwardMACs($1) }
        let syrk = shape.layers.reduce(0.0) { $0 + Double($1.positions * ($1.augmented * $1.augmented + $1.outputs * $1.outputs)) }
        let pass = 4 * m - 2 * forwardMACs(shape.layer(0))
        return (Double(n) * (pass + syrk), Double(n) * (pass + 2 * syrk + 2 * m))
    }

    /// Fits the first model's EK-FAC `runs` times (collective); medians of each pass.
    public static func fit(_ ctx: RunContext, mode: FisherMode, runs: Int) throws -> FitResult {
        setBLASThreads(ctx.threads)
        let peak = sgemmPeak()
        let (net, _) = try ctx.loadModel(seed: ctx.seeds[0])
        let shard = blockRange(count: ctx.data.train.count, rank: ctx.comm.rank, size: ctx.comm.size)
        var t: [FitTimings] = []
        for _ in 0..<runs {
            t.append(try FitRunner.fitTimed(network: net, data: ctx.data.train, shard: shard, comm: ctx.comm, mode: mode,
                                            seed: ctx.seeds[0], batchSize: 256).timings)
        }
        let f = median(t.map(\.factorSeconds)), e = median(t.map(\.eigenSeconds)), c = median(t.map(\.correctionSeconds))
        let (ff, cf) = fitFlops(shape: ctx.shape, examples: ctx.data.train.count)
        let n = Double(ctx.data.train.count)
        return FitResult(setting: ctx.config.setting, ranks: ctx.comm.size, mode: mode.rawValue, runs: runs, totalSeconds: f + e + c,
                         factorSeconds: f, eigenSeconds: e, correctionSeconds: c, factorExamplesPerSecond: n / f,
                         correctionExamplesPerSecond: n / c, factorGFLOP: ff / 1e9, correctionGFLOP: cf / 1e9,
                         factorGFLOPS: ff / f / 1e9, correctionGFLOPS: cf / c / 1e9, sgemmPeakGFLOPS: peak)
    }

    public struct ScorePart: Codable, Sendable {
        public var name: String
        public var seconds: Double
        public var gflop: Double?
        public var gflops: Double?
        /// The slowest rank's thread CPU seconds (on a shared machine the wall time also
        /// counts waiting for a core; with one BLAS thread this is the work itself).
        public var cpuSeconds: Double? = nil
    }
    public struct ScoreResult: Codable, Sendable {
        public var setting: String
        public var ranks: Int
        /// Query groups of the 2-D grid (as in `score`).
        public var queryGroups: Int
        public var queries: Int
        public var trainSize: Int
        public var parts: [ScorePart]
        /// Objective trace of each iterative method (iteration, objective), from query group 0
        /// (mean over its queries).
        public var traces: [String: [[Double]]]
        /// First ASTRA iteration whose objective is at or below SNI's final one (nil: never).
        public var astraIterationsToMatchSNI: Int?
        public var sniIterations: Int
        public var sgemmPeakGFLOPS: Double
        /// OpenBLAS's kernel family in this run (`BLASCore`): the peak depends on it.
        public var blasCore = BLASCore.name
        /// Issue 17's speed targets of source, astra-source and trak (`methodParts`).
        public var targets: [Target] = []
    }

    /// The options `bench score` solves method `m` with: its defaults, `sniIterations` for sni,
    /// `astraIterations` (if given) for every ASTRA solve (astra and astra-source's segments),
    /// the objective traced every 10 iterations.
    static func options(_ m: SolverMethod, damping: Double, sniIterations: Int, astraIterations: Int?) -> SolverOptions {
        var o = SolverOptions(method: m, damping: damping)
        if m == .sni { o.iterations = sniIterations }
        if m == .astra || m == .astraSource, let k = astraIterations { o.iterations = k }
        // Direct methods: no objective, as in `score`. Iterative ones: every 10 iterations,
        // for the iteration match below; the evaluations are timed apart.
        o.traceEvery = m.isIterative ? 10 : 0
        return o
    }

    /// Times the parts of `score` for the first model: query gradients, each solver, and the
    /// contraction (2·Q·N·P FLOPs), on the grid `score` uses (`groups` query groups, default
    /// `ScoreStage.defaultGroups`). Collective; rank 0 reports the slowest rank's times.
    /// `astraIterations`: ASTRA's iterations (nil: its default, 200), e.g. a few to time an
    /// iteration on a large network. Methods source, astra-source, tracin and trak are timed
    /// by `methodParts` (source adds ekfac to the solvers, astra-source astra: their targets'
    /// references; `fisher`: of the segment fits).
    public static func score(_ ctx: RunContext, methods requested: [SolverMethod], sniIterations: Int, damping: Double, groups: Int? = nil,
                             astraIterations: Int? = nil, fisher: FisherMode = .sampled) throws -> ScoreResult {
        var methods = requested.filter { $0.solvesIHVP && !$0.isSource }
        if requested.contains(.source) && !methods.contains(.ekfac) { methods.append(.ekfac) }
        if requested.contains(.astraSource) && !methods.contains(.astra) { methods.append(.astra) }
        setBLASThreads(ctx.threads)
        let peak = sgemmPeak()
        let seed = ctx.seeds[0]
        let (net, model) = try ctx.loadModel(seed: seed)
        let ekfac = try? FitStage.load(ctx, seed: seed, model: model)
        let q = ctx.data.queries.count, n = ctx.data.train.count, p = Double(ctx.shape.parameterCount)
        let g = groups ?? ScoreStage.defaultGroups(ranks: ctx.comm.size, queries: q)
        guard g <= q, ctx.comm.size % g == 0 else { throw AstraError("bench: --query-groups \(g) must divide the \(ctx.comm.size) ranks and not exceed the \(q) queries") }
        let perGroup = ctx.comm.size / g, group = ctx.comm.rank / perGroup
        let gcomm = g == 1 ? ctx.comm : ctx.comm.split(color: group, key: ctx.comm.rank)
        let myQueries = ctx.data.queries.subset(Array(blockRange(count: q, rank: group, size: g)))
        var parts: [ScorePart] = [], traces: [String: [[Double]]] = [:]
        var lastCPU = 0.0
        func timed<R>(_ body: () throws -> R) rethrows -> (R, Double) {
            let (r, t) = try measured(ctx.comm, body); lastCPU = t.cpu; return (r, t.wall)
        }
        let (v, tg) = timed { net.measurementGradients(queries: myQueries) }
        let queryGradients = Timing(wall: tg, cpu: lastCPU)
        parts.append(ScorePart(name: "query gradients", seconds: tg, gflop: nil, gflops: nil, cpuSeconds: lastCPU))
        var x: SolvedBlock<Float>? = nil
        var solves: [SolverMethod: Timing] = [:]
        let optionsOf = { (m: SolverMethod) in options(m, damping: damping, sniIterations: sniIterations, astraIterations: astraIterations) }
        for m in methods {
            let o = optionsOf(m)
            let ((xm, report), ts) = try timed { try IHVPSolver.solve(v, network: net, train: ctx.data.train, ekfac: ekfac, options: o, comm: gcomm,
                                                                             progress: group == 0 ? { ctx.log("bench: " + $0) } : nil) }
            // GGN products: the iterations and the power iteration (every query group runs its
            // own); forward tangents only: the objective evaluations on E, the back-off checks on C.
            let e = report.evaluationExamples, eigen = m.usesEigenbasis
            let checks = StepBackoff<Float>.checkCount(iterations: report.iterations, window: o.backoffWindow), c = min(o.checkBatch, e)
            let flops = m.isIterative ? Double(report.iterations) * ggnProductFLOPs(ctx.shape, batch: o.batchSize, queries: q, eigenbasis: eigen)
                + Double(report.trace.count) * ggnProductFLOPs(ctx.shape, batch: e, queries: q, eigenbasis: eigen, forwardOnly: true)
                + Double(checks) * ggnProductFLOPs(ctx.shape, batch: c, queries: q, eigenbasis: eigen, forwardOnly: true)
                + Double(g * o.powerIterations) * ggnProductFLOPs(ctx.shape, batch: e, queries: 1, eigenbasis: eigen) : nil
            parts.append(ScorePart(name: "solve \(m.rawValue) (\(report.iterations) iterations\(checks > 0 ? ", \(checks) back-off checks, \(report.backoffs ?? 0) back-offs in group 0" : ""))", seconds: ts, gflop: flops.map { $0 / 1e9 },
                                   gflops: flops.map { $0 / ts / 1e9 }, cpuSeconds: lastCPU))
            if m.isIterative {
                let te = ctx.comm.allreduceMax(report.evaluationSeconds)
                parts.append(ScorePart(name: "  of which \(report.trace.count) objective evaluations on |E| = \(e)", seconds: te, gflop: nil, gflops: nil))
                traces[m.rawValue] = report.trace.map { [Double($0.iteration), $0.objective] }
            }
            if m == .ekfac { x = xm }
            solves[m] = Timing(wall: ts, cpu: lastCPU)
        }
        let shard = blockRange(count: n, rank: gcomm.rank, size: gcomm.size)
        let block = x ?? SolvedBlock(values: v.parameterBlock(), queries: v.queries, eigenbasis: nil)
        let (_, tc) = timed { ScoreContraction(network: net, queries: v.queries, featureCount: ctx.data.train.featureCount, targetWidth: ctx.data.train.targetWidth).scores(block, train: ctx.data.train, rows: shard) }
        // 2·Q·N·P, plus for a convolution its per-example gradients (2M per example).
        let cf = 2 * Double(q) * Double(n) * p + 2 * Double(n) * ctx.shape.layers.filter { $0.positions > 1 }.reduce(0.0) { $0 + forwardMACs($1) }
        parts.append(ScorePart(name: "contraction", seconds: tc, gflop: cf / 1e9, gflops: cf / tc / 1e9, cpuSeconds: lastCPU))
        var targets: [Target] = []
        if requested.contains(where: { !$0.solvesIHVP || $0.isSource }) {
            let ekfacScoring = queryGradients + (solves[.ekfac] ?? Timing()) + Timing(wall: tc, cpu: lastCPU)
            let (more, t) = try methodParts(ctx, methods: requested, network: net, model: model, queries: v, groupComm: gcomm, group: group, fisher: fisher,
                                            options: optionsOf, queryGradients: queryGradients, ekfacScoring: ekfacScoring, astraSolve: solves[.astra])
            parts += more; targets = t
        }
        var match: Int? = nil
        if let sni = traces["sni"]?.last?[1], let astra = traces["astra"] { match = astra.first { $0[1] <= sni }.map { Int($0[0]) } }
        return ScoreResult(setting: ctx.config.setting, ranks: ctx.comm.size, queryGroups: g, queries: q, trainSize: n, parts: parts, traces: traces,
                           astraIterationsToMatchSNI: match, sniIterations: sniIterations, sgemmPeakGFLOPS: peak, targets: targets)
    }

    /// FLOPs (2 per multiply-add) of one GGN product over `batch` examples for Q vectors: per
    /// layer the tangent and block-gradient GEMMs (2·B·Q·T·O(I+1) each, T positions) and, past
    /// the first layer, the input tangent and input gradient (2·B·Q·T·O·I each); in the
    /// eigenbasis also the tangent rotations (2·B·Q·T·O² each way) and `Ā Q_A` (2·B·T·(I+1)²). `forwardOnly`: the
    /// quadratic form `vᵀG v` (`GGNProduct.quadraticForms`), the forward half.
    static func ggnProductFLOPs(_ shape: NetworkShape, batch: Int, queries: Int, eigenbasis: Bool, forwardOnly: Bool = false) -> Double {
        let b = Double(batch), q = Double(queries), ways = forwardOnly ? 1.0 : 2.0
        return shape.layers.enumerated().reduce(0.0) { sum, e in
            let (l, layer) = e
            let o = Double(layer.outputs), i = Double(layer.inputs), t = Double(layer.positions)
            var f = ways * (2 * b * q * t * o * (i + 1) + (l > 0 ? 2 * b * q * t * o * i : 0))
            if eigenbasis { f += ways * 2 * b * q * t * o * o + 2 * b * t * (i + 1) * (i + 1) }
            return sum + f
        }
    }
}
