import Foundation

/// The iterative iHVP solvers of spec §5, both SGD on `h(x) = ½ xᵀ(G+λI)x − xᵀv` with the
/// mini-batch gradient `r(x) = (G̃_B + λI)x − v` and heavy-ball momentum
/// `m_{k+1} = β m_k + d_k`, `x_{k+1} = x_k − α_k m_{k+1}`, `α_k = α·decayFactor^⌊k/decayEvery⌋`
/// times the query's `StepBackoff` factor (astra by default; see there):
///  - SNI / LiSSA: `d = r`, `x_0 = α v` (β = 0 by default: the Neumann partial sum
///    `α Σ_j (I − α(G+λI))^j v`); R chains with different batch seeds run in lockstep and
///    are averaged;
///  - ASTRA: `d = (P + λI)⁻¹ r`, `x_0 = (P + λI)⁻¹ v` (so iteration 0 *is* EK-FAC-IF). It
///    runs in the EK-FAC eigenbasis (`v`, `x` and `op` in eigen-coordinates), where
///    `(P + λI)⁻¹` is the diagonal `1/(Λ + λ)`.
/// Every step is a GEMM over the block of Q vectors; buffers are allocated once.
enum NeumannSolvers {
    struct Outcome<T> {
        var x: [T]
        var learningRate: Double
        var lambdaMax: Double?
        var backoffs: Int
    }

    /// Batch seed of LiSSA chain c (chain 0 uses the solver seed itself).
    static func chainSeed(_ seed: UInt64, chain c: Int) -> UInt64 {
        c == 0 ? seed : CounterRandom.mix(seed ^ (UInt64(c) &* 0xA24B_AED4_963E_E407))
    }

    /// Runs sni or astra from `v` (Q·P values; astra: in the eigenbasis of `ekfac`, which `op`
    /// must share). `op` computes G̃_B for the block; `objective` traces and detects
    /// divergence. With a `checkpoint` (and `o.stateEvery > 0`) the solve continues from a
    /// matching saved state and saves its own every `stateEvery` iterations and at the end
    /// (`SolverState`); `onIterate` then sees only the iterations run here. Collective.
    static func solve<T: BLASScalar>(_ v: [T], queries: Int, network: Network<T>, train: Dataset, ekfac: EKFAC?, options o: SolverOptions,
                                     op: DistributedGGN<T>, objective: SolverObjective<T>, comm: Communicator,
                                     checkpoint: SolverCheckpoint? = nil,
                                     onIterate: ((Int, UnsafeBufferPointer<T>) throws -> Void)?) throws -> Outcome<T> {
        let preconditioned = o.method == .astra
        precondition(o.method.isIterative, "NeumannSolvers: \(o.method) is not iterative")
        if preconditioned && ekfac == nil { throw AstraError("astra needs EK-FAC factors: run `fit` first (or choose --method sni)") }
        let label = o.method.rawValue, damping = o.damping, count = v.count, k = o.iterations
        let chains = o.method == .sni ? o.lissaRepeats : 1
        let checkpoint = o.stateEvery > 0 ? checkpoint : nil
        let key = checkpoint?.key(options: o, v: v, network: network, ekfac: ekfac) ?? [:]
        var saved: SolverState<T>? = checkpoint?.load(key: key, options: o, chains: chains, queries: queries, count: count, comm: comm)

        // Step size: given, or c/λ_max by power iteration (spec §5), or as saved.
        var lambdaMax: Double?
        let alpha0: Double
        objective.hint = o.learningRate.map { "lower the solver learning rate (now \($0)) or raise --damping" }
            ?? "lower --lr-scale (now \(o.learningRateScale)) or raise --damping"
        if let saved {
            alpha0 = saved.alpha0
            lambdaMax = saved.lambdaMax
        } else if let lr = o.learningRate {
            alpha0 = lr
        } else {
            let estimate = try estimateLambdaMax(network: network, train: train, eigenbasis: preconditioned ? ekfac : nil, damping: damping,
                                                 evaluationSet: objective.evaluationSet, iterations: o.powerIterations, comm: comm)
            lambdaMax = estimate
            alpha0 = o.learningRateScale / estimate
            objective.progress?(String(format: "%@: λ_max ≈ %.4g (%d power iterations on %d examples), α = %.4g/λ_max = %.4g",
                                       label, estimate, o.powerIterations, objective.evaluationSet.count, o.learningRateScale, alpha0))
        }

        var xs = saved?.xs ?? [[T]](repeating: [T](repeating: 0, count: count), count: chains)
        var ms = saved?.ms ?? xs
        var r = [T](repeating: 0, count: count)
        var mean = chains > 1 ? [T](repeating: 0, count: count) : []
        let lam = T(damping), beta = T(o.momentum)

        // x_0, and astra's diagonal preconditioner 1/(Λ + λ) (P values, shared by the queries).
        var inverseDiagonal: [T] = []
        if preconditioned {
            inverseDiagonal = ekfac!.diagonal(damping: damping).map { T(1 / $0) }
            if saved == nil {
                xs[0] = v
                xs[0].withUnsafeMutableBufferPointer { ekfac!.scaleInEigenbasis($0.baseAddress!, queries: queries, damping: damping, power: -1) }
            }
        } else if saved == nil {
            let a = T(alpha0)
            for c in 0..<chains { for i in 0..<count { xs[c][i] = a * v[i] } }
        }
        var backoff = saved?.backoff ?? StepBackoff(window: o.backoffWindow, tolerance: o.backoffTolerance, chains: chains, queries: queries, start: xs)
        // Release the saved arrays, so updating xs, ms and the back-off copies nothing.
        let resumed = saved.map { (iteration: $0.iteration, trace: $0.trace) }
        saved = nil

        /// The estimate the solver returns: chain 0, or the mean of the chains.
        func estimate(_ body: (UnsafeBufferPointer<T>) throws -> Void) rethrows {
            if chains == 1 { return try xs[0].withUnsafeBufferPointer(body) }
            let inv = 1 / T(chains)
            for i in 0..<count { var s: T = 0; for c in 0..<chains { s += xs[c][i] }; mean[i] = s * inv }
            try mean.withUnsafeBufferPointer(body)
        }

        let shape = network.shape
        func checkBackoff(after done: Int) throws {
            guard backoff.checks(after: done) else { return }
            for c in 0..<chains {
                let h = xs[c].withUnsafeBufferPointer { objective.perQuery($0.baseAddress!, onCheckSet: true) }
                // Non-finite: let the objective report the divergence (every rank agrees).
                if !h.allSatisfy(\.isFinite) { try xs[c].withUnsafeBufferPointer { _ = try objective.record(iteration: done, of: k, x: $0.baseAddress!) } }
                backoff.check(h, chain: c, x: &xs[c], momentum: &ms[c], shape: shape)
            }
        }
        if let resumed {
            objective.resume(trace: resumed.trace)
            objective.progress?(String(format: "%@: resuming from iteration %d of %d (saved state %@), α = %.4g", label, resumed.iteration, k,
                                       checkpoint!.path, alpha0))
        } else {
            try estimate { x in
                try objective.record(iteration: 0, of: k, x: x.baseAddress!)
                try onIterate?(0, x)
            }
            try checkBackoff(after: 0)
        }
        // Only rank 0 writes; the iterates are the same on every rank.
        var saving = checkpoint != nil && comm.rank == 0
        for it in (resumed?.iteration ?? 0)..<k {
            let schedule = alpha0 * pow(o.decayFactor, Double(it / o.decayEvery))
            for c in 0..<chains {
                // r = G̃_B x (one allreduce), then one fused pass per query block:
                // d = r + λx − v (astra: divided by Λ + λ), m ← βm + d, x ← x − α_q m.
                xs[c].withUnsafeMutableBufferPointer { xb in ms[c].withUnsafeMutableBufferPointer { mb in r.withUnsafeMutableBufferPointer { rb in
                    v.withUnsafeBufferPointer { vb in inverseDiagonal.withUnsafeBufferPointer { db in
                        let x = xb.baseAddress!, m = mb.baseAddress!, rp = rb.baseAddress!, vp = vb.baseAddress!
                        op.apply(x, into: rp, seed: chainSeed(o.seed, chain: c), iteration: it)
                        for q in 0..<queries {
                            let alpha = T(schedule * backoff.stepScale(chain: c, query: q))
                            for l in 0..<shape.layerCount {
                                let n = shape.layer(l).parameterCount, base = shape.blockOffset(l, queries: queries) + q * n
                                if preconditioned {
                                    let d = db.baseAddress! + shape.offset(l)
                                    for j in 0..<n {
                                        let i = base + j
                                        m[i] = beta * m[i] + (rp[i] + lam * x[i] - vp[i]) * d[j]; x[i] -= alpha * m[i]
                                    }
                                } else {
                                    for i in base..<(base + n) { m[i] = beta * m[i] + (rp[i] + lam * x[i] - vp[i]); x[i] -= alpha * m[i] }
                                }
                            }
                        }
                    } }
                } } }
            }
            let done = it + 1
            try checkBackoff(after: done)
            let traced = SolverObjective<T>.isTracePoint(done, every: o.traceEvery, last: k)
            if traced || onIterate != nil {
                try estimate { x in
                    if traced { try objective.record(iteration: done, of: k, x: x.baseAddress!) }
                    try onIterate?(done, x)
                }
            }
            if saving && (done % o.stateEvery == 0 || done == k) {
                let state = SolverState(iteration: done, alpha0: alpha0, lambdaMax: lambdaMax, xs: xs, ms: ms, backoff: backoff, trace: objective.trace)
                saving = checkpoint!.save(state, key: key, ranks: comm.size)
            }
        }
        var x = xs[0]
        if chains > 1 { estimate { x = Array($0) } }
        return Outcome(x: x, learningRate: alpha0, lambdaMax: lambdaMax, backoffs: backoff.count)
    }

    /// Largest eigenvalue of the damped GGN `G_E + λI` on the fixed evaluation batch E, or
    /// with `eigenbasis` of the preconditioned operator `(P + λI)⁻¹(G_E + λI)` (similar to the
    /// symmetric `D^{-½}(G_E + λI)D^{-½}`, `D = P + λI`, on which the power iteration runs in
    /// the eigenbasis, where D is diagonal). The estimate is the last Rayleigh quotient (a
    /// lower bound that rises monotonically to λ_max).
    ///
    /// Why E and not mini-batches: the largest Rayleigh quotient over random mini-batches is
    /// an extreme-value statistic of the batch noise (digits, B = 256: 11 to 37 over seeds
    /// and lengths, against 12.5 for the full G), so `α = c/λ_max` would vary by 3× with the
    /// seed. On E it is a property of the problem (digits: 11.9–12.5 after 15 steps, 12.5
    /// after 50), the start vector is fixed, and c carries the margin for batch noise.
    /// Collective; the same on every rank.
    static func estimateLambdaMax<T: BLASScalar>(network: Network<T>, train: Dataset, eigenbasis: EKFAC?, damping: Double,
                                                 evaluationSet: [Int], iterations: Int, comm: Communicator) throws -> Double {
        let p = network.shape.parameterCount
        let op = DistributedGGN(network: network, data: train, queries: 1, batchSize: 0, largestSet: evaluationSet.count,
                                eigenbasis: eigenbasis, comm: comm)
        let slice = evaluationSet[blockRange(count: evaluationSet.count, rank: comm.rank, size: comm.size)]
        let scale: [T] = eigenbasis.map { $0.diagonal(damping: damping).map { T(1 / $0.squareRoot()) } } ?? [T](repeating: 1, count: p)
        var rng = CounterRandom(seed: SolverObjective<T>.evaluationKey, purpose: .ggnBatch, index: UInt64.max - 1)
        var z = (0..<p).map { _ in rng.nextNormal() }
        let zn = z.reduce(0) { $0 + $1 * $1 }.squareRoot()
        z = z.map { $0 / zn }
        var zt = z.map { T($0) }, y = [T](repeating: 0, count: p), g = y
        let lam = T(damping)
        var rho = 0.0
        for _ in 0..<iterations {
            // g = D^{-½}(G_E + λI)D^{-½} z
            for i in 0..<p { y[i] = scale[i] * zt[i] }
            y.withUnsafeBufferPointer { yp in g.withUnsafeMutableBufferPointer { gp in
                op.apply(yp.baseAddress!, into: gp.baseAddress!, slice: slice, total: evaluationSet.count)
            } }
            for i in 0..<p { g[i] = scale[i] * (g[i] + lam * y[i]) }
            var norm = 0.0
            rho = 0
            for i in 0..<p { rho += zt[i].asDouble * g[i].asDouble; norm += g[i].asDouble * g[i].asDouble }
            norm = norm.squareRoot()
            guard rho.isFinite, norm.isFinite, norm > 0 else {
                throw AstraError("solver: the power iteration for the learning rate failed (λ_max estimate \(rho)); the model or factors hold NaN/Inf, or pass an explicit solver learning rate")
            }
            for i in 0..<p { zt[i] = T(g[i].asDouble / norm) }
        }
        return rho
    }
}
