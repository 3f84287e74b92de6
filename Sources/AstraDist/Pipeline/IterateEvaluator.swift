import Foundation

/// What `convergence` and `subspace` follow while a solver runs, for one trained seed of a
/// workspace (its EK-FAC factors and ground truth) and its first `queries` queries: the
/// objective h(x) on a fixed evaluation batch and the LDS of the influence scores of x.
/// Collective: every rank constructs it and calls each method in the same order.
struct IterateEvaluator {
    let ctx: RunContext
    let net: Network<Float>
    let ekfac: EKFAC
    let gradients: QueryGradients<Float>
    /// The query gradients v in parameter coordinates (Q·P values).
    let v: [Float]
    let queries: Int
    let damping: Double
    /// The command's name, prefixed to its progress lines on rank 0.
    let label: String
    private let masks: SubsetMasks
    private let groundTruth: [Double]
    private let contraction: ScoreContraction<Float>
    private let ggn: GGNProduct<Float>
    private let evalRows: [Int]

    /// Precondition: train, fit and groundtruth are done for the first seed of `ctx`.
    init(_ ctx: RunContext, label: String, queries requested: Int, damping: Double?) throws {
        self.ctx = ctx
        self.label = label
        let seed = ctx.seeds[0]
        let (net, model) = try ctx.loadModel(seed: seed)
        self.net = net
        ekfac = try FitStage.load(ctx, seed: seed, model: model)
        let (gtAll, masks) = try GroundTruthStage.load(ctx)
        self.masks = masks
        let qAll = ctx.data.queries.count, q = min(requested, qAll), n = ctx.data.train.count
        queries = q
        groundTruth = (0..<masks.count).flatMap { j in (0..<q).map { gtAll[j * qAll + $0] } }
        gradients = net.measurementGradients(queries: ctx.data.queries.subset(Array(0..<q)))
        v = gradients.parameterBlock()
        self.damping = damping ?? ctx.config.damping
        contraction = ScoreContraction(network: net, queries: q, featureCount: ctx.data.train.featureCount, targetWidth: ctx.data.train.targetWidth)
        // Objective on a fixed evaluation batch (independent of every solver seed).
        evalRows = GGNProduct<Float>.sampleBatch(seed: 0xE7A1, iteration: 0, size: min(n, 1024), population: n)
        ggn = GGNProduct(network: net, data: ctx.data.train, queries: q, maxBatch: 256)
    }

    /// h(x) = ½xᵀ(G + λI)x − vᵀx on the evaluation batch, in parameter coordinates, mean over queries.
    func objective(_ solved: SolvedBlock<Float>) -> Double {
        let x = solved.parameterBlock()
        var gx = [Float](repeating: 0, count: x.count)
        let mine = evalRows[blockRange(count: evalRows.count, rank: ctx.comm.rank, size: ctx.comm.size)]
        x.withUnsafeBufferPointer { xp in gx.withUnsafeMutableBufferPointer { gp in
            ggn.apply(xp.baseAddress!, indices: mine, into: gp.baseAddress!, comm: ctx.comm, totalBatch: evalRows.count)
        } }
        var h = 0.0
        for i in 0..<x.count { h += 0.5 * Double(x[i]) * (Double(gx[i]) + damping * Double(x[i])) - Double(x[i]) * Double(v[i]) }
        return h / Double(queries)
    }

    /// Mean over queries of the LDS of the scores `x`ᵀ∇L(z_m) against the ground truth.
    func lds(_ x: SolvedBlock<Float>) throws -> Double {
        let n = ctx.data.train.count, q = queries
        let shard = blockRange(count: n, rank: ctx.comm.rank, size: ctx.comm.size)
        var tau = [Float](repeating: 0, count: q * n)
        let part = contraction.scores(x, train: ctx.data.train, rows: shard)
        for i in 0..<q { for j in 0..<shard.count { tau[i * n + shard.lowerBound + j] = part[i * shard.count + j] } }
        ctx.comm.allreduceSum(&tau)
        return try LDS.evaluate(masks: masks, groundTruth: groundTruth, scores: tau, queries: q).mean
    }

    /// One solve, keeping the iterates at `marks` (in the solver's coordinates).
    func iterates(_ o: SolverOptions, at marks: Set<Int>) throws -> [(Int, SolvedBlock<Float>)] {
        var stored: [(Int, SolvedBlock<Float>)] = []
        let basis = o.method.usesEigenbasis ? ekfac : nil
        let report = progress(o)
        _ = try IHVPSolver.solve(gradients, network: net, train: ctx.data.train, ekfac: ekfac, options: o, comm: ctx.comm, progress: nil) { k, x in
            report(k)
            if marks.contains(k) { stored.append((k, SolvedBlock(values: Array(x), queries: queries, eigenbasis: basis))) }
        }
        return stored
    }

    /// The final objective of a solve, nil if it diverged (the SNI step sweep).
    func finalObjective(_ o: SolverOptions) -> Double? {
        let report = progress(o)
        return (try? IHVPSolver.solve(gradients, network: net, train: ctx.data.train, ekfac: nil, options: o, comm: ctx.comm, progress: nil) { k, _ in report(k) })
            .map { objective($0.x) }.flatMap { $0.isFinite ? $0 : nil }
    }

    /// A progress line on rank 0 at every tenth of a solve's iterations (solves here run
    /// with `traceEvery = 0`, so the solver itself reports nothing until it ends).
    private func progress(_ o: SolverOptions) -> (Int) -> Void {
        let start = Date(), every = max(1, o.iterations / 10), rate = o.learningRate.map { ", α = \($0)" } ?? ""
        return { k in
            guard k > 0, k % every == 0 else { return }
            ctx.log(String(format: "%@: %@ seed %d%@: iteration %d of %d, %.0f s", label, o.method.rawValue, Int(o.seed), rate, k, o.iterations, Date().timeIntervalSince(start)))
        }
    }

    /// The convergence command's SNI step rule: the fixed α of `rates` with the lowest final
    /// objective after `base.iterations` iterations (nil: all diverged), and the sweep itself.
    /// A single rate is taken as given, without a solve (the sweep is then empty).
    func bestSNIRate(_ rates: [Double], base: SolverOptions) -> (best: Double?, sweep: [String: Double?]) {
        if rates.count == 1 {
            ctx.log("\(label): sni α = \(rates[0]), the one rate given (no sweep)")
            return (rates[0], [:])
        }
        var sweep: [String: Double?] = [:]
        var best: (Double, Double)? = nil
        for rate in rates {
            var o = base
            o.learningRate = rate
            let final = finalObjective(o)
            sweep[String(rate)] = final
            if let f = final, best == nil || f < best!.1 { best = (rate, f) }
            ctx.log("\(label): sni α = \(rate): final objective \(final.map { String($0) } ?? "diverged")")
        }
        return (best?.0, sweep)
    }
}
