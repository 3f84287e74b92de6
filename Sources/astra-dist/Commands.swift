import AstraDist
import Foundation

/// A subcommand: its options and what it runs.
struct Command: Sendable {
    let name: String
    let summary: String
    let specs: [OptionSpec]
    let run: @Sendable (Options, Communicator) throws -> Void
}

/// Options that name the workspace and resolve its configuration; the same meaning in
/// every command.
let workspaceOptions: [OptionSpec] = [
    OptionSpec(name: "workdir", value: "DIR", help: "experiment directory, shared by all ranks (required)"),
    OptionSpec(name: "setting", value: "NAME", help: "preset: \(Presets.names.joined(separator: ", ")) (default digits; fixed once config.json exists)"),
    OptionSpec(name: "config", value: "FILE", help: "JSON file overriding any configuration key (see docs/commands.md)"),
    OptionSpec(name: "data", value: "SRC", help: "data source: digits:PATH, csv:PATH, idx:DIR"),
    OptionSpec(name: "target", value: "COL", help: "CSV target column, by header name or 0-based index"),
    OptionSpec(name: "seeds", value: "LIST", help: "model seeds to process, e.g. 0,1,2 or 0-4 (default: config.json's, set by the first command)"),
    OptionSpec(name: "train-size", value: "N", help: "training examples"),
    OptionSpec(name: "query-size", value: "Q", help: "query examples (held-out rows)"),
    OptionSpec(name: "hidden", value: "LIST", help: "hidden widths, e.g. 128,128,128"),
    OptionSpec(name: "activation", value: "NAME", help: "MLP activation: relu (default) or gelu (exact erf form)"),
    OptionSpec(name: "lr", value: "X", help: "training learning rate"),
    OptionSpec(name: "momentum", value: "X", help: "training SGD momentum"),
    OptionSpec(name: "weight-decay", value: "X", help: "training weight decay"),
    OptionSpec(name: "batch-size", value: "B", help: "training batch size"),
    OptionSpec(name: "epochs", value: "E", help: "training epochs"),
    OptionSpec(name: "label-noise", value: "X", help: "fraction of training labels randomised"),
    OptionSpec(name: "data-seed", value: "S", help: "seed of the split, subsets and label noise"),
    OptionSpec(name: "masks", value: "M", help: "ground truth: number of subsets"),
    OptionSpec(name: "repeats", value: "R", help: "ground truth: retrainings per subset"),
    OptionSpec(name: "alpha", value: "X", help: "ground truth: subset fraction (default 0.5)"),
    OptionSpec(name: "threads", value: "T", help: "BLAS threads per rank (default 1; results are bit-identical only at a fixed count)"),
]

/// Builds the run context: resolves the configuration (existing config.json, else preset,
/// then --config file, then flags), fixes it in the workspace and loads the data.
func makeContext(_ o: Options, _ comm: Communicator) throws -> RunContext {
    guard let dir = o.string("workdir") else { throw AstraError("\(o.command): --workdir DIR is required") }
    let ws = WorkDirectory(dir)
    let roots = DataRoots.discover(executable: CommandLine.arguments[0])
    var c: ExperimentConfig
    if let existing = try ws.loadConfig() {
        if let s = o.string("setting"), s != existing.setting {
            throw AstraError("\(ws.configPath) is for setting '\(existing.setting)', not '\(s)'; use a new --workdir")
        }
        c = existing
    } else {
        c = try Presets.config(o.string("setting") ?? "digits", dataRoot: roots)
    }
    if let file = o.string("config") {
        let bytes = try AtomicFile.read(file, hint: "pass an existing JSON file to --config")
        guard let patch = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw AstraError("\(file) is not a JSON object; see docs/commands.md for the keys")
        }
        var base = try JSONSerialization.jsonObject(with: Data(c.canonicalJSON().utf8)) as! [String: Any]
        for (k, v) in patch {
            guard base[k] != nil || k == "target" else { throw AstraError("\(file): unknown configuration key '\(k)'; keys: \(base.keys.sorted().joined(separator: ", "))") }
            if k == "recipe", let r = v as? [String: Any], var br = base[k] as? [String: Any] { for (a, b) in r { br[a] = b }; base[k] = br } else { base[k] = v }
        }
        do { c = try JSONDecoder().decode(ExperimentConfig.self, from: JSONSerialization.data(withJSONObject: base)) }
        catch { throw AstraError("\(file): a value has the wrong type (\(error))") }
    }
    if let v = o.string("data") { c.data = v }
    if let v = o.string("target") { c.target = v }
    let seeds = try o.intList("seeds").map { $0.map(UInt64.init) }
    // A new workspace takes --seeds as its default ensemble; an existing one keeps its own.
    if let seeds, try ws.loadConfig() == nil { c.seeds = seeds }
    if let v = try o.int("train-size", min: 2) { c.trainSize = v }
    if let v = try o.int("query-size", min: 1) { c.querySize = v }
    if let v = o.list("hidden") {
        c.hidden = try v.map { guard let w = Int($0), w > 0 else { throw AstraError("\(o.command): --hidden expects positive widths like 128,128") }; return w }
    }
    if let v = o.string("activation") { c.activation = v == "relu" ? nil : v }
    if let v = try o.double("lr") { c.recipe.learningRate = v }
    if let v = try o.double("momentum") { c.recipe.momentum = v }
    if let v = try o.double("weight-decay") { c.recipe.weightDecay = v }
    if let v = try o.int("batch-size", min: 1) { c.recipe.batchSize = v }
    if let v = try o.int("epochs", min: 1) { c.recipe.epochs = v }
    if let v = try o.double("label-noise") { c.labelNoise = v }
    if let v = try o.int("data-seed", min: 0) { c.dataSeed = UInt64(v) }
    if let v = try o.int("masks", min: 2) { c.masks = v }
    if let v = try o.int("repeats", min: 1) { c.repeats = v }
    if let v = try o.double("alpha") { c.alpha = v }
    if c.setting == "csv", c.data.isEmpty { throw AstraError("setting csv needs --data csv:PATH --target COLUMN") }
    try c.validate()
    // Data first: a missing or corrupt file must not leave a config.json behind.
    let data = try PreparedData.load(c)
    _ = try RunContext.networkShape(config: c, data: data)
    if comm.isRoot { try ws.establish(c) }
    comm.barrier()
    // Every rank must see rank 0's workspace: the directory is shared (docs/design.md).
    guard FileManager.default.fileExists(atPath: ws.configPath) else {
        throw AstraError("rank \(comm.rank) cannot see \(ws.configPath) written by rank 0: --workdir must be on a filesystem all ranks share")
    }
    return try RunContext(comm: comm, workspace: ws, config: c, data: data, threads: try o.int("threads", min: 1) ?? 1, seeds: seeds)
}

let commands: [Command] = [
    Command(name: "train", summary: "Train one model per seed (seeds spread over ranks); writes DIR/models/seed-S/.",
            specs: workspaceOptions + [OptionSpec(name: "checkpoint-every", value: "STEPS", help: "also save weights every STEPS steps (SOURCE, TracIn)")]) { o, comm in
        let ctx = try makeContext(o, comm)
        try TrainStage.run(ctx, checkpointEvery: try o.int("checkpoint-every", min: 1) ?? 0)
    },
    Command(name: "fit", summary: "Fit EK-FAC factors for each model seed, training set sharded over ranks; writes DIR/factors/seed-S/.",
            specs: workspaceOptions + [
                OptionSpec(name: "fisher", value: "MODE", help: "sampled (labels drawn from the model, default) or exact (expectation over labels)"),
                OptionSpec(name: "fit-batch", value: "B", help: "examples per pass batch (default 256; memory only, not results)")]) { o, comm in
        let ctx = try makeContext(o, comm)
        try FitStage.run(ctx, mode: try fisherMode(o), batchSize: try o.int("fit-batch", min: 1) ?? 256)
    },
    Command(name: "groundtruth", summary: "Retrain on M random subsets × R seeds through a dynamic MPI work queue; resumable journal; writes DIR/groundtruth/.",
            specs: workspaceOptions) { o, comm in
        let ctx = try makeContext(o, comm)
        try GroundTruthStage.run(ctx)
    },
    Command(name: "lds", summary: "Linear Datamodeling Score of each scores file against the ground truth; writes DIR/lds/METHOD.json and prints a table.",
            specs: workspaceOptions + [
                OptionSpec(name: "method", value: "LIST", help: "methods to evaluate (default: every method with scores)"),
                OptionSpec(name: "ensemble", value: nil, help: "also average each method's scores over the available seeds")]) { o, comm in
        let ctx = try makeContext(o, comm)
        let results = try LDSStage.run(ctx, methods: o.list("method"), ensemble: o.flag("ensemble"))
        if comm.isRoot { print(LDSStage.table(results)) }
    },
    Command(name: "score", summary: "Influence scores of every training example for each query (Q×N); writes DIR/scores/NAME/seed-S.npy and .json.",
            specs: workspaceOptions + solverSpecs + [
                OptionSpec(name: "method", value: "M", help: "identity, kfac, ekfac (default), sni, astra, exact"),
                OptionSpec(name: "name", value: "NAME", help: "output directory under scores/ (default: the method)"),
                OptionSpec(name: "queries", value: "SPEC", help: "another query set: held-out rows 0-99,250, csv:PATH or idx:IMAGES,LABELS"),
                OptionSpec(name: "queries-name", value: "NAME", help: "name of that query set (files seed-S.NAME.npy)"),
                OptionSpec(name: "query-groups", value: "G", help: "split the ranks into G query groups (default: cost model, docs/design.md)"),
                OptionSpec(name: "query-block", value: "K", help: "queries solved at once per group (memory knob, default 128)"),
                OptionSpec(name: "top", value: "K", help: "also write each query's K most helpful and harmful examples (seed-S.top.json)"),
                OptionSpec(name: "trace", value: "FILE", help: "write the solver's objective trace as CSV")]) { o, comm in
        let ctx = try makeContext(o, comm)
        let method = try solverMethod(o.string("method") ?? "ekfac")
        let options = try solverOptions(o, method: method, ctx: ctx)
        let queries = try o.string("queries").map { try ScoreStage.querySet(spec: $0, name: o.string("queries-name"), ctx: ctx) }
        let request = ScoreStage.Request(method: method, options: options, queries: queries, groups: try o.int("query-groups", min: 1),
                                         queryBlock: try o.int("query-block", min: 1) ?? 128, top: try o.int("top", min: 1) ?? 0,
                                         name: o.string("name"), tracePath: o.string("trace"))
        try ScoreStage.run(ctx, request)
    },
    Command(name: "run", summary: "The whole pipeline: train, fit, score each method, groundtruth, lds; skips finished stages; prints the table.",
            specs: workspaceOptions + [
                OptionSpec(name: "methods", value: "LIST", help: "methods to compare (default identity,kfac,ekfac,sni,astra, plus exact when P ≤ 8000)"),
                OptionSpec(name: "ensemble", value: "E", help: "train E models (seeds 0…E−1) and report ensemble LDS"),
                OptionSpec(name: "damping", value: "X", help: "influence damping λ for every method (default: the setting's)"),
                OptionSpec(name: "fisher", value: "MODE", help: "sampled (default) or exact")]) { o, comm in
        var opts = o
        if let e = try o.int("ensemble", min: 1) { opts.set("seeds", "0-\(e - 1)") }
        let ctx = try makeContext(opts, comm)
        let p = ctx.shape.parameterCount
        let methods = try (o.list("methods") ?? ["identity", "kfac", "ekfac", "sni", "astra"] + (p <= 8000 ? ["exact"] : [])).map(solverMethod)
        let damping = try o.double("damping") ?? ctx.config.damping
        let rows = try RunStage.run(ctx, methods: methods, options: { SolverOptions(method: $0, damping: damping) }, fisher: try fisherMode(o))
        if comm.isRoot { print(RunStage.table(rows, ensembleSize: ctx.seeds.count)) }
    },
    Command(name: "convergence", summary: "The paper's Figure 3: objective and LDS vs iteration for ASTRA and SNI (needs train, fit, groundtruth); writes DIR/report/.",
            specs: workspaceOptions + [
                OptionSpec(name: "queries-count", value: "K", help: "queries followed (the first K of the workspace's; default 10)"),
                OptionSpec(name: "solver-seeds", value: "S", help: "solver seeds per method (default 10)"),
                OptionSpec(name: "iterations", value: "K", help: "ASTRA iterations (default 200)"),
                OptionSpec(name: "sni-iterations", value: "K", help: "SNI iterations (default 2000)"),
                OptionSpec(name: "sni-rates", value: "LIST", help: "SNI step sizes swept (default 1,0.1,0.01,0.001,1e-4,1e-5)"),
                OptionSpec(name: "damping", value: "X", help: "damping (default: the setting's)")]) { o, comm in
        let ctx = try makeContext(o, comm)
        var opt = ConvergenceStage.Options()
        if let v = try o.int("queries-count", min: 1) { opt.queries = v }
        if let v = try o.int("solver-seeds", min: 1) { opt.solverSeeds = v }
        if let v = try o.int("iterations", min: 1) { opt.astraIterations = v }
        if let v = try o.int("sni-iterations", min: 1) { opt.sniIterations = v }
        if let v = o.list("sni-rates") {
            opt.sniRates = try v.map { guard let d = Double($0), d > 0 else { throw AstraError("convergence: --sni-rates expects positive numbers, got '\($0)'") }; return d }
        }
        opt.damping = try o.double("damping")
        let r = try ConvergenceStage.run(ctx, opt)
        if comm.isRoot {
            for c in r.curves { print("\(c.method) (α \(c.learningRate)): " + c.points.map { String(format: "%d: h %.4g, LDS %.3f", $0.iteration, $0.objective, $0.lds) }.joined(separator: "; ")) }
            print("ASTRA reaches SNI's final objective at iteration \(r.astraIterationsToMatchSNI.map(String.init) ?? "—")")
        }
    },
    Command(name: "bench", summary: "Benchmarks: `bench train|fit|score --setting NAME`; prints JSON with timings and GFLOP/s against the measured SGEMM peak.",
            specs: workspaceOptions + [OptionSpec(name: "runs", value: "K", help: "repetitions (median reported; default 5)"),
                                       OptionSpec(name: "fisher", value: "MODE", help: "fit: sampled (default) or exact"),
                                       OptionSpec(name: "methods", value: "LIST", help: "score: solvers to time (default ekfac,astra,sni)"),
                                       OptionSpec(name: "iterations", value: "K", help: "score: SNI iterations (default 2000)"),
                                       OptionSpec(name: "query-groups", value: "G", help: "score: query groups, as in `score` (default: the same cost model)"),
                                       OptionSpec(name: "damping", value: "X", help: "score: damping (default: the setting's)"),
                                       OptionSpec(name: "out", value: "FILE", help: "also write the JSON result to FILE")]) { o, comm in
        try runBenchmark(o, comm)
    },
]

func fisherMode(_ o: Options) throws -> FisherMode {
    guard let s = o.string("fisher") else { return .sampled }
    guard let m = FisherMode(rawValue: s) else { throw AstraError("\(o.command): --fisher expects sampled or exact, got '\(s)'") }
    return m
}

/// Solver options shared by `score` (and recorded in every scores file).
let solverSpecs: [OptionSpec] = [
    OptionSpec(name: "damping", value: "X", help: "influence damping λ (default: the setting's, the paper's value)"),
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
    OptionSpec(name: "exact-limit", value: "P", help: "largest parameter count the exact solver accepts (default 8000)"),
]

func solverMethod(_ s: String) throws -> SolverMethod {
    guard let m = SolverMethod(rawValue: s) else {
        throw AstraError("unknown method '\(s)'; choose one of: \(SolverMethod.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    return m
}

func solverOptions(_ o: Options, method: SolverMethod, ctx: RunContext) throws -> SolverOptions {
    var s = SolverOptions(method: method, damping: try o.double("damping") ?? ctx.config.damping)
    if let v = try o.int("iterations", min: 0) { s.iterations = v }
    if let v = try o.int("solver-batch", min: 0) { s.batchSize = v }
    if let v = try o.double("solver-lr") { s.learningRate = v }
    if let v = try o.double("lr-scale") { s.learningRateScale = v }
    if let v = try o.double("solver-momentum") { s.momentum = v }
    if let v = try o.int("decay-every", min: 1) { s.decayEvery = v }
    if let v = try o.double("decay-factor") { s.decayFactor = v }
    if let v = try o.int("lissa-repeats", min: 1) { s.lissaRepeats = v }
    if let v = try o.int("solver-seed", min: 0) { s.seed = UInt64(v) }
    // Direct methods evaluate the objective only on request (it costs more than their solve).
    if !method.isIterative && !o.has("trace") { s.traceEvery = 0 }
    if let v = try o.int("trace-every", min: 0) { s.traceEvery = v }
    if let v = try o.int("exact-limit", min: 1) { s.exactLimit = v }
    if let v = try o.int("power-iterations", min: 1) { s.powerIterations = v }
    if let v = try o.int("backoff-window", min: 0) { s.backoffWindow = v }
    if let v = try o.double("backoff-tolerance") { s.backoffTolerance = v }
    try s.validate()
    return s
}
