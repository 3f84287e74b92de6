import AstraDist
import Foundation

/// Options of `astra-dist subspace` (docs/commands.md).
/// `--sni-rates`, shared by `convergence` and `subspace` (the same sweep rule, IterateEvaluator.bestSNIRate).
let sniRatesOption = OptionSpec(name: "sni-rates", value: "LIST", help: "SNI step sizes swept (default 1,0.1,0.01,0.001,1e-4,1e-5; one value: used as given)")

let subspaceSpecs: [OptionSpec] = commonOptions + [
    OptionSpec(name: "thresholds", value: "LIST", help: "bin thresholds: bin b keeps EK-FAC eigenvalues ≥ each (default 0.1,0.01,0.001,1e-4,1e-5; 0 = every direction)"),
    OptionSpec(name: "queries-count", value: "K", help: "queries followed (the first K of the workspace's; default 10)"),
    OptionSpec(name: "solver-seeds", value: "S", help: "solver seeds per method (default 3)"),
    OptionSpec(name: "astra-iterations", value: "K", help: "ASTRA iterations (default 200)"),
    OptionSpec(name: "sni-iterations", value: "K", help: "SNI iterations (default 2000)"),
    sniRatesOption,
    OptionSpec(name: "damping", value: "X", help: "damping λ (default 1e-4, the paper's for this study)"),
]

/// A list option of numbers accepted by `valid` (described by `what` in the error).
func numberList(_ o: Options, _ name: String, what: String, _ valid: (Double) -> Bool) throws -> [Double]? {
    try o.list(name).map { try $0.map { guard let d = Double($0), d.isFinite, valid(d) else { throw AstraError("\(o.command): --\(name) expects \(what), got '\($0)'") }; return d } }
}

func runSubspace(_ o: Options, _ comm: Communicator) throws {
    let ws = try workspace(o, creates: false)
    var opt = SubspaceStage.Options()
    if let v = try numberList(o, "thresholds", what: "numbers ≥ 0 like 0.1,0.01", { $0 >= 0 }) {
        guard Set(v).count == v.count else { throw AstraError("subspace: --thresholds lists a threshold twice") }
        opt.thresholds = v
    }
    if let v = try o.int("queries-count", min: 1) { opt.queries = v }
    if let v = try o.int("solver-seeds", min: 1) { opt.solverSeeds = v }
    if let v = try o.int("astra-iterations", min: 1) { opt.astraIterations = v }
    if let v = try o.int("sni-iterations", min: 1) { opt.sniIterations = v }
    if let v = try numberList(o, "sni-rates", what: "positive numbers", { $0 > 0 }) { opt.sniRates = v }
    if let v = try o.double("damping") {
        guard v > 0 else { throw AstraError("subspace: --damping must be positive (got \(v))") }
        opt.damping = v
    }
    let ctx = try openContext(o, ws, comm)
    try establish(ctx)
    let r = try SubspaceStage.run(ctx, opt)
    guard comm.isRoot else { return }
    for b in r.curves {
        guard let last = b.curve.points.last else { continue }
        print("\(b.curve.method) \(b.label.padding(toLength: 14, withPad: " ", startingAt: 0)) dim \(b.dimension): "
              + String(format: "after %d iterations h %.4g, LDS %.3f", last.iteration, last.objective, last.lds))
    }
    print("(SNI α \(r.curves.first { $0.curve.method == "sni" }?.curve.learningRate ?? "—"), λ = \(r.damping); curves in \(ctx.workspace.root)/report/subspace.csv)")
}
