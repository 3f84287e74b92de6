import Foundation

/// `astra-dist lds` (spec §9): for every scores file, `Γ[j,q] = −Σ_{m∈S_j} τ(m,q)` against the
/// ground truth, Spearman per query, mean ± standard error; with ensembling the scores of all
/// available seeds are averaged first. Writes `lds/METHOD.json` and prints a table.
public enum LDSStage {
    public struct MethodResult: Codable, Sendable {
        public var method: String
        public var seeds: [UInt64]
        /// LDS of each seed's scores alone.
        public var perSeed: [String: LDSResult]
        /// The first seed's LDS (the single-model number).
        public var single: LDSResult
        /// LDS of the seeds' averaged scores (nil with one seed or without --ensemble).
        public var ensemble: LDSResult?
        /// M and R of the ground truth the LDS was measured against.
        public var subsets: Int
        public var repeats: Int
        public var signConvention: String
        /// λ of the scores (`seed-S.json`'s `damping`; SOURCE: the implied one); nil in older files.
        public var damping: Double?
    }

    /// Result names with scores in the workspace.
    public static func availableMethods(_ ctx: RunContext) -> [String] {
        let dir = ctx.workspace.root + "/scores"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.filter { FileManager.default.fileExists(atPath: "\(dir)/\($0)/seed-\(ctx.seeds[0]).json") }.sorted()
    }

    public static func run(_ ctx: RunContext, methods requested: [String]?, ensemble: Bool) throws -> [MethodResult] {
        let methods = requested ?? availableMethods(ctx)
        guard !methods.isEmpty else { throw AstraError("lds: no scores in \(ctx.workspace.root)/scores; run `astra-dist score` first") }
        let (gt, masks) = try GroundTruthStage.load(ctx)
        let sweep = try GroundTruthStage.writtenProtocol(ctx)
        let q = ctx.data.queries.count
        var results: [MethodResult] = []
        for method in methods {
            var perSeed: [String: LDSResult] = [:], all: [[Float]] = [], seeds: [UInt64] = []
            var convention = "", trak = false, damping: Double? = nil, kind = ""
            for seed in ctx.seeds {
                let path = ctx.workspace.scoresStem(name: method, model: ModelReference(seed: seed)) + ".npy"
                if seed != ctx.seeds[0] && !FileManager.default.fileExists(atPath: path) { continue }
                let (scores, meta) = try ScoreFiles.read(ctx, method: method, seed: seed)
                guard meta.querySet == "default", meta.queriesHash == queryHash(ctx) else {
                    throw AstraError("\(path) scores query set '\(meta.querySet)', not the workspace's queries the ground truth measures; score the default queries")
                }
                perSeed["\(seed)"] = try LDS.evaluate(masks: masks, groundTruth: gt, scores: scores, queries: q)
                all.append(scores); seeds.append(seed); convention = meta.signConvention; trak = meta.method == SolverMethod.trak.rawValue
                damping = damping ?? meta.damping; kind = meta.method
            }
            // TRAK ensembles by its own rule (kernels and weights averaged apart), every other method by the mean score.
            let ens = ensemble && all.count > 1
                ? try LDS.evaluate(masks: masks, groundTruth: gt, scores: trak ? TRAKStage.ensembleScores(ctx, name: method, seeds: seeds) : LDS.averageScores(all), queries: q)
                : nil
            let r = MethodResult(method: method, seeds: seeds, perSeed: perSeed, single: perSeed["\(seeds[0])"]!, ensemble: ens,
                                 subsets: sweep.masks, repeats: sweep.repeats, signConvention: convention,
                                 damping: SolverMethod(rawValue: kind)?.solvesIHVP == true ? damping : nil)
            if ctx.comm.isRoot { try WorkDirectory.writeJSON(r, to: ctx.workspace.ldsPath(method: method)) }
            results.append(r)
        }
        let curves = DampingCurves.curves(results)
        if ctx.comm.isRoot, !curves.isEmpty { try AtomicFile.write(DampingCurves.figure(curves).render(width: 720), to: dampingFigurePath(ctx.workspace)) }
        return results
    }

    /// `lds/damping.svg`: LDS against λ per result family (`DampingCurves`), written by `lds`
    /// when some family has two or more dampings.
    public static func dampingFigurePath(_ ws: WorkDirectory) -> String { ws.root + "/lds/damping.svg" }

    /// Hash of the workspace's query set (global indices and arrays).
    public static func queryHash(_ ctx: RunContext) -> String {
        var h = ContentHash()
        h.update(ctx.data.queries.globalIndex.map { Int64($0) }); h.update(ctx.data.queries.inputs); h.update(ctx.data.queries.targets)
        return h.hex
    }

    public static func table(_ results: [MethodResult]) -> String {
        func fmt(_ r: LDSResult?) -> String { r.map { String(format: "%.3f ± %.3f", $0.mean, $0.standardError) } ?? "—" }
        let width = max(14, (results.map(\.method.count).max() ?? 0) + 2)
        var s = "method".padding(toLength: width, withPad: " ", startingAt: 0) + "seeds  LDS (1 model)    LDS (ensemble)\n"
        for r in results {
            s += r.method.padding(toLength: width, withPad: " ", startingAt: 0) + "\(r.seeds.count)".padding(toLength: 7, withPad: " ", startingAt: 0)
                + fmt(r.single).padding(toLength: 17, withPad: " ", startingAt: 0) + fmt(r.ensemble) + "\n"
        }
        return s + "(mean ± standard error over queries; positive scores mean the training example helps the query)"
    }
}
