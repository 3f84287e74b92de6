import AstraDist
import Foundation

/// `astra-dist bench <what>`: the first bare word after `bench` names the benchmark.
func runBenchmark(_ o: Options, _ comm: Communicator) throws {
    guard let what = o.string("bench-target") else { throw AstraError("bench: name what to measure: `astra-dist bench train|fit|score --setting NAME`") }
    let ctx = try makeContext(o, comm)
    let runs = try o.int("runs", min: 1) ?? 5
    let json: Data
    let e = JSONEncoder(); e.outputFormatting = [.prettyPrinted, .sortedKeys]
    switch what {
    case "train": json = try e.encode(Benchmark.train(ctx, runs: runs))
    case "fit": json = try e.encode(Benchmark.fit(ctx, mode: try fisherMode(o), runs: runs))
    case "score":
        let methods = try (o.list("methods") ?? ["ekfac", "astra", "sni"]).map(solverMethod)
        json = try e.encode(Benchmark.score(ctx, methods: methods, sniIterations: try o.int("iterations", min: 1) ?? 2000,
                                            damping: try o.double("damping") ?? ctx.config.damping, groups: try o.int("query-groups", min: 1)))
    default: throw AstraError("bench: unknown benchmark '\(what)'; choose train, fit or score")
    }
    if comm.isRoot {
        print(String(decoding: json, as: UTF8.self))
        if let out = o.string("out") { try AtomicFile.write(Array(json) + [10], to: out) }
    }
}
