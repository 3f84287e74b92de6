import Foundation

/// `scores/METHOD/seed-S.json`, beside the Q×N float32 `seed-S.npy`.
public struct ScoreMetadata: Codable, Sendable {
    /// "positive τ(m, q): training example m helps query q (lowers its loss-like measurement)".
    public var signConvention = "positive score: the training example helps the query (lowers its loss-like measurement f_q)"
    public var method: String
    public var seed: UInt64
    public var damping: Double
    /// Solver settings and its report (iterations, learning rate, final objective).
    public var solver: [String: String]
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
}

public enum ScoreFiles {
    public static func directory(_ ws: WorkDirectory, method: String) -> String { ws.root + "/scores/\(method)" }

    /// File stem for a seed and query set: `seed-S` for the workspace's queries, `seed-S.NAME` otherwise.
    public static func stem(seed: UInt64, querySet: String) -> String { querySet == "default" ? "seed-\(seed)" : "seed-\(seed).\(querySet)" }

    public static func write(_ scores: [Float], queries q: Int, trainSize n: Int, metadata: ScoreMetadata, ws: WorkDirectory) throws {
        let base = directory(ws, method: metadata.method) + "/" + stem(seed: metadata.seed, querySet: metadata.querySet)
        try NPY.write(scores, shape: [q, n], to: base + ".npy")
        try WorkDirectory.writeJSON(metadata, to: base + ".json")
    }

    /// Loads scores and metadata, checking shape and provenance against `ctx`.
    public static func read(_ ctx: RunContext, method: String, seed: UInt64, querySet: String = "default") throws -> ([Float], ScoreMetadata) {
        let base = directory(ctx.workspace, method: method) + "/" + stem(seed: seed, querySet: querySet)
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
}
