import Foundation

/// `bench score --method source,astra-source,tracin,trak` (issue 17, "Speed"): these methods'
/// parts, timed in the process that also times one `fit`, one `ekfac` scoring and one `astra`
/// solve of the same model, so the targets' ratios compare like with like on a loaded machine.
/// Every part runs the code `score` runs (`SourceStage.prepare`, `FitRunner.fit`,
/// `SourceScoring.scores`, `TRAK.scores`, `TracInStage.load`, `TracIn.scores`); nothing is
/// written under `scores/`.
extension Benchmark {
    /// Wall and thread CPU seconds of one part, each the slowest rank's.
    public struct Timing: Sendable {
        public var wall = 0.0, cpu = 0.0
        static func + (a: Timing, b: Timing) -> Timing { Timing(wall: a.wall + b.wall, cpu: a.cpu + b.cpu) }
    }

    /// One speed target of issue 17: a ratio of two parts' seconds (`unit` "ratio") or a part's
    /// seconds (`unit` "seconds") against `limit`. `met` is judged on CPU seconds, the steadier
    /// measure on a shared machine; `wall` is the same quantity in wall seconds.
    public struct Target: Codable, Sendable {
        public var name: String
        public var unit: String
        public var cpu: Double
        public var wall: Double
        public var limit: Double
        public var met: Bool

        init(_ name: String, _ part: Timing, over base: Timing, limit: Double) {
            self.name = name; unit = "ratio"; cpu = part.cpu / base.cpu; wall = part.wall / base.wall; self.limit = limit; met = cpu <= limit
        }
        init(_ name: String, seconds part: Timing, limit: Double) {
            self.name = name; unit = "seconds"; cpu = part.cpu; wall = part.wall; self.limit = limit; met = cpu <= limit
        }
    }

    /// Runs `body` between a barrier and the slowest rank's clocks (collective over `comm`).
    static func measured<R>(_ comm: Communicator, _ body: () throws -> R) rethrows -> (R, Timing) {
        comm.barrier()
        let t = Stopwatch(), r = try body()
        let cpu = comm.allreduceMax(threadCPUSeconds() - t.cpu)
        return (r, Timing(wall: comm.allreduceMax(now() - t.wall), cpu: cpu))
    }

    /// The parts of `methods`' source, astra-source, tracin and trak for the first model and
    /// their targets: segment fits against one fit of the final model (≤ 3×); SOURCE scoring
    /// (query gradients + `SourceScoring`) against `ekfacScoring` (≤ 3.5×); each astra-source
    /// segment solve against `astraSolve` (≤ 1.1×); TRAK's features, Gram, solve and kernel
    /// (≤ 60 s, the target's k = 4,096 on one rank). `v` and `groupComm` are this rank's query
    /// group, as `score` solves them. Collective; segment models and factors missing from the
    /// workspace are made as `score` makes them (untimed), then every fit is timed afresh.
    /// Precondition: `ekfacScoring` and `queryGradients` measured; `astraSolve` if astra-source.
    static func methodParts(_ ctx: RunContext, methods: [SolverMethod], network net: Network<Float>, model: ModelDescription,
                            queries v: QueryGradients<Float>, groupComm gcomm: Communicator, group: Int, fisher: FisherMode,
                            options: (SolverMethod) -> SolverOptions, queryGradients: Timing, ekfacScoring: Timing,
                            astraSolve: Timing?) throws -> ([ScorePart], [Target]) {
        let seed = ctx.seeds[0], comm = ctx.comm, train = ctx.data.train
        let shard = blockRange(count: train.count, rank: comm.rank, size: comm.size)
        var parts: [ScorePart] = [], targets: [Target] = []
        func add(_ name: String, _ t: Timing) { parts.append(ScorePart(name: name, seconds: t.wall, gflop: nil, gflops: nil, cpuSeconds: t.cpu)) }
        // A stage's seconds (`Stopwatch` keys), slowest rank; sorted: the same collectives on every rank.
        func slowest(_ s: [String: Double]) -> [String: Double] {
            Dictionary(uniqueKeysWithValues: s.keys.sorted().map { ($0, comm.allreduceMax(s[$0]!)) })
        }
        func timing(_ s: [String: Double], _ key: String) -> Timing { Timing(wall: s[key] ?? 0, cpu: s[Stopwatch.cpuKey(key)] ?? 0) }

        let sources = methods.filter(\.isSource)
        if let first = sources.first {
            let prepared = try SourceStage.prepare(ctx, seed: seed, model: model, options: options(first), fisher: fisher)
            let count = prepared.segments.count
            // `fit`'s computation (FitStage.fitOne without its load check and write), so existing factors do not skip it.
            func fit(_ network: Network<Float>) throws -> Timing {
                try measured(comm) { _ = try FitRunner.fit(network: network, data: train, shard: shard, comm: comm, mode: fisher, seed: seed, batchSize: 256) }.1
            }
            let final = try fit(net)
            add("fit of the final model (FitRunner.fit, as `fit`)", final)
            var fits = Timing()
            for (l, segment) in prepared.segments.enumerated() {
                let t = try fit(segment.network)
                add("source: fit of segment \(l + 1)", t)
                fits = fits + t
            }
            targets.append(Target("source: \(count) segment fits / one fit", fits, over: final, limit: 3))
            let rows = blockRange(count: train.count, rank: gcomm.rank, size: gcomm.size)
            for m in sources {
                var seconds: [String: Double] = [:]
                let (_, t) = try measured(comm) {
                    try SourceScoring.scores(v, segments: prepared.segments, method: m, options: options(m), train: train, rows: rows, comm: gcomm,
                                             seconds: &seconds, progress: group == 0 ? { ctx.log("bench: " + $0) } : nil)
                }
                let s = slowest(seconds)
                add("\(m.rawValue): scoring of \(count) segments (after the query gradients)", t)
                add("  of which solves and rotations", timing(s, "solve"))
                add("  of which contractions", timing(s, "contraction"))
                if m == .source {
                    targets.append(Target("source: scoring (query gradients + segments) / one ekfac scoring (query gradients + solve + contraction)",
                                          queryGradients + t, over: ekfacScoring, limit: 3.5))
                } else if let astra = astraSolve {
                    for l in 1...count {
                        let solve = timing(s, "solve segment \(l)")
                        add("  of which the astra solve of segment \(l) (\(options(m).iterations) iterations)", solve)
                        targets.append(Target("astra-source: segment \(l) solve / one astra solve of the final model", solve, over: astra, limit: 1.1))
                    }
                }
            }
        }
        if methods.contains(.trak) {
            let k = TRAKStage.defaultDimension(ctx)
            let (part, t) = try measured(comm) {
                try TRAK.scores(network: net, train: train, rows: shard, queries: ctx.data.queries,
                                options: TRAK.Options(projection: .kronecker(seed: seed, dimension: k)), comm: comm)
            }
            let s = slowest(part.seconds)
            for (key, what) in [("features", "features Φ, ψ"), ("gram", "ΦᵀΦ"), ("solve", "Cholesky solve"), ("scores", "kernel")] {
                add("trak: \(what)", timing(s, key))
            }
            add("trak: total, k = \(k)", t)
            targets.append(Target("trak: features + Gram + solve + kernel, k = \(k), \(comm.size) rank(s)", seconds: t, limit: 60))
        }
        if methods.contains(.tracin) {
            let ((checkpoints, steps), load) = try measured(comm) { try TracInStage.load(ctx, seed: seed, final: net, model: model) }
            add("tracin: loading \(steps.count) checkpoints", load)
            let (_, t) = measured(comm) { TracIn.scores(checkpoints: checkpoints, queries: ctx.data.queries, train: train, rows: shard) }
            add("tracin: contraction over \(steps.count) checkpoints", t)
        }
        return (parts, targets)
    }
}
