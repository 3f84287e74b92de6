import AstraDist

/// Solver options of `score` (recorded in every scores file, and in the result's name).
let solverSpecs: [OptionSpec] = [
    OptionSpec(name: "damping", value: "X", help: "influence damping λ (default: the setting's, the paper's value), or a list 1e-4,1e-3,1e-2: one result per λ"),
    OptionSpec(name: "fisher", value: "MODE", help: "kfac, ekfac, astra: Fisher of the fitted factors, sampled (default) or exact"),
    OptionSpec(name: "iterations", value: "K", help: "solver iterations (astra 200, sni 2000)"),
    OptionSpec(name: "solver-batch", value: "B", help: "GGN mini-batch per iteration, drawn with replacement (default 256; 0 = full batch)"),
    OptionSpec(name: "solver-lr", value: "X", help: "fixed solver step α (default: automatic, α = c/λ_max)"),
    OptionSpec(name: "lr-scale", value: "C", help: "c of the automatic step α = c/λ_max (astra 0.1, sni 1)"),
    OptionSpec(name: "solver-momentum", value: "X", help: "heavy-ball momentum (astra 0.9, sni 0)"),
    OptionSpec(name: "decay-every", value: "K", help: "the solver step is multiplied by the decay factor every K iterations (default 50)"),
    OptionSpec(name: "decay-factor", value: "X", help: "solver step decay factor in (0, 1] (astra 0.5, sni 1 = none)"),
    OptionSpec(name: "lissa-repeats", value: "R", help: "sni: independent runs averaged (default 1)"),
    OptionSpec(name: "solver-seed", value: "S", help: "seed of the solver's mini-batches (default 0)"),
    OptionSpec(name: "trace-every", value: "K", help: "evaluate the objective every K iterations (default 50)"),
    OptionSpec(name: "power-iterations", value: "K", help: "power iterations estimating λ_max for the automatic step (default 20)"),
    OptionSpec(name: "backoff-window", value: "W", help: "every W iterations, a query worse than its start on a fixed check set returns to its best iterate with half the step (astra 10, sni 0 = off)"),
    OptionSpec(name: "backoff-tolerance", value: "X", help: "a rise counts once above X × the query's progress so far (default 1: only when it is worse than at the start)"),
    OptionSpec(name: "state-every", value: "K", help: "sni, astra: save the solver state every K iterations so a killed score resumes (default 25; 0 = off)"),
    OptionSpec(name: "segments", value: "L", help: "source, astra-source: training segments, each with its checkpoints' mean weights and an EK-FAC fit (default 3)"),
    OptionSpec(name: "exact-limit", value: "P", help: "largest parameter count the exact solver accepts (default 8000)"),
    OptionSpec(name: "projection-dim", value: "K", help: "trak: projected dimension k (default min(4096, P); 512 for concrete)"),
]

/// Which methods a solver flag applies to; a flag none of the requested methods uses is
/// refused rather than ignored.
let solverFlagScope: [(flags: [String], applies: @Sendable (SolverMethod) -> Bool, to: String)] = [
    (["iterations", "solver-batch", "solver-lr", "lr-scale", "solver-momentum", "decay-every", "decay-factor", "solver-seed",
      "power-iterations", "backoff-window", "backoff-tolerance", "state-every"], { $0.isIterative }, "the iterative methods (sni, astra, astra-source)"),
    (["damping"], { $0.solvesIHVP && !$0.isSource }, "the influence methods (identity, kfac, ekfac, sni, astra, exact; SOURCE's damping comes from its segments)"),
    (["segments"], { $0.isSource }, "source and astra-source"),
    (["lissa-repeats"], { $0 == .sni }, "sni"),
    (["exact-limit"], { $0 == .exact }, "exact"),
    (["fisher"], { $0.usesEigenbasis }, "the methods using EK-FAC factors (kfac, ekfac, astra, source, astra-source)"),
    (["trace", "trace-every"], { $0.solvesIHVP }, "the iHVP methods (not tracin, trak)"),
    (["query-groups"], { $0.solvesIHVP }, "the iHVP methods (tracin and trak score every query on every rank)"),
    (["projection-dim"], { $0 == .trak }, "trak"),
]

func solverMethod(_ s: String) throws -> SolverMethod {
    guard let m = SolverMethod(rawValue: s) else {
        throw AstraError("unknown method '\(s)'; choose one of: \(SolverMethod.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    return m
}

/// `--method LIST`: the methods, each once.
func solverMethods(_ o: Options, default fallback: [String]) throws -> [SolverMethod] {
    let names = try o.list("method") ?? fallback
    if let twice = names.indices.first(where: { names[..<$0].contains(names[$0]) }) {
        throw AstraError("\(o.command): --method lists \(names[twice]) twice")
    }
    return try names.map(solverMethod)
}

func fisherMode(_ o: Options) throws -> FisherMode {
    guard let s = o.string("fisher") else { return .sampled }
    guard let m = FisherMode(rawValue: s) else { throw AstraError("\(o.command): --fisher expects sampled or exact, got '\(s)'") }
    return m
}

/// Refuses solver flags that contradict each other or that no method in `methods` uses.
func checkSolverFlags(_ o: Options, methods: [SolverMethod]) throws {
    try o.refuseTogether("solver-lr", "lr-scale", because: "a fixed step has no automatic scale")
    for scope in solverFlagScope where !methods.contains(where: scope.applies) {
        if let flag = scope.flags.first(where: o.has) {
            throw AstraError("\(o.command): --\(flag) applies to \(scope.to), not to \(methods.map(\.rawValue).joined(separator: ", "))")
        }
    }
}

/// `--damping X` or a list `1e-4,1e-3,1e-2` (score: one result per λ, docs/commands.md "A list
/// of dampings"): positive finite numbers, each once (by value: `0.001,1e-3` is one λ twice).
func dampingList(_ o: Options) throws -> [Double]? {
    guard let s = o.string("damping") else { return nil }
    let items = s.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
    var out: [Double] = []
    for item in items {
        guard let v = Double(item), v.isFinite else {
            throw AstraError("\(o.command): --damping expects positive numbers like 1e-3 or a list 1e-4,1e-3,1e-2, got '\(item)' in '\(s)'")
        }
        guard v > 0 else { throw AstraError("\(o.command): --damping must be positive, got '\(item)' in '\(s)'") }
        guard !out.contains(v) else { throw AstraError("\(o.command): --damping lists \(ResultName.canonical(v)) twice ('\(s)'); name each λ once") }
        out.append(v)
    }
    return out
}

/// The resolved options of `method`: its defaults at `damping` (one λ, already resolved),
/// then the flags that apply to it. Throws one line for a bad value.
func solverOptions(_ o: Options, method: SolverMethod, damping: Double) throws -> SolverOptions {
    var s = SolverOptions(method: method, damping: damping)
    if method.isIterative {
        if let v = try o.int("iterations", min: 0) { s.iterations = v }
        if let v = try o.int("solver-batch", min: 0) { s.batchSize = v }
        if let v = try o.double("solver-lr") { s.learningRate = v }
        if let v = try o.double("lr-scale") { s.learningRateScale = v }
        if let v = try o.double("solver-momentum") { s.momentum = v }
        if let v = try o.int("decay-every", min: 1) { s.decayEvery = v }
        if let v = try o.double("decay-factor") { s.decayFactor = v }
        if let v = try o.int("solver-seed", min: 0) { s.seed = UInt64(v) }
        if let v = try o.int("power-iterations", min: 1) { s.powerIterations = v }
        if let v = try o.int("backoff-window", min: 0) { s.backoffWindow = v }
        if let v = try o.double("backoff-tolerance") { s.backoffTolerance = v }
        if let v = try o.int("state-every", min: 0) { s.stateEvery = v }
    }
    if method == .sni, let v = try o.int("lissa-repeats", min: 1) { s.lissaRepeats = v }
    if method == .exact, let v = try o.int("exact-limit", min: 1) { s.exactLimit = v }
    if method == .trak, let v = try o.int("projection-dim", min: 1) { s.projectionDimension = v }
    if method.isSource, let v = try o.int("segments", min: 1) { s.segments = v }
    // Direct methods evaluate the objective only on request (it costs more than their solve).
    if !method.isIterative && !o.has("trace") { s.traceEvery = 0 }
    if let v = try o.int("trace-every", min: 0) { s.traceEvery = v }
    try s.validate()
    return s
}
