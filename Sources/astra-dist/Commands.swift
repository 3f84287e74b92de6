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
    OptionSpec(name: "seeds", value: "LIST", help: "model seeds, e.g. 0,1,2 or 0-4 (the ensemble)"),
    OptionSpec(name: "train-size", value: "N", help: "training examples"),
    OptionSpec(name: "query-size", value: "Q", help: "query examples (held-out rows)"),
    OptionSpec(name: "hidden", value: "LIST", help: "hidden widths, e.g. 128,128,128"),
    OptionSpec(name: "lr", value: "X", help: "training learning rate"),
    OptionSpec(name: "momentum", value: "X", help: "training SGD momentum"),
    OptionSpec(name: "weight-decay", value: "X", help: "training weight decay"),
    OptionSpec(name: "batch-size", value: "B", help: "training batch size"),
    OptionSpec(name: "epochs", value: "E", help: "training epochs"),
    OptionSpec(name: "label-noise", value: "X", help: "fraction of training labels randomised"),
    OptionSpec(name: "data-seed", value: "S", help: "seed of the split, subsets and label noise"),
    OptionSpec(name: "damping", value: "X", help: "influence damping λ (preset: the paper's value)"),
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
    if let v = try o.intList("seeds") { c.seeds = v.map(UInt64.init) }
    if let v = try o.int("train-size", min: 2) { c.trainSize = v }
    if let v = try o.int("query-size", min: 1) { c.querySize = v }
    if let v = o.list("hidden") {
        c.hidden = try v.map { guard let w = Int($0), w > 0 else { throw AstraError("\(o.command): --hidden expects positive widths like 128,128") }; return w }
    }
    if let v = try o.double("lr") { c.recipe.learningRate = v }
    if let v = try o.double("momentum") { c.recipe.momentum = v }
    if let v = try o.double("weight-decay") { c.recipe.weightDecay = v }
    if let v = try o.int("batch-size", min: 1) { c.recipe.batchSize = v }
    if let v = try o.int("epochs", min: 1) { c.recipe.epochs = v }
    if let v = try o.double("label-noise") { c.labelNoise = v }
    if let v = try o.int("data-seed", min: 0) { c.dataSeed = UInt64(v) }
    if let v = try o.double("damping") { c.damping = v }
    if let v = try o.int("masks", min: 2) { c.masks = v }
    if let v = try o.int("repeats", min: 1) { c.repeats = v }
    if let v = try o.double("alpha") { c.alpha = v }
    if c.setting == "csv", c.data.isEmpty { throw AstraError("setting csv needs --data csv:PATH --target COLUMN") }
    try c.validate()
    // Data first: a missing or corrupt file must not leave a config.json behind.
    let data = try PreparedData.load(c)
    if comm.isRoot { try ws.establish(c) }
    comm.barrier()
    // Every rank must see rank 0's workspace: the directory is shared (docs/design.md).
    guard FileManager.default.fileExists(atPath: ws.configPath) else {
        throw AstraError("rank \(comm.rank) cannot see \(ws.configPath) written by rank 0: --workdir must be on a filesystem all ranks share")
    }
    return RunContext(comm: comm, workspace: ws, config: c, data: data, threads: try o.int("threads", min: 1) ?? 1)
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
    Command(name: "bench", summary: "Benchmarks: `bench train|fit|score --setting NAME`; prints JSON with timings and GFLOP/s against the measured SGEMM peak.",
            specs: workspaceOptions + [OptionSpec(name: "runs", value: "K", help: "repetitions (median reported; default 5)"),
                                       OptionSpec(name: "out", value: "FILE", help: "also write the JSON result to FILE")]) { o, comm in
        try runBenchmark(o, comm)
    },
]

func fisherMode(_ o: Options) throws -> FisherMode {
    guard let s = o.string("fisher") else { return .sampled }
    guard let m = FisherMode(rawValue: s) else { throw AstraError("\(o.command): --fisher expects sampled or exact, got '\(s)'") }
    return m
}
