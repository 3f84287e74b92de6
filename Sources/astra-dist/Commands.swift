import AstraDist
import Foundation

/// A subcommand: its options and what it runs. Every command first checks all of its
/// options, then opens the workspace (writing nothing), checks what needs the data, and only
/// then establishes config.json (`establish`), so a command that fails leaves no file behind.
struct Command: Sendable {
    let name: String
    let summary: String
    let specs: [OptionSpec]
    let run: @Sendable (Options, Communicator) throws -> Void
}

let commands: [Command] = [
    Command(name: "train", summary: "Train one model per seed (seeds spread over ranks); writes DIR/models/seed-S/ (checkpoints in seed-S/checkpoint-K/).",
            specs: commonOptions + configurationOptions) { o, comm in
        let ctx = try openContext(o, try workspace(o, creates: true), comm)
        try establish(ctx)
        try TrainStage.run(ctx)
    },
    Command(name: "fit", summary: "Fit EK-FAC factors for each model seed, training set sharded over ranks; writes DIR/factors/seed-S/.",
            specs: commonOptions + [
                OptionSpec(name: "fisher", value: "MODE", help: "sampled (labels drawn from the model, default) or exact (expectation over labels)"),
                OptionSpec(name: "fit-batch", value: "B", help: "examples per pass batch (default 256; memory only, not results)")]) { o, comm in
        let ws = try workspace(o, creates: false)
        let mode = try fisherMode(o), batch = try o.int("fit-batch", min: 1) ?? 256
        let ctx = try openContext(o, ws, comm)
        try establish(ctx)
        try FitStage.run(ctx, mode: mode, batchSize: batch)
    },
    Command(name: "groundtruth", summary: "Retrain on M random subsets × R seeds through a dynamic MPI work queue; resumable, extensible journal; writes DIR/groundtruth/.",
            specs: commonOptions + configurationOptions + protocolOptions) { o, comm in
        let ws = try workspace(o, creates: true)
        let ctx = try openContext(o, ws, comm)
        let (m, r) = try sweep(o, ctx.config)
        try ctx.config.requireRecipe(for: "ground truth", workspace: ws.root)
        try establish(ctx)
        try GroundTruthStage.run(ctx, masks: m, repeats: r)
    },
    Command(name: "lds", summary: "Linear Datamodeling Score of each result against the ground truth; writes DIR/lds/NAME.json and prints a table.",
            specs: commonOptions + [
                OptionSpec(name: "method", value: "LIST", help: "results to evaluate, by name under scores/ (default: every one)"),
                OptionSpec(name: "ensemble", value: nil, help: "also average each result's scores over the seeds")]) { o, comm in
        let ws = try workspace(o, creates: false)
        let names = try o.list("method")
        try names?.forEach { try ResultName.validate($0, what: "--method") }
        let ctx = try openContext(o, ws, comm)
        try establish(ctx)
        let results = try LDSStage.run(ctx, methods: names, ensemble: o.flag("ensemble"))
        if comm.isRoot {
            print(LDSStage.table(results))
            let curves = DampingCurves.curves(results)
            if !curves.isEmpty { print(DampingCurves.table(curves) + "wrote " + LDSStage.dampingFigurePath(ws)) }
        }
    },
    Command(name: "score", summary: "Influence scores of every training example for each query (Q×N); writes DIR/scores/NAME/seed-S.npy and .json (NAME: docs/commands.md, Naming rule).",
            specs: commonOptions + solverSpecs + [
                OptionSpec(name: "method", value: "LIST", help: "identity, kfac, ekfac (default), sni, astra, exact, tracin, trak, source, astra-source; several: one after the other"),
                OptionSpec(name: "name", value: "NAME", help: "result name under scores/ (default: derived from the method and its non-default options)"),
                OptionSpec(name: "queries", value: "SPEC", help: "another query set: held-out rows 0-99,250, csv:PATH or idx:IMAGES,LABELS"),
                OptionSpec(name: "queries-name", value: "NAME", help: "name of that query set (files seed-S.NAME.npy)"),
                OptionSpec(name: "query-groups", value: "G", help: "split the ranks into G query groups (default: cost model, docs/design.md)"),
                OptionSpec(name: "query-block", value: "K", help: "queries solved at once per group (memory knob, default 128)"),
                OptionSpec(name: "top", value: "K", help: "also write each query's K most helpful and harmful examples (seed-S.top.json)"),
                OptionSpec(name: "trace", value: "FILE", help: "write the solver's objective trace as CSV"),
                OptionSpec(name: "untargeted", value: nil, help: "measure the queries without their targets: the predicted class's margin, or the output g (regression)")]) { o, comm in
        let ws = try workspace(o, creates: false)
        let methods = try solverMethods(o, default: ["ekfac"])
        try checkSolverFlags(o, methods: methods)
        if methods.count > 1 {
            for single in ["name", "trace"] where o.has(single) { throw AstraError("score: --\(single) names one result; pass one --method with it") }
        }
        let dampings = try dampingList(o)
        if let dampings, dampings.count > 1, o.has("trace") { throw AstraError("score: --trace names one file; pass one --damping with it") }
        if o.flag("untargeted"), let m = methods.first(where: { !$0.solvesIHVP }) {
            throw AstraError("score: --untargeted applies to the iHVP methods, not to \(m.rawValue) (its measurement has a target)")
        }
        if let name = o.string("name") { try ResultName.validate(name, what: "--name") }
        if o.has("queries-name") && !o.has("queries") && !o.flag("untargeted") {
            throw AstraError("score: --queries-name names the set of --queries (or of --untargeted); pass --queries SPEC too")
        }
        let fisher = try fisherMode(o)
        let groups = try o.int("query-groups", min: 1), block = try o.int("query-block", min: 1) ?? 128, top = try o.int("top", min: 1) ?? 0
        let ctx = try openContext(o, ws, comm)
        // One sweep per method: a request per λ (`--damping LIST`), named as if asked alone, or `N_damping=λ` with --name N.
        let sweeps = try methods.map { m in
            let lambdas = m.solvesIHVP && !m.isSource ? dampings ?? [ctx.config.damping] : [ctx.config.damping]
            return try lambdas.map { lambda in
                let name = o.string("name").map { lambdas.count > 1 ? "\($0)_damping=\(ResultName.canonical(lambda))" : $0 }
                return ScoreStage.Request(method: m, options: try solverOptions(o, method: m, damping: lambda), queries: nil, groups: groups,
                                          queryBlock: block, top: top, name: name, tracePath: o.string("trace"), fisher: fisher)
            }
        }
        try sweeps.joined().compactMap(\.name).forEach { try ResultName.validate($0, what: "--name") }
        let queries = try ScoreStage.querySet(spec: o.string("queries"), name: o.string("queries-name"), untargeted: o.flag("untargeted"), ctx: ctx)
        try establish(ctx)
        for sweep in sweeps { try ScoreStage.run(ctx, sweep: sweep.map { var r = $0; r.queries = queries; return r }) }
    },
    Command(name: "run", summary: "The whole pipeline: train, fit, score each method, groundtruth, lds; reuses a finished stage only if made with the same options; prints the table.",
            specs: commonOptions + configurationOptions + protocolOptions + [
                OptionSpec(name: "method", value: "LIST", help: "methods to compare (default identity,kfac,ekfac,sni,astra, plus exact when P ≤ 8000)"),
                OptionSpec(name: "ensemble", value: nil, help: "also report the LDS of the scores averaged over the seeds"),
                OptionSpec(name: "damping", value: "X", help: "influence damping λ for every method (default: the setting's; others are named NAME_damping=λ)"),
                OptionSpec(name: "fisher", value: "MODE", help: "sampled (default) or exact")]) { o, comm in
        let ws = try workspace(o, creates: true)
        let fisher = try fisherMode(o), requested = try o.list("method")
        if let requested { _ = try solverMethods(o, default: requested) }
        let ctx = try openContext(o, ws, comm)
        let methods = try solverMethods(o, default: ["identity", "kfac", "ekfac", "sni", "astra"] + (ctx.shape.parameterCount <= 8000 ? ["exact"] : []))
        if let list = try dampingList(o), list.count > 1 {
            throw AstraError("run: --damping takes one λ here; sweep a list with `astra-dist score --workdir \(ws.root) --method … --damping \(o.string("damping")!)`, then `lds`")
        }
        let damping = try o.double("damping") ?? ctx.config.damping
        try SolverOptions(method: .ekfac, damping: damping).validate()
        let (m, r) = try sweep(o, ctx.config)
        try ctx.config.requireRecipe(for: "run's ground truth", workspace: ws.root)
        try establish(ctx)
        let rows = try RunStage.run(ctx, RunStage.Request(methods: methods, damping: damping, fisher: fisher, masks: m, repeats: r, ensemble: o.flag("ensemble")))
        if comm.isRoot { print(RunStage.table(rows, ensembleSize: ctx.seeds.count)) }
    },
    Command(name: "convergence", summary: "The paper's Figure 3: objective and LDS vs iteration for ASTRA and SNI (needs train, fit, groundtruth); writes DIR/report/.",
            specs: commonOptions + [
                OptionSpec(name: "queries-count", value: "K", help: "queries followed (the first K of the workspace's; default 10)"),
                OptionSpec(name: "solver-seeds", value: "S", help: "solver seeds per method (default 10)"),
                OptionSpec(name: "astra-iterations", value: "K", help: "ASTRA iterations (default 200)"),
                OptionSpec(name: "sni-iterations", value: "K", help: "SNI iterations (default 2000)"),
                sniRatesOption,
                OptionSpec(name: "damping", value: "X", help: "damping (default: the setting's)")]) { o, comm in
        let ws = try workspace(o, creates: false)
        var opt = ConvergenceStage.Options()
        if let v = try o.int("queries-count", min: 1) { opt.queries = v }
        if let v = try o.int("solver-seeds", min: 1) { opt.solverSeeds = v }
        if let v = try o.int("astra-iterations", min: 1) { opt.astraIterations = v }
        if let v = try o.int("sni-iterations", min: 1) { opt.sniIterations = v }
        if let v = try o.list("sni-rates") {
            opt.sniRates = try v.map { guard let d = Double($0), d > 0 else { throw AstraError("convergence: --sni-rates expects positive numbers, got '\($0)'") }; return d }
        }
        opt.damping = try o.double("damping")
        let ctx = try openContext(o, ws, comm)
        try establish(ctx)
        let r = try ConvergenceStage.run(ctx, opt)
        if comm.isRoot {
            for c in r.curves { print("\(c.method) (α \(c.learningRate)): " + c.points.map { String(format: "%d: h %.4g, LDS %.3f", $0.iteration, $0.objective, $0.lds) }.joined(separator: "; ")) }
            print("ASTRA reaches SNI's final objective at iteration \(r.astraIterationsToMatchSNI.map(String.init) ?? "—")")
        }
    },
    Command(name: "subspace", summary: "ASTRA §6: objective and LDS of the iterate projected onto EK-FAC curvature subspaces as ASTRA and SNI run (needs train, fit, groundtruth); writes DIR/report/.",
            specs: subspaceSpecs) { o, comm in try runSubspace(o, comm) },
    Command(name: "curvature", summary: "The curvature ladder (spec §12): H, GGN, block GGN, EK-FAC, K-FAC dense on digits MLPs; errors, LDS, decomposition per sweep point; writes DIR/curvature/.",
            specs: curvatureSpecs) { o, comm in try runCurvature(o, comm) },
    importCommand,
    reportCommand,
    Command(name: "bench", summary: "Benchmarks: `bench train|fit|score --setting NAME`; prints JSON with timings and GFLOP/s against the measured SGEMM peak.",
            specs: commonOptions + configurationOptions + [
                OptionSpec(name: "runs", value: "K", help: "repetitions (median reported; default 5)"),
                OptionSpec(name: "fisher", value: "MODE", help: "fit, and score's timed fits (final model, SOURCE segments): sampled (default) or exact"),
                OptionSpec(name: "method", value: "LIST", help: "score: methods to time (default ekfac,astra,sni; also source, astra-source, tracin, trak: their parts and issue 17's speed targets)"),
                OptionSpec(name: "sni-iterations", value: "K", help: "score: SNI iterations (default 2000)"),
                OptionSpec(name: "astra-iterations", value: "K", help: "score: iterations of every ASTRA solve, astra-source's segments too (default 200)"),
                OptionSpec(name: "query-groups", value: "G", help: "score: query groups, as in `score` (default: the same cost model)"),
                OptionSpec(name: "damping", value: "X", help: "score: damping (default: the setting's)"),
                OptionSpec(name: "out", value: "FILE", help: "also write the JSON result to FILE")]) { o, comm in
        try runBenchmark(o, comm)
    },
]
