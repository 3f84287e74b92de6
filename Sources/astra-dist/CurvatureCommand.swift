import AstraDist
import Foundation

/// Options of `astra-dist curvature` (docs/commands.md).
let curvatureSpecs: [OptionSpec] = [
    OptionSpec(name: "workdir", value: "DIR", help: "experiment directory, shared by all ranks (required); points go to DIR/curvature/SWEEP-VALUE/"),
    OptionSpec(name: "sweep", value: "NAME", help: "epochs (10,100,1000 at depth 8 width 16), depth (1,4,8 at width 16) or width (32,64,128 at depth 1) (required)"),
    OptionSpec(name: "values", value: "LIST", help: "run only these values of the sweep, e.g. 10,100"),
    OptionSpec(name: "masks", value: "M", help: "ground truth subsets (default 100, the seed's)"),
    OptionSpec(name: "repeats", value: "R", help: "retrainings per subset (default 100, the seed's)"),
    OptionSpec(name: "damping", value: "X", help: "second damping λ beside the seed's 1e-4 (default: the digits preset's 0.0073)"),
    OptionSpec(name: "bootstrap", value: "B", help: "bootstrap resamples of the subsets for the 95% interval (default 1000)"),
    OptionSpec(name: "estimate", value: nil, help: "train each point's model, print the measured ground-truth cost, stop"),
    OptionSpec(name: "threads", value: "T", help: "BLAS threads per rank (default 1)"),
]

func runCurvature(_ o: Options, _ comm: Communicator) throws {
    guard let dir = o.string("workdir") else { throw AstraError("curvature: --workdir DIR is required") }
    guard let name = o.string("sweep") else { throw AstraError("curvature: --sweep is required (epochs, depth or width)") }
    guard let sweep = CurvatureStudy.Sweep(rawValue: name) else { throw AstraError("curvature: --sweep expects epochs, depth or width, got '\(name)'") }
    var opt = CurvatureStudy.Options(sweep: sweep)
    if let v = try o.intList("values") {
        guard v.allSatisfy({ $0 > 0 }) else { throw AstraError("curvature: --values must be positive") }
        opt.values = v
    }
    if let v = try o.int("masks", min: 2) { opt.masks = v }
    if let v = try o.int("repeats", min: 1) { opt.repeats = v }
    if let v = try o.double("damping") {
        guard v > 0 else { throw AstraError("curvature: --damping must be positive (got \(v))") }
        opt.damping = v
    }
    if let v = try o.int("bootstrap", min: 2) { opt.bootstrap = v }
    if let v = try o.int("threads", min: 1) { opt.threads = v }
    opt.estimateOnly = o.flag("estimate")
    let digits = DataRoots.discover(executable: CommandLine.arguments[0]).digits
    let log: (String) -> Void = { m in if comm.isRoot { FileHandle.standardError.write(Data((m + "\n").utf8)) } }
    let points = try CurvatureStudy.run(root: dir, options: opt, comm: comm, digits: digits, log: log)
    guard comm.isRoot, !points.isEmpty else { return }
    print("matrix          " + points.map { "\(sweep.rawValue) \($0.value)".padding(toLength: 28, withPad: " ", startingAt: 0) }.joined())
    for m in LadderMatrix.allCases {
        var line = m.rawValue.padding(toLength: 16, withPad: " ", startingAt: 0)
        for p in points {
            guard let e = p.ladder.entry(m), let i = e.influence.first(where: { $0.damping == CurvatureLadderRun.seedDamping && $0.rule == .clipped }) else { continue }
            line += String(format: "err %.3f LDS %.3f±%.3f", e.errorToHessian, i.lds.mean, i.lds.standardError).padding(toLength: 28, withPad: " ", startingAt: 0)
        }
        print(line)
    }
    print("(err = ‖M − H‖_F/‖H‖_F; LDS at λ = 1e-4, H's negative eigenvalues clipped, ± s.e. over queries; tables in \(dir)/curvature/)")
}
