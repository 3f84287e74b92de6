import AstraDist
import Foundation

/// Options every command takes: which workspace, which models, how many BLAS threads.
let commonOptions: [OptionSpec] = [
    OptionSpec(name: "workdir", value: "DIR", help: "experiment directory, shared by all ranks (required)"),
    OptionSpec(name: "seeds", value: "LIST", help: "model seeds to process, e.g. 0,1,2 or 0-4 (default: config.json's, set by the first command)"),
    OptionSpec(name: "threads", value: "T", help: "BLAS threads per rank (default 1; results are bit-identical only at a fixed count)"),
]

/// A configuration flag: the option and the configuration key it sets (dotted for nested
/// keys), so a bad value is reported under the flag the user typed.
struct ConfigurationFlag: Sendable {
    let spec: OptionSpec
    let key: String
    let apply: @Sendable (inout ExperimentConfig, Options) throws -> Void
}

/// Flags that define a new workspace's configuration (commands that may create one: train,
/// run, groundtruth, bench). On an existing workspace they must agree with config.json.
let configurationFlags: [ConfigurationFlag] = [
    ConfigurationFlag(spec: OptionSpec(name: "data", value: "SRC", help: "data source: digits:PATH, csv:PATH, idx:DIR, cifar:DIR"), key: "data") { c, o in c.data = o.string("data")! },
    ConfigurationFlag(spec: OptionSpec(name: "target", value: "COL", help: "CSV target column, by header name or 0-based index"), key: "target") { c, o in c.target = o.string("target")! },
    ConfigurationFlag(spec: OptionSpec(name: "train-size", value: "N", help: "training examples"), key: "trainSize") { c, o in c.trainSize = try o.int("train-size", min: 2)! },
    ConfigurationFlag(spec: OptionSpec(name: "query-size", value: "Q", help: "query examples (held-out rows)"), key: "querySize") { c, o in c.querySize = try o.int("query-size", min: 1)! },
    ConfigurationFlag(spec: OptionSpec(name: "hidden", value: "LIST", help: "hidden widths, e.g. 128,128,128"), key: "hidden") { c, o in
        c.hidden = try o.list("hidden")!.map { guard let w = Int($0), w > 0 else { throw AstraError("\(o.command): --hidden expects positive widths like 128,128, got '\($0)'") }; return w }
    },
    ConfigurationFlag(spec: OptionSpec(name: "activation", value: "NAME", help: "MLP activation: relu (default) or gelu (exact erf form)"), key: "activation") { c, o in
        let v = o.string("activation")!; c.activation = v == "relu" ? nil : v
    },
    ConfigurationFlag(spec: OptionSpec(name: "lr", value: "X", help: "training learning rate"), key: "recipe.learningRate") { c, o in c.recipe.learningRate = try o.double("lr")! },
    ConfigurationFlag(spec: OptionSpec(name: "momentum", value: "X", help: "training SGD momentum"), key: "recipe.momentum") { c, o in c.recipe.momentum = try o.double("momentum")! },
    ConfigurationFlag(spec: OptionSpec(name: "weight-decay", value: "X", help: "training weight decay"), key: "recipe.weightDecay") { c, o in c.recipe.weightDecay = try o.double("weight-decay")! },
    ConfigurationFlag(spec: OptionSpec(name: "batch-size", value: "B", help: "training batch size"), key: "recipe.batchSize") { c, o in c.recipe.batchSize = try o.int("batch-size", min: 1)! },
    ConfigurationFlag(spec: OptionSpec(name: "epochs", value: "E", help: "training epochs"), key: "recipe.epochs") { c, o in c.recipe.epochs = try o.int("epochs", min: 1)! },
    ConfigurationFlag(spec: OptionSpec(name: "one-cycle-peak", value: "F", help: "one-cycle learning rate: 0 → --lr at fraction F of the steps → 0 (default: constant)"), key: "recipe.oneCyclePeak") { c, o in
        c.recipe.oneCyclePeak = try o.double("one-cycle-peak")!
    },
    ConfigurationFlag(spec: OptionSpec(name: "checkpoint-every", value: "STEPS", help: "also save the weights every STEPS training steps (part of the configuration)"), key: "checkpointEvery") { c, o in
        c.checkpointEvery = try o.int("checkpoint-every", min: 1)!
    },
    ConfigurationFlag(spec: OptionSpec(name: "label-noise", value: "X", help: "fraction of training labels randomised"), key: "labelNoise") { c, o in c.labelNoise = try o.double("label-noise")! },
    ConfigurationFlag(spec: OptionSpec(name: "data-seed", value: "S", help: "seed of the split, subsets and label noise"), key: "dataSeed") { c, o in c.dataSeed = UInt64(try o.int("data-seed", min: 0)!) },
    ConfigurationFlag(spec: OptionSpec(name: "alpha", value: "X", help: "ground truth: subset fraction (default 0.5; fixes the subsets)"), key: "alpha") { c, o in c.alpha = try o.double("alpha")! },
]

/// The options of a command that may create the workspace: preset, --config, the flags.
let configurationOptions: [OptionSpec] = [
    OptionSpec(name: "setting", value: "NAME", help: "preset: \(Presets.names.joined(separator: ", ")) (default digits; fixed once config.json exists)"),
    OptionSpec(name: "config", value: "FILE", help: "JSON file overriding any configuration key (see docs/commands.md)"),
] + configurationFlags.map(\.spec)

/// Ground-truth protocol: which M×R sweep (extends or selects a prefix; not configuration).
let protocolOptions: [OptionSpec] = [
    OptionSpec(name: "masks", value: "M", help: "ground truth: number of subsets (default: config.json's; more extends the sweep, fewer selects a prefix)"),
    OptionSpec(name: "repeats", value: "R", help: "ground truth: retrainings per subset (default: config.json's; as --masks)"),
]

/// The ground-truth sweep a command asks for: `--masks`, `--repeats`, else the configuration's.
func sweep(_ o: Options, _ config: ExperimentConfig) throws -> (masks: Int, repeats: Int) {
    (try o.int("masks", min: 2) ?? config.masks, try o.int("repeats", min: 1) ?? config.repeats)
}

/// The workspace named by --workdir, checked before anything is read or written. A command
/// that does not create workspaces refuses a directory without config.json.
func workspace(_ o: Options, creates: Bool) throws -> WorkDirectory {
    guard let dir = o.string("workdir") else { throw AstraError("\(o.command): --workdir DIR is required") }
    let ws = try WorkDirectory.validated(dir)
    if !creates && !ws.hasConfig {
        throw AstraError("\(dir) has no config.json; start with `astra-dist train --workdir \(dir) …` (or run)")
    }
    return ws
}

/// Resolves the configuration (config.json if it exists, else the preset; then --config,
/// then flags), validates it and loads the data. Writes nothing: `establish` does, once
/// the command has checked all of its own options. `adjust` (import) sets keys no flag
/// does, after the flags and before validation; it may record where a key came from.
func openContext(_ o: Options, _ ws: WorkDirectory, _ comm: Communicator,
                 adjust: ((inout ExperimentConfig, inout [String: String]) throws -> Void)? = nil) throws -> RunContext {
    let threads = try o.int("threads", min: 1) ?? 1
    let seeds = try o.intList("seeds").map { $0.map(UInt64.init) }
    let roots = DataRoots.discover(executable: CommandLine.arguments[0])
    var c: ExperimentConfig
    var origin: [String: String] = [:]
    let existing = try ws.loadConfig()
    let base: String
    if let existing {
        if let s = o.string("setting"), s != existing.setting {
            throw AstraError("\(ws.configPath) is for setting '\(existing.setting)', not '\(s)'; use a new --workdir")
        }
        c = existing; base = "\(ws.configPath) key"
    } else {
        let setting = o.string("setting") ?? "digits"
        c = try Presets.config(setting, dataRoot: roots); base = "preset \(setting), key"
    }
    if let file = o.string("config") {
        let keys: [String]
        (c, keys) = try ConfigPatch.apply(file: file, to: c)
        for k in keys { origin[k] = "\(file) key \(k)" }
    }
    for flag in configurationFlags where o.has(flag.spec.name) {
        try flag.apply(&c, o)
        origin[flag.key] = "--\(flag.spec.name)"
    }
    // A new workspace takes --seeds (and --masks/--repeats) as its defaults; an existing one
    // keeps its own: they select models and the sweep without changing the configuration.
    if existing == nil {
        if let seeds { c.seeds = seeds; origin["seeds"] = "--seeds" }
        (c.masks, c.repeats) = try sweep(o, c)
    }
    try adjust?(&c, &origin)
    if c.setting == "csv", c.data.isEmpty { throw AstraError("setting csv needs --data csv:PATH --target COLUMN") }
    try c.validate(origin: { origin[$0] ?? "\(base) \($0)" })
    if let existing {
        let differences = existing.differences(from: c)
        guard differences.isEmpty else {
            let listed = differences.map { "\($0.key) \($0.this), this request \($0.other) (\(origin[$0.key] ?? "?"))" }.joined(separator: "; ")
            throw AstraError("\(ws.configPath) has \(listed); use a new --workdir, or drop the options that change it")
        }
    }
    let data = try PreparedData.load(c)
    // A new workspace records the default checkpoint schedule (SOURCE needs checkpoints);
    // existing ones keep theirs, so their configuration hashes do not change.
    if existing == nil, c.checkpointEvery == nil { c.checkpointEvery = CheckpointSchedule.defaultEvery(steps: c.steps(examples: data.train.count)) }
    return try RunContext(comm: comm, workspace: ws, config: c, data: data, threads: threads, seeds: seeds)
}

/// Fixes the configuration in the workspace (rank 0 writes config.json if it is new) and
/// checks every rank sees it. Call after every option of the command has been checked.
func establish(_ ctx: RunContext) throws {
    if ctx.comm.isRoot { try ctx.workspace.establish(ctx.config) }
    ctx.comm.barrier()
    // Every rank must see rank 0's workspace: the directory is shared (docs/design.md).
    guard ctx.workspace.hasConfig else {
        throw AstraError("rank \(ctx.comm.rank) cannot see \(ctx.workspace.configPath) written by rank 0: --workdir must be on a filesystem all ranks share")
    }
}
