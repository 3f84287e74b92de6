import AstraDist

/// `astra-dist report`: the static HTML influence browser of a workspace (`ReportStage`).
let reportCommand = Command(
    name: "report",
    summary: "A static HTML site of the results (LDS table and bars, damping and convergence plots, per query its most helpful and harmful training examples per result); writes DIR/report/index.html.",
    specs: commonOptions + [
        OptionSpec(name: "top", value: "K", help: "most helpful and most harmful examples shown per query and result (default 5)"),
        OptionSpec(name: "queries-count", value: "K", help: "query pages: the first K of the workspace's queries (default 10)"),
        OptionSpec(name: "out", value: "DIR", help: "output directory (default DIR/report; index.html and report-files/ go there)"),
    ]) { o, comm in
    let ws = try workspace(o, creates: false)
    var options = ReportStage.Options()
    if let v = try o.int("top", min: 1) { options.top = v }
    if let v = try o.int("queries-count", min: 1) { options.queries = v }
    if let out = o.string("out") {
        guard !out.isEmpty else { throw AstraError("report: --out is empty; pass a directory") }
        options.out = out
    }
    let ctx = try openContext(o, ws, comm)
    try establish(ctx)
    let written = try ReportStage.run(ctx, options)
    if comm.isRoot { print(written.map { "wrote " + $0 }.joined(separator: "\n")) }
}
