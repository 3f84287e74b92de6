import Foundation

/// `astra-dist run`: train → fit → score (each method) → groundtruth → lds, skipping every
/// stage whose valid output exists (hash-checked), so a re-run after a crash continues.
public enum RunStage {
    public struct Row: Codable, Sendable {
        public var method: String
        public var single: LDSResult
        public var ensemble: LDSResult?
        /// Wall seconds of this method's scoring (all seeds), or nil if it was skipped as done.
        public var seconds: Double?
    }

    public static func run(_ ctx: RunContext, methods: [SolverMethod], options: (SolverMethod) -> SolverOptions, fisher: FisherMode) throws -> [Row] {
        var t = now()
        try TrainStage.run(ctx)
        ctx.log(String(format: "run: train done (%.1f s)", now() - t))
        if methods.contains(where: { [.kfac, .ekfac, .astra].contains($0) }) {
            t = now(); try FitStage.run(ctx, mode: fisher)
            ctx.log(String(format: "run: fit done (%.1f s)", now() - t))
        }
        var seconds: [String: Double] = [:]
        for m in methods {
            let opts = options(m)
            if valid(ctx, method: m, options: opts) { ctx.log("run: \(m.rawValue) scores exist, skipped"); continue }
            t = now()
            try ScoreStage.run(ctx, ScoreStage.Request(method: m, options: opts, queries: nil, groups: nil, queryBlock: 128, top: 0))
            seconds[m.rawValue] = now() - t
        }
        let gtDone = (try? GroundTruthStage.load(ctx)) != nil
        if gtDone { ctx.log("run: ground truth exists, skipped") } else { try GroundTruthStage.run(ctx) }
        let results = try LDSStage.run(ctx, methods: methods.map(\.rawValue), ensemble: ctx.seeds.count > 1)
        return results.map { Row(method: $0.method, single: $0.single, ensemble: $0.ensemble, seconds: seconds[$0.method]) }
    }

    /// Scores of every seed exist for this configuration, model and solver settings.
    static func valid(_ ctx: RunContext, method: SolverMethod, options: SolverOptions) -> Bool {
        for seed in ctx.seeds {
            guard let (_, meta) = try? ScoreFiles.read(ctx, method: method.rawValue, seed: seed),
                  let (_, model) = try? ctx.loadModel(seed: seed),
                  meta.modelHash == model.parametersHash, meta.damping == options.damping,
                  meta.solver["seed"] == "\(options.seed)", meta.solver["batchSize"] == "\(options.batchSize)" else { return false }
        }
        return true
    }

    public static func table(_ rows: [Row], ensembleSize: Int) -> String {
        func fmt(_ r: LDSResult?) -> String { r.map { String(format: "%.3f ± %.3f", $0.mean, $0.standardError) } ?? "—" }
        var s = "method      LDS (1 model)    LDS (ensemble of \(ensembleSize))  seconds\n"
        for r in rows {
            s += r.method.padding(toLength: 12, withPad: " ", startingAt: 0) + fmt(r.single).padding(toLength: 17, withPad: " ", startingAt: 0)
                + fmt(r.ensemble).padding(toLength: 23, withPad: " ", startingAt: 0) + (r.seconds.map { String(format: "%.1f", $0) } ?? "(done before)") + "\n"
        }
        return s + "(LDS: mean ± standard error over queries; scores: positive = the training example helps the query)"
    }
}
