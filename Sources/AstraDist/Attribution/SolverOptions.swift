/// Ways to compute the query iHVPs `x = (G + λI)⁻¹ v` (spec §5).
public enum SolverMethod: String, Codable, CaseIterable, Sendable {
    /// `x = v` (gradient dot product).
    case identity
    /// `x = (P_KFAC + λI)⁻¹ v` (K-FAC eigenvalues `λ_S λ_Aᵀ`).
    case kfac
    /// `x = (P + λI)⁻¹ v` (EK-FAC-IF).
    case ekfac
    /// Stochastic Neumann iteration / LiSSA: plain SGD on `h`.
    case sni
    /// EK-FAC-preconditioned heavy-ball SGD on `h`, started at the EK-FAC solution.
    case astra
    /// Dense damped GGN solve in Double (small networks only).
    case exact
    /// TracInCP over the training checkpoints (spec §8; `TracIn`).
    case tracin
    /// TRAK with a Kronecker-factored Gaussian projection (spec §8; `TRAK`).
    case trak
    /// SOURCE (spec §7): EK-FAC functions of each segment's curvature, scored per segment.
    case source
    /// ASTRA-SOURCE: SOURCE with each segment's response solved by ASTRA.
    case astraSource = "astra-source"

    /// Whether the method iterates (and so has a learning rate, mini-batches and a trace).
    public var isIterative: Bool { self == .sni || self == .astra || self == .astraSource }
    /// Whether the method works (and answers) in the EK-FAC eigenbasis: kfac, ekfac, astra (and the SOURCE methods).
    public var usesEigenbasis: Bool { self == .kfac || self == .ekfac || self == .astra || isSource }
    /// Whether the method scores per SOURCE segment (`SourceScoring`) rather than by one iHVP solve.
    public var isSource: Bool { self == .source || self == .astraSource }
    /// Whether the method solves `(G + λI)⁻¹ v` (and so has a damping λ; SOURCE's comes from its segments).
    public var solvesIHVP: Bool { self != .tracin && self != .trak }
}

/// Settings of one iHVP solve. `init(method:damping:)` fills the method's defaults
/// (measured in docs/solver-defaults.md); every field can be overridden afterwards.
public struct SolverOptions: Codable, Equatable, Sendable {
    public var method: SolverMethod
    /// λ of `(G + λI)` (and of the preconditioner `P + λI`). Must be positive.
    public var damping: Double
    /// K, solver iterations (astra 200, sni 2000).
    public var iterations: Int
    /// Mini-batch size B, drawn with replacement each iteration; 0 = the whole training set
    /// every iteration, no sampling (full-batch gradient descent, for tests and references).
    public var batchSize: Int
    /// Heavy-ball momentum β (astra 0.9, sni 0).
    public var momentum: Double
    /// Fixed step α; nil = automatic, `α = learningRateScale / λ_max` with `λ_max` estimated by
    /// power iteration on the (preconditioned) damped GGN.
    public var learningRate: Double?
    /// c of the automatic rule `α = c/λ_max`.
    public var learningRateScale: Double
    /// α is multiplied by `decayFactor` every `decayEvery` iterations (astra: 0.5 every 50;
    /// sni: no decay).
    public var decayEvery: Int
    public var decayFactor: Double
    /// R, LiSSA repeats with different sampling seeds, averaged (sni only).
    public var lissaRepeats: Int
    /// Seed of the mini-batch streams (`CounterRandom(seed, .ggnBatch, iteration)`).
    public var seed: UInt64
    /// The objective is evaluated (and progress reported) every `traceEvery` iterations
    /// (default 50), and always at iteration 0 and at the end; 0 = only there (iterative
    /// methods) or not at all (direct methods, whose trace is then empty). One evaluation
    /// costs the forward half of a GGN product over |E| = 1024 examples, two iterations' worth
    /// at B = 256: every 10 iterations would add 20% to a solve, every 50 adds 4%.
    public var traceEvery: Int
    /// |E|, size of the fixed evaluation batch of the objective (clipped to N; at N every
    /// example is used).
    public var evaluationBatch: Int
    /// Largest P the exact solver accepts (the dense GGN holds P² doubles, several copies).
    public var exactLimit: Int
    /// Power iterations for the automatic learning rate.
    public var powerIterations: Int
    /// W of the step back-off (astra 10, sni 0 = off): every W iterations each query's
    /// objective is evaluated on a fixed check set C (the first B examples of E's draw, so a
    /// check costs about half an iteration) and compared with its best checked value. If it rose by
    /// more than `backoffTolerance` times the progress so far, the query returns to its best
    /// iterate, its momentum is cleared and its step halved (`StepBackoff`). A fixed
    /// `c/λ_max` oscillates on some models and not others (mini-batch noise amplified by
    /// momentum; docs/solver-defaults.md); the back-off catches it per query.
    public var backoffWindow: Int
    /// A rise counts once it exceeds this fraction of the query's progress so far,
    /// `h_C(x_0) − h_C(best)` (default 1: only when it is worse than at the start).
    public var backoffTolerance: Double
    /// Iterative methods given a `SolverCheckpoint`: save the solver's state every
    /// `stateEvery` iterations and at the end, so a killed run resumes (0 = off: neither save
    /// nor resume). It does not shape the result and is not part of the state's key.
    /// Default 25: a save writes (2 + [W > 0])·R·Q·P values; measured 63 ms for 16.6 MB
    /// (digits, 400 queries, one rank), about 4 ms/MB with the fsync, so MNIST astra
    /// (Q = 100, P = 567k: 680 MB) takes about 2–3 s against 25 iterations of 1.4 s: under
    /// 8% (docs/commands.md, "Resuming a solve"). A kill loses at most 25 iterations.
    public var stateEvery: Int
    /// trak: k, the projected dimension; nil = the default `TRAK.defaultProjectionDimension`
    /// (left out of the JSON, so options recorded before the field keep their meaning).
    public var projectionDimension: Int?
    /// L, SOURCE segments (source and astra-source: default 3; nil for the other methods).
    public var segments: Int?

    /// |C|, examples of the back-off check set: B, or |E| for full-batch solves, at most |E|.
    public var checkBatch: Int { min(batchSize == 0 ? evaluationBatch : batchSize, evaluationBatch) }

    /// The defaults of `method`.
    public init(method: SolverMethod, damping: Double) {
        self.method = method
        // astra-source solves each segment with astra: the same defaults.
        let method = method == .astraSource ? .astra : method
        self.damping = damping
        iterations = method == .sni ? 2000 : (method == .astra ? 200 : 0)
        batchSize = 256
        momentum = method == .astra ? 0.9 : 0
        learningRate = nil
        learningRateScale = SolverOptions.defaultScale(method)
        decayEvery = 50
        decayFactor = method == .astra ? 0.5 : 1
        lissaRepeats = 1
        seed = 0
        traceEvery = 50
        evaluationBatch = 1024
        exactLimit = 8000
        powerIterations = 20
        backoffWindow = method == .astra ? 10 : 0
        backoffTolerance = 1
        stateEvery = 25
        segments = self.method.isSource ? 3 : nil
    }

    /// Default c of `α = c/λ_max` (measured on digits, Concrete and MNIST,
    /// docs/solver-defaults.md): astra 0.1, sni 1. Both are far below the noise-free limits
    /// (heavy ball 2(1+β) = 3.8, plain SGD 2) because mini-batch noise, amplified by momentum,
    /// sets the stable step: at 0.2 ASTRA oscillated on MNIST and one model ended far from
    /// the optimum. Where 0.1 still oscillates (MNIST model 2), the step back-off catches it.
    public static func defaultScale(_ method: SolverMethod) -> Double {
        method == .astra ? 0.1 : 1.0
    }

    /// Throws an `AstraError` naming the bad option.
    public func validate() throws {
        func bad(_ s: String) -> AstraError { AstraError("invalid solver option: \(s)") }
        guard damping > 0, damping.isFinite else { throw bad("--damping must be positive (got \(damping))") }
        guard iterations >= 0 else { throw bad("iterations must be ≥ 0 (got \(iterations))") }
        guard batchSize >= 0 else { throw bad("batch size must be ≥ 0 (0 = full batch; got \(batchSize))") }
        guard momentum >= 0, momentum < 1 else { throw bad("momentum must be in [0, 1) (got \(momentum))") }
        if let lr = learningRate { guard lr > 0, lr.isFinite else { throw bad("learning rate must be positive (got \(lr))") } }
        guard learningRateScale > 0, learningRateScale.isFinite else { throw bad("--lr-scale must be positive (got \(learningRateScale))") }
        guard decayEvery > 0 else { throw bad("--decay-every must be positive (got \(decayEvery))") }
        guard decayFactor > 0, decayFactor <= 1 else { throw bad("--decay-factor must be in (0, 1] (got \(decayFactor))") }
        guard lissaRepeats >= 1 else { throw bad("LiSSA repeats must be ≥ 1 (got \(lissaRepeats))") }
        guard traceEvery >= 0 else { throw bad("trace interval must be ≥ 0 (got \(traceEvery))") }
        guard evaluationBatch >= 1 else { throw bad("evaluation batch must be ≥ 1 (got \(evaluationBatch))") }
        guard exactLimit >= 1 else { throw bad("--exact-limit must be ≥ 1 (got \(exactLimit))") }
        guard powerIterations >= 1 else { throw bad("power iterations must be ≥ 1 (got \(powerIterations))") }
        guard backoffTolerance >= 0, backoffTolerance.isFinite else { throw bad("--backoff-tolerance must be ≥ 0 (got \(backoffTolerance))") }
        guard stateEvery >= 0 else { throw bad("--state-every must be ≥ 0 (0 = off; got \(stateEvery))") }
        if let l = segments { guard l >= 1 else { throw bad("--segments must be ≥ 1 (got \(l))") } }
        guard backoffWindow >= 0 else { throw bad("--backoff-window must be ≥ 0 (0 = off; got \(backoffWindow))") }
        if let k = projectionDimension { guard k >= 1 else { throw bad("--projection-dim must be ≥ 1 (got \(k))") } }
    }
}

/// One point of a solver's objective trace.
public struct TracePoint: Codable, Equatable, Sendable {
    public var iteration: Int
    /// Mean over queries of `h(x_k) = ½ x_kᵀ(G_E + λI)x_k − x_kᵀ v` on the evaluation batch E.
    public var objective: Double
    /// Seconds since the solve started.
    public var seconds: Double
    public init(iteration: Int, objective: Double, seconds: Double) {
        self.iteration = iteration; self.objective = objective; self.seconds = seconds
    }
}

/// What a solve did, for the record and the reports.
public struct SolverReport: Codable, Sendable {
    public var method: SolverMethod
    /// Iterations run (0 for direct methods).
    public var iterations: Int
    /// The initial step α actually used (iterative methods).
    public var learningRate: Double?
    /// Step back-offs taken, summed over queries (and LiSSA chains); nil for direct methods.
    public var backoffs: Int?
    /// The power-iteration estimate of λ_max (automatic learning rate only): of
    /// `(P + λI)⁻¹(G̃ + λI)` for astra, of `G̃ + λI` for sni.
    public var lambdaMax: Double?
    public var trace: [TracePoint]
    /// Mean objective over queries at the returned x (on E).
    public var finalObjective: Double
    /// |E|, examples in the evaluation batch.
    public var evaluationExamples: Int
    /// Wall-clock seconds of the whole solve (including learning-rate estimation).
    public var seconds: Double
    /// Of `seconds`, those spent evaluating the objective.
    public var evaluationSeconds: Double
    /// Q, the vectors solved.
    public var queries: Int
}

extension SolverReport {
    /// The objective of several solves of one run (query groups, query blocks) as one: per
    /// trace point the query-weighted mean of h (each h is a mean over its queries), seconds
    /// the slowest. Empty unless every trace has the same iterations.
    public static func meanTrace(_ reports: [SolverReport]) -> [TracePoint] {
        guard let first = reports.first, reports.allSatisfy({ $0.trace.map(\.iteration) == first.trace.map(\.iteration) }) else { return [] }
        let total = Double(reports.map(\.queries).reduce(0, +))
        return first.trace.indices.map { i in
            TracePoint(iteration: first.trace[i].iteration,
                       objective: reports.map { Double($0.queries) * $0.trace[i].objective }.reduce(0, +) / max(total, 1),
                       seconds: reports.map { $0.trace[i].seconds }.max()!)
        }
    }
}
