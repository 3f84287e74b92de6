import Foundation

/// `astra-dist report` (docs/commands.md, "The influence browser"): a static HTML site of a
/// workspace's results: `OUT/index.html` (the LDS table and bars, LDS against λ, the SVG
/// plots other commands wrote) and `OUT/report-files/` (one page per query with its most
/// helpful and harmful training examples for every result side by side, the images as PNG).
///
/// Reads only what other commands wrote: scores' metadata, `train_index.npy`, `top.json`
/// (without one, the same `ScoreStage.topQueries` ordering from the scores), `lds/*.json`.
/// Every rank checks and builds the site in memory; rank 0 writes it atomically (below).
public enum ReportStage {
    public struct Options: Sendable {
        /// Helpful and harmful examples shown per query and result.
        public var top = 5
        /// Query pages: the first K queries of the workspace's query set.
        public var queries = 10
        /// Output directory (default `W/report`).
        public var out: String?
        public init() {}
    }

    /// The name of the site's directory beside `index.html`.
    public static let filesDirectory = "report-files"

    /// Builds the site; rank 0 writes it. Returns the paths of `index.html` and the files directory.
    /// Throws one line when the workspace has no scores or a result's files disagree with it.
    public static func run(_ ctx: RunContext, _ o: Options) throws -> [String] {
        let ws = ctx.workspace, seed = ctx.seeds[0]
        let names = LDSStage.availableMethods(ctx)
        guard !names.isEmpty else {
            throw AstraError("report: \(ws.root) has no scores of seed \(seed); run `astra-dist score --workdir \(ws.root) --method ekfac --top 5` (or run) first")
        }
        let (net, _) = try ctx.loadModel(seed: seed)
        let shown = min(o.queries, ctx.data.queries.count)
        var results: [ReportPages.Result] = []
        for name in names { results.append(try result(ctx, name: name, seed: seed, network: net, k: o.top, queries: shown)) }
        let site = ReportPages(ctx: ctx, results: results, curves: DampingCurves.curves(results.compactMap(\.lds)), plots: try plots(ctx),
                               queries: shown, seed: seed).files()
        let out = o.out ?? ws.root + "/report"
        if ctx.comm.isRoot { try write(site, to: out) }
        ctx.comm.barrier()
        return [out + "/index.html", out + "/" + filesDirectory]
    }

    /// One result's LDS (if `lds` ran) and top-k lists of the first `queries` queries.
    static func result(_ ctx: RunContext, name: String, seed: UInt64, network: Network<Float>, k: Int, queries: Int) throws -> ReportPages.Result {
        let (scores, meta) = try ScoreFiles.read(ctx, method: name, seed: seed)
        let stem = ctx.workspace.scoresStem(name: name, model: ModelReference(seed: seed))
        let hint = "re-run `astra-dist score --workdir \(ctx.workspace.root) --method \(meta.method)`"
        let indexPath = ctx.workspace.scoresDirectory(name: name) + "/train_index.npy"
        if FileManager.default.fileExists(atPath: indexPath) {
            let index = try NPY.read(indexPath, hint: hint)
            guard index.dtype == .int64, index.values(Int64.self).map(Int.init) == ctx.data.train.globalIndex else {
                throw AstraError("report: \(indexPath) does not map the columns to this workspace's training rows; \(hint)")
            }
        }
        var top: [ScoreStage.TopQuery]
        var fromFile = false
        if let file = try? WorkDirectory.readJSON(ScoreStage.TopFile.self, from: stem + ".top.json", hint: hint),
           file.queries.count == meta.queries.count, file.queries.allSatisfy({ $0.helpful.count >= min(k, ctx.data.train.count) }) {
            top = file.queries; fromFile = true
        } else {
            let n = ctx.data.train.count
            top = ScoreStage.topQueries(Array(scores.prefix(queries * n)), network: network, queries: ctx.data.queries.subset(Array(0..<queries)),
                                        train: ctx.data.train, k: k, names: meta.queries)
        }
        top = Array(top.prefix(queries)).map { var t = $0; t.helpful = Array(t.helpful.prefix(k)); t.harmful = Array(t.harmful.prefix(k)); return t }
        for (i, t) in top.enumerated() {
            guard t.query == meta.queries[i], (t.helpful + t.harmful).allSatisfy({ $0.column < ctx.data.train.count && ctx.data.train.globalIndex[$0.column] == $0.row }) else {
                throw AstraError("report: \(stem).top.json does not match its scores (query \(i) or a column's row); \(hint) --top \(k)")
            }
        }
        let lds = try? WorkDirectory.readJSON(LDSStage.MethodResult.self, from: ctx.workspace.ldsPath(method: name), hint: "")
        return ReportPages.Result(name: name, method: meta.method, damping: meta.damping, lds: lds, top: top, fromTopFile: fromFile)
    }

    /// The SVG figures other commands wrote (`report/*.svg`: convergence, subspace;
    /// `curvature/*.svg`), by file name, each read whole.
    static func plots(_ ctx: RunContext) throws -> [(name: String, svg: [UInt8])] {
        var out: [(String, [UInt8])] = []
        for dir in ["report", "curvature"] {
            let path = ctx.workspace.root + "/" + dir
            let files = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { $0.hasSuffix(".svg") && !$0.contains(AtomicFile.temporaryMarker) }.sorted()
            for f in files { out.append((dir + "-" + f, try AtomicFile.read(path + "/" + f, hint: "re-run the command that wrote it"))) }
        }
        return out
    }

    /// Writes `files` (paths relative to `out`: `index.html` and `report-files/…`) so that a
    /// failure leaves the previous site whole: everything goes into a temporary directory
    /// first, which then replaces `report-files/` by two renames, and `index.html` is renamed
    /// into place last. Temporaries of dead writers from an earlier killed run are removed.
    static func write(_ files: [String: [UInt8]], to out: String) throws {
        let fm = FileManager.default
        do { try fm.createDirectory(atPath: out, withIntermediateDirectories: true) } catch {
            throw AstraError("report: cannot create \(out): \(error.localizedDescription); pass another --out")
        }
        for f in (try? fm.contentsOfDirectory(atPath: out)) ?? [] where f.hasPrefix(filesDirectory) {
            if let w = AtomicFile.temporaryWriter(of: f), w.host == AtomicFile.hostName, !WorkDirectory.processExists(w.pid) { try? fm.removeItem(atPath: out + "/" + f) }
        }
        let final = out + "/" + filesDirectory
        let staging = AtomicFile.temporaryPath(for: final), retired = AtomicFile.temporaryPath(for: final + ".old")
        try? fm.removeItem(atPath: staging)
        defer { try? fm.removeItem(atPath: staging) }
        for (relative, bytes) in files.sorted(by: { $0.key < $1.key }) where relative.hasPrefix(filesDirectory + "/") {
            let path = staging + relative.dropFirst(filesDirectory.count)
            try? fm.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try AtomicFile.write(bytes, to: path)
        }
        if fm.fileExists(atPath: final) {
            guard rename(final, retired) == 0 else { throw AstraError("report: cannot replace \(final) (\(String(cString: strerror(errno)))); check its permissions") }
        }
        guard rename(staging, final) == 0 else { throw AstraError("report: cannot move the new site into \(final) (\(String(cString: strerror(errno))))") }
        try AtomicFile.write(files["index.html"]!, to: out + "/index.html")
        try? fm.removeItem(atPath: retired)
    }
}
