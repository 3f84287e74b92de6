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

    /// What `run` computes, parsed and checked before anything is written.
    public struct Request: Sendable {
        public var methods: [SolverMethod]
        /// Solver options of each method (its defaults at `damping`).
        public var damping: Double
        public var fisher: FisherMode
        /// Ground-truth protocol (default: the configuration's M and R).
        public var masks: Int
        public var repeats: Int
        /// Also report the LDS of the scores averaged over the seeds.
        public var ensemble: Bool
        public init(methods: [SolverMethod], damping: Double, fisher: FisherMode, masks: Int, repeats: Int, ensemble: Bool) {
            self.methods = methods; self.damping = damping; self.fisher = fisher; self.masks = masks; self.repeats = repeats; self.ensemble = ensemble
        }
        /// The scoring request of `method`: its defaults at the requested damping and Fisher.
        public func scoring(_ method: SolverMethod) -> ScoreStage.Request {
            ScoreStage.Request(method: method, options: SolverOptions(method: method, damping: damping), queries: nil, groups: nil,
                               queryBlock: 128, top: 0, fisher: fisher)
        }
    }

    public static func run(_ ctx: RunContext, _ req: Request) throws -> [Row] {
        var t = now()
        try TrainStage.run(ctx)
        ctx.log(String(format: "run: train done (%.1f s)", now() - t))
        if req.methods.contains(where: \.usesEigenbasis) {
            t = now(); try FitStage.run(ctx, mode: req.fisher)
            ctx.log(String(format: "run: fit done (%.1f s)", now() - t))
        }
        var seconds: [String: Double] = [:], names: [String] = []
        for m in req.methods {
            let scoring = req.scoring(m), name = scoring.resultName(defaultDamping: ctx.config.damping)
            names.append(name)
            if valid(ctx, scoring, name: name) { ctx.log("run: scores/\(name) exist with these options, skipped"); continue }
            t = now()
            try ScoreStage.run(ctx, scoring)
            seconds[name] = now() - t
        }
        let written = (try? GroundTruthStage.load(ctx)) != nil ? try? GroundTruthStage.writtenProtocol(ctx) : nil
        if let written, written.masks == req.masks, written.repeats == req.repeats { ctx.log("run: ground truth exists, skipped") }
        else { try GroundTruthStage.run(ctx, masks: req.masks, repeats: req.repeats) }
        let results = try LDSStage.run(ctx, methods: names, ensemble: req.ensemble)
        return results.map { Row(method: $0.method, single: $0.single, ensemble: $0.ensemble, seconds: seconds[$0.method]) }
    }

    /// Scores of every seed exist under `name` for the workspace's queries and were made
    /// exactly as `scoring` asks (`ScoreStage.isFinished`).
    static func valid(_ ctx: RunContext, _ scoring: ScoreStage.Request, name: String) -> Bool {
        let scoring = scoring.method == .trak ? TRAKStage.resolved(scoring, ctx) : scoring, queries = ScoreStage.querySet(ctx, scoring)
        return ctx.seeds.allSatisfy { ScoreStage.isFinished(ctx, scoring, name: name, seed: $0, querySet: queries) }
    }

    public static func table(_ rows: [Row], ensembleSize: Int) -> String {
        func fmt(_ r: LDSResult?) -> String { r.map { String(format: "%.3f ± %.3f", $0.mean, $0.standardError) } ?? "—" }
        let width = max(12, (rows.map(\.method.count).max() ?? 0) + 2)
        var s = "method".padding(toLength: width, withPad: " ", startingAt: 0) + "LDS (1 model)    LDS (ensemble of \(ensembleSize))  seconds\n"
        for r in rows {
            s += r.method.padding(toLength: width, withPad: " ", startingAt: 0) + fmt(r.single).padding(toLength: 17, withPad: " ", startingAt: 0)
                + fmt(r.ensemble).padding(toLength: 23, withPad: " ", startingAt: 0) + (r.seconds.map { String(format: "%.1f", $0) } ?? "(done before)") + "\n"
        }
        return s + "(LDS: mean ± standard error over queries; scores: positive = the training example helps the query)"
    }
}
