import Foundation

/// `scores/NAME/seed-S.json`, beside the Q×N float32 `seed-S.npy`.
public struct ScoreMetadata: Codable, Sendable {
    /// "positive τ(m, q): training example m helps query q (lowers its loss-like measurement)".
    public var signConvention = "positive score: the training example helps the query (lowers its loss-like measurement f_q)"
    /// The solver method (`ekfac`, `astra`, …).
    public var method: String
    /// The result's name: the directory under `scores/` (`ResultName`).
    public var name: String?
    public var seed: UInt64
    public var damping: Double
    /// Every resolved solver option (numbers as numbers): with `fisher` and `factorsHash`
    /// what `run` compares before reusing these scores.
    public var options: SolverOptions?
    /// Fisher mode of the EK-FAC factors used (methods in the eigenbasis only).
    public var fisher: FisherMode?
    /// Content hash of the factors' manifest (`factors/seed-S/factors.json`, which holds every
    /// array's hash), so scores from refitted factors are told apart.
    public var factorsHash: String?
    /// Solver report (iterations run, learning rate, λ_max, final objective — the mean over
    /// queries `score` prints —, back-offs) and the settings, numbers as numbers (text in files
    /// from before: `ReportValue.number` reads both).
    public var solver: [String: ReportValue]
    /// How columns and queries are numbered (`ScoreMetadata.numbering`); nil in older files.
    public var numbering: String? = ScoreMetadata.numbering
    /// [iteration, h] pairs: the mean over all queries (query-weighted over groups and blocks).
    public var objectiveTrace: [[Double]]
    public var seconds: [String: Double]
    public var modelHash: String
    public var configHash: String
    public var dataHash: String
    /// Name of the query set (`default`: the workspace's own, which the ground truth uses).
    public var querySet: String
    /// Where each query comes from (`test:K` held-out row K, or `file:PATH#K`).
    public var queries: [String]
    public var queriesHash: String
    public var trainSize: Int
    /// true: the queries were measured without their targets (`score --untargeted`: the
    /// predicted class's margin, or the output g); absent for targeted measurements.
    public var untargeted: Bool?
}

extension ScoreMetadata {
    /// The one numbering every score file states.
    public static let numbering = "column j of the scores is training example j (training order); train_index.npy[j] is its row in the source data; queries are named test:K (row K of the source's held-out part) or file:PATH#K"
    /// The result name these scores are filed under.
    public var resultName: String { name ?? method }
    /// The options that shaped these scores (nil for files from before options were recorded).
    public var settings: [ResultName.Setting]? {
        options.map { ResultName.settings($0, fisher: fisher ?? .sampled) }
    }
}

public enum ScoreFiles {
    public static func directory(_ ws: WorkDirectory, method: String) -> String { ws.scoresDirectory(name: method) }

    /// File stem for a seed and query set: `seed-S` for the workspace's queries, `seed-S.NAME` otherwise.
    public static func stem(seed: UInt64, querySet: String) -> String { querySet == "default" ? "seed-\(seed)" : "seed-\(seed).\(querySet)" }

    /// Writes `STEM.npy`, `STEM.json` and the directory's `train_index.npy` (int64, N:
    /// column → source row); returns the paths written.
    @discardableResult
    public static func write(_ scores: [Float], queries q: Int, trainIndex: [Int], metadata: ScoreMetadata, ws: WorkDirectory) throws -> [String] {
        let base = ws.scoresStem(name: metadata.resultName, model: ModelReference(seed: metadata.seed), querySet: metadata.querySet)
        let index = ws.scoresDirectory(name: metadata.resultName) + "/train_index.npy"
        try NPY.write(scores, shape: [q, trainIndex.count], to: base + ".npy")
        try AtomicFile.write(NPY.encode(trainIndex.map(Int64.init), shape: [trainIndex.count], dtype: .int64), to: index)
        try WorkDirectory.writeJSON(metadata, to: base + ".json")
        return [base + ".npy", base + ".json", index]
    }

    /// Loads scores and metadata, checking shape and provenance against `ctx`.
    public static func read(_ ctx: RunContext, method: String, seed: UInt64, querySet: String = "default") throws -> ([Float], ScoreMetadata) {
        let base = ctx.workspace.scoresStem(name: method, model: ModelReference(seed: seed), querySet: querySet)
        let hint = "run `astra-dist score --workdir \(ctx.workspace.root) --method \(method)`"
        let meta = try WorkDirectory.readJSON(ScoreMetadata.self, from: base + ".json", hint: hint)
        let a = try NPY.read(base + ".npy", hint: hint)
        guard a.dtype == .float32, a.shape.count == 2, a.shape[1] == ctx.data.train.count, a.shape[0] == meta.queries.count else {
            throw AstraError("\(base).npy has shape \(a.shape), expected [\(meta.queries.count), \(ctx.data.train.count)] float32; \(hint)")
        }
        guard meta.configHash == ctx.config.hash, meta.dataHash == ctx.data.hash else {
            throw AstraError("\(base).json was computed on another configuration or data; \(hint)")
        }
        return (a.values(Float.self), meta)
    }

    /// Refuses to file a result under `name` if the scores already there were made with other
    /// options (any seed, any query set): one name, one meaning.
    /// - Returns: nothing; throws the line that says how to proceed.
    public static func checkName(_ ws: WorkDirectory, name: String, settings: [ResultName.Setting], derived: Bool) throws {
        let dir = ws.scoresDirectory(name: name)
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".json") && !$0.hasSuffix(".top.json") }.sorted()
        let fix = derived ? "move \(dir) aside or pass --name" : "drop --name or pick another"
        for f in files {
            guard let meta = try? WorkDirectory.readJSON(ScoreMetadata.self, from: dir + "/" + f, hint: ""), let stored = meta.settings else {
                throw AstraError("\(dir)/\(f) records no solver options (an older astra-dist or another file); \(fix)")
            }
            guard stored == settings else {
                throw AstraError("scores/\(name) holds \(ResultName.describeDifference(stored, from: settings)); this request has \(ResultName.describeDifference(settings, from: stored)): \(fix)")
            }
        }
    }
}
