import AstraDist
import Foundation

/// `astra-dist bench <what>`: the first bare word after `bench` names the benchmark.
func runBenchmark(_ o: Options, _ comm: Communicator) throws {
    guard let what = o.string("bench-target") else { throw AstraError("bench: name what to measure: `astra-dist bench train|fit|score --setting NAME`") }
    guard ["train", "fit", "score"].contains(what) else { throw AstraError("bench: unknown benchmark '\(what)'; choose train, fit or score") }
    let ws = try workspace(o, creates: true)
    let runs = try o.int("runs", min: 1) ?? 5
    let mode = try fisherMode(o), methods = try solverMethods(o, default: ["ekfac", "astra", "sni"])
    let sniIterations = try o.int("sni-iterations", min: 1) ?? 2000, groups = try o.int("query-groups", min: 1)
    let astraIterations = try o.int("astra-iterations", min: 1)
    let ctx = try openContext(o, ws, comm)
    let damping = try o.double("damping") ?? ctx.config.damping
    try SolverOptions(method: .ekfac, damping: damping).validate()
    try establish(ctx)
    let json: Data
    let e = JSONEncoder(); e.outputFormatting = [.prettyPrinted, .sortedKeys]
    switch what {
    case "train": json = try e.encode(Benchmark.train(ctx, runs: runs))
    case "fit": json = try e.encode(Benchmark.fit(ctx, mode: mode, runs: runs))
    default: json = try e.encode(Benchmark.score(ctx, methods: methods, sniIterations: sniIterations, damping: damping, groups: groups,
                                                 astraIterations: astraIterations, fisher: mode))
    }
    if comm.isRoot {
        print(String(decoding: json, as: UTF8.self))
        if let out = o.string("out") { try AtomicFile.write(Array(json) + [10], to: out) }
    }
}
