import Foundation

/// `astra-dist score` (spec §6): query gradients, one block iHVP solve, and the training set
/// scored against the solved block, gathered to rank 0 as a Q×N float32 matrix.
///
/// Ranks form a 2-D grid: `groups` query groups × (K/groups) batch slices. A group solves
/// and scores its share of the queries with its own sub-communicator (data-parallel over
/// mini-batch slices and training shards); groups never talk until the final gather. Every
/// random choice is keyed by seed and iteration, never by rank or group, so the scores do
/// not depend on K or on the grouping (to floating-point reordering).
public enum ScoreStage {
    public struct Request: Sendable {
        public var method: SolverMethod
        public var options: SolverOptions
        /// nil: the workspace's queries.
        public var queries: QuerySet?
        /// Query groups (nil: the cost-model default).
        public var groups: Int?
        /// Largest number of queries solved at once (memory knob).
        public var queryBlock: Int
        /// Also write the K most helpful and most harmful training examples per query.
        public var top: Int
        /// Output directory under `scores/` (default: `ResultName.derived`).
        public var name: String?
        /// Fisher mode the factors must have (methods in the eigenbasis).
        public var fisher: FisherMode
        /// CSV file for the objective trace (query-weighted mean over groups and blocks).
        public var tracePath: String?
        public init(method: SolverMethod, options: SolverOptions, queries: QuerySet?, groups: Int?, queryBlock: Int, top: Int,
                    name: String? = nil, tracePath: String? = nil, fisher: FisherMode = .sampled) {
            self.method = method; self.options = options; self.queries = queries; self.groups = groups; self.queryBlock = queryBlock
            self.top = top; self.name = name; self.tracePath = tracePath; self.fisher = fisher
        }

        /// The options that shape these scores (`ResultName.settings`).
        public var settings: [ResultName.Setting] { ResultName.settings(options, fisher: fisher) }
        /// Where the scores go: `--name`, else the name derived from the options.
        public func resultName(defaultDamping: Double) -> String {
            name ?? ResultName.derived(options, fisher: fisher, defaultDamping: defaultDamping)
        }
    }

    /// Advice for non-finite scores: a direct solve has no step to lower.
    public static func divergenceAdvice(_ method: SolverMethod) -> String {
        method.isIterative ? "lower --lr-scale (or --solver-lr) or raise --damping" : "raise --damping (the damped curvature is near singular)"
    }

    /// A user's query set: rows of the held-out split, or a data file.
    public struct QuerySet: Sendable {
        public var name: String
        public var data: Dataset
        public var sources: [String]
        /// Measured without targets (`--untargeted`, `Measurement.untargeted`).
        public var untargeted = false
        public init(name: String, data: Dataset, sources: [String], untargeted: Bool = false) {
            self.name = name; self.data = data; self.sources = sources; self.untargeted = untargeted
        }
        /// Hash of the queries' rows, inputs, targets and measurement (`queriesHash` in the scores).
        public var contentHash: String {
            var h = ContentHash()
            h.update(data.globalIndex.map { Int64($0) }); h.update(data.inputs); h.update(data.targets)
            if untargeted { h.update("untargeted") }
            return h.hex
        }
    }

    /// Default grouping: the most groups that divides K and leaves every group at least 16
    /// queries. Per rank, compute is the same for any grouping (6·B·Q·P/K per iteration),
    /// while the allreduce shrinks from Q·P to Q·P/G values and vanishes at G = K; fewer
    /// queries per group make thinner GEMMs, hence the floor.
    public static func defaultGroups(ranks: Int, queries: Int) -> Int {
        (1...ranks).filter { ranks % $0 == 0 && queries / $0 >= 16 }.max() ?? 1
    }

    public static func run(_ ctx: RunContext, _ req: Request) throws { try run(ctx, sweep: [req]) }

    /// Scores `sweep`, requests of one method that differ only in damping (`--damping LIST`),
    /// each filed under its own name. The direct EK-FAC-family methods share the factors and
    /// one rotation of each query block (`DampingSweep`); every other method runs once per λ.
    /// Seeds whose scores are finished (`isFinished`) are skipped.
    public static func run(_ ctx: RunContext, sweep: [Request]) throws {
        guard let first = sweep.first else { return }
        precondition(sweep.allSatisfy { $0.method == first.method }, "ScoreStage.run: a sweep is of one method")
        if sweep.count > 1 && !DampingSweep.sharesRotation(first.method, first.options) { for r in sweep { try run(ctx, r) }; return }
        let sweep = first.method == .trak ? sweep.map { TRAKStage.resolved($0, ctx) } : sweep, req = sweep[0]
        let ctx = try unfinished(ctx, sweep)
        guard !ctx.seeds.isEmpty else { return }
        if req.method == .tracin { return try TracInStage.run(ctx, req) }
        if req.method == .trak { return try TRAKStage.run(ctx, req) }
        let comm = ctx.comm
        let begun = try sweep.map { try begin(ctx, $0) }
        let querySet = begun[0].0
        let q = querySet.data.count, n = ctx.data.train.count
        let groups = req.groups ?? defaultGroups(ranks: comm.size, queries: q)
        guard groups >= 1, comm.size % groups == 0, groups <= max(q, 1) else {
            throw AstraError("score: --query-groups \(groups) must divide the \(comm.size) ranks and not exceed the \(q) queries")
        }
        let perGroup = comm.size / groups, group = comm.rank / perGroup
        let gcomm = groups == 1 ? comm : comm.split(color: group, key: comm.rank)
        let myQueries = blockRange(count: q, rank: group, size: groups)
        let shard = blockRange(count: n, rank: gcomm.rank, size: gcomm.size)

        for seed in ctx.seeds {
            let (net, model) = try ctx.loadModel(seed: seed)
            let source = req.method.isSource ? try SourceStage.prepare(ctx, seed: seed, model: model, options: req.options, fisher: req.fisher) : nil
            let ekfac = req.method.usesEigenbasis && source == nil ? try FitStage.load(ctx, seed: seed, model: model, mode: req.fisher) : nil
            let dampings = sweep.count > 1 ? " at \(sweep.count) dampings (one rotation)" : ""
            ctx.log("score: \(req.method.rawValue), seed \(seed): \(q) queries × \(n) training examples on \(comm.size) rank(s) in \(groups) query group(s)\(dampings)")
            var seconds: [String: Double] = ["queryGradients": 0, "solve": 0, "contraction": 0]
            var locals = [[Float]](repeating: [], count: sweep.count), reports = [[SolverReport]](repeating: [], count: sweep.count)
            var blockStart = myQueries.lowerBound
            let stateDirectory = solverStateDirectory(ctx, req, seed: seed, querySet: querySet)
            while blockStart < myQueries.upperBound {
                let block = blockStart..<min(blockStart + req.queryBlock, myQueries.upperBound)
                blockStart = block.upperBound
                var t = now()
                let v = net.measurementGradients(queries: querySet.data.subset(Array(block)), untargeted: querySet.untargeted)
                seconds["queryGradients"]! += now() - t
                let contraction = ScoreContraction(network: net, queries: block.count, featureCount: ctx.data.train.featureCount,
                                                   targetWidth: ctx.data.train.targetWidth)
                t = now()
                if sweep.count > 1 {
                    try DampingSweep.solve(v, ekfac: ekfac, method: req.method, dampings: sweep.map(\.options.damping)) { i, x, report in
                        seconds["solve"]! += now() - t
                        t = now()
                        locals[i] += contraction.scores(x, train: ctx.data.train, rows: shard)
                        seconds["contraction"]! += now() - t
                        reports[i].append(report)
                        t = now()
                    }
                    continue
                }
                let checkpoint = SolverCheckpoint(path: stateDirectory + "/block-\(block.lowerBound)-\(block.upperBound).bin",
                                                  provenance: ["data": ctx.data.hash, "config": ctx.config.hash, "querySet": querySet.name,
                                                               "queryBlock": "\(block.lowerBound)-\(block.upperBound)"])
                if let source {
                    let (tau, r) = try source.scores(v, req, train: ctx.data.train, rows: shard, comm: gcomm, seconds: &seconds,
                                                     progress: group == 0 ? { ctx.log("score: " + $0) } : nil, checkpoint: checkpoint)
                    locals[0] += tau; reports[0] += r
                    continue
                }
                let (x, report) = try IHVPSolver.solve(v, network: net, train: ctx.data.train, ekfac: ekfac,
                                                       options: req.options, comm: gcomm, progress: group == 0 ? { ctx.log("score: " + $0) } : nil,
                                                       checkpoint: checkpoint)
                seconds["solve"]! += now() - t
                reports[0].append(report)
                t = now()
                locals[0] += contraction.scores(x, train: ctx.data.train, rows: shard)
                seconds["contraction"]! += now() - t
            }
            // Sorted: dictionary order differs between processes, collectives must not.
            for k in seconds.keys.sorted() { seconds[k] = comm.allreduceMax(seconds[k]!) }
            for (i, r) in sweep.enumerated() {
                try finish(ctx, r, name: begun[i].1, seed: seed, model: model, network: net, querySet: querySet, local: locals[i], reports: reports[i],
                           seconds: seconds, source: source, rows: myQueries, columns: shard, groupComm: gcomm)
            }
            // The scores are written: the solver states (and any temp file of a killed save) are spent.
            if comm.isRoot { try? FileManager.default.removeItem(atPath: stateDirectory) }
            comm.barrier()
        }
    }

    /// Gathers one result's scores of a seed (collective) and, on rank 0, writes them with
    /// their metadata, the trace and top.json, and prints what it wrote.
    static func finish(_ ctx: RunContext, _ req: Request, name: String, seed: UInt64, model: ModelDescription, network net: Network<Float>,
                       querySet: QuerySet, local: [Float], reports: [SolverReport], seconds: [String: Double], source: SourceStage.Prepared?,
                       rows myQueries: Range<Int>, columns shard: Range<Int>, groupComm gcomm: Communicator) throws {
        let comm = ctx.comm
        // `local` is (this group's queries × this rank's shard), row-major: blocks were appended in query order.
        let gathered = gatherMatrix(local, rows: myQueries, columns: shard, shape: (querySet.data.count, ctx.data.train.count), comm: comm)
        // One copy of each group's reports (its batch-slice ranks hold the same ones).
        let reportJSON = try JSONEncoder().encode(gcomm.rank == 0 ? reports : [])
        let allReports = comm.gatherv(Array(reportJSON), root: 0)
        guard let scores = gathered, let allReports else { return }
        let groupReports = try allReports.map { try JSONDecoder().decode([SolverReport].self, from: Data($0)) }.flatMap { $0 }
        var meta = metadata(ctx, req, seed: seed, model: model, querySet: querySet, reports: groupReports, seconds: seconds)
        meta.name = name
        if req.method.usesEigenbasis { meta.fisher = req.fisher; meta.factorsHash = try source?.factorsHash ?? factorsHash(ctx, seed: seed) }
        source?.annotate(&meta, statedDamping: ctx.config.damping)
        var written = try write(scores, ctx, req, meta: meta, network: net, queries: querySet.data,
                                advice: "the solve diverged; " + divergenceAdvice(req.method))
        if let path = req.tracePath {
            let trace = SolverReport.meanTrace(groupReports)
            try AtomicFile.write("iteration,objective,seconds\n" + trace.map { "\($0.iteration),\($0.objective),\($0.seconds)" }.joined(separator: "\n") + "\n", to: path)
            written.append(path)
        }
        if let last = meta.solver["finalObjective"]?.number { ctx.log("score: final objective h = \(last) (the mean over queries, as recorded in the .json)") }
        report(written)
        ctx.log(String(format: "score: seed %llu done (%@): query gradients %.2f s, solve %.2f s, contraction %.2f s", seed, name,
                       seconds["queryGradients"]!, seconds["solve"]!, seconds["contraction"]!))
    }

    /// What every method's scoring starts with: the query set (the workspace's unless
    /// `req.queries`), the result's name, checked against what is filed under it, and the
    /// BLAS thread count.
    static func begin(_ ctx: RunContext, _ req: Request) throws -> (QuerySet, String) {
        let querySet = querySet(ctx, req)
        setBLASThreads(ctx.threads)
        let name = req.resultName(defaultDamping: ctx.config.damping)
        try ScoreFiles.checkName(ctx.workspace, name: name, settings: req.settings, derived: req.name == nil)
        return (querySet, name)
    }

    /// The queries `req` scores: its own set, else the workspace's (`default`).
    static func querySet(_ ctx: RunContext, _ req: Request) -> QuerySet {
        req.queries ?? QuerySet(name: "default", data: ctx.data.queries, sources: ctx.data.queries.globalIndex.map { "test:\($0)" })
    }

    /// Gathers every rank's piece (`rows` × `columns`, row-major) of a `shape` matrix to rank 0
    /// and places it: the whole matrix on rank 0, nil elsewhere. Collective.
    static func gatherMatrix(_ local: [Float], rows: Range<Int>, columns: Range<Int>, shape: (rows: Int, columns: Int), comm: Communicator) -> [Float]? {
        precondition(local.count == rows.count * columns.count, "gatherMatrix: \(local.count) values for \(rows.count)×\(columns.count)")
        let header = [Int64(rows.lowerBound), Int64(rows.count), Int64(columns.lowerBound), Int64(columns.count)]
        let bytes = header.withUnsafeBytes { Array($0) } + local.withUnsafeBytes { Array($0) }
        guard let pieces = comm.gatherv(bytes, root: 0) else { return nil }
        let n = shape.columns
        var out = [Float](repeating: 0, count: shape.rows * n)
        for p in pieces {
            let h = p.withUnsafeBytes { Array($0.bindMemory(to: Int64.self).prefix(4)) }
            let q0 = Int(h[0]), qc = Int(h[1]), m0 = Int(h[2]), mc = Int(h[3])
            p.withUnsafeBytes { raw in
                let vals = (raw.baseAddress! + 32).assumingMemoryBound(to: Float.self)
                for i in 0..<qc { for j in 0..<mc { out[(q0 + i) * n + m0 + j] = vals[i * mc + j] } }
            }
        }
        return out
    }

    /// Writes a seed's scores (refusing non-finite ones: `advice` says why they would be), the
    /// metadata with the request's options, and top.json with `--top`; returns the paths written.
    static func write(_ scores: [Float], _ ctx: RunContext, _ req: Request, meta: ScoreMetadata, network: Network<Float>, queries: Dataset,
                      advice: String) throws -> [String] {
        guard scores.allSatisfy(\.isFinite) else { throw AstraError("score: \(req.method.rawValue) gave non-finite scores (\(advice))") }
        var meta = meta
        meta.options = req.options
        var written = try ScoreFiles.write(scores, queries: meta.queries.count, trainIndex: ctx.data.train.globalIndex, metadata: meta, ws: ctx.workspace)
        if req.top > 0 { written.append(try writeTop(scores, network: network, queries: queries, train: ctx.data.train, k: req.top, meta: meta, ctx: ctx)) }
        return written
    }

    /// Prints the files a seed's scoring wrote, one `wrote PATH` line each (stdout, rank 0).
    static func report(_ written: [String]) {
        print(written.map { "wrote " + $0 }.joined(separator: "\n"))
        fflush(nil)
    }

    /// `scores/NAME/STEM.state/`: the solver states of a seed's blocks while it is scored
    /// (`block-Q0-Q1.bin`, written by each group's rank 0; docs/formats.md).
    static func solverStateDirectory(_ ctx: RunContext, _ req: Request, seed: UInt64, querySet: QuerySet) -> String {
        ScoreFiles.directory(ctx.workspace, method: req.resultName(defaultDamping: ctx.config.damping)) + "/" + ScoreFiles.stem(seed: seed, querySet: querySet.name) + ".state"
    }

    static func metadata(_ ctx: RunContext, _ req: Request, seed: UInt64, model: ModelDescription, querySet: QuerySet,
                         reports: [SolverReport], seconds: [String: Double]) -> ScoreMetadata {
        let o = req.options
        var solver: [String: ReportValue] = ["method": .text(req.method.rawValue), "damping": .init(o.damping)]
        if let r = reports.first {
            solver["iterations"] = .init(r.iterations)
            if let lr = r.learningRate { solver["learningRate"] = .init(lr) }
            if let l = r.lambdaMax { solver["lambdaMax"] = .init(l) }
            // The query-weighted mean over groups and blocks: what `score` prints and the trace's last point.
            if let last = SolverReport.meanTrace(reports).last { solver["finalObjective"] = .init(last.objective) }
            if r.backoffs != nil { solver["backoffs"] = .init(reports.compactMap(\.backoffs).reduce(0, +)) }
        }
        solver["batchSize"] = .init(o.batchSize); solver["momentum"] = .init(o.momentum); solver["seed"] = .init(Double(o.seed))
        if req.method.isIterative {
            solver["backoffWindow"] = .init(o.backoffWindow); solver["backoffTolerance"] = .init(o.backoffTolerance)
            solver["decayEvery"] = .init(o.decayEvery); solver["decayFactor"] = .init(o.decayFactor)
            if o.learningRate == nil { solver["learningRateScale"] = .init(o.learningRateScale) }
        }
        let trace = SolverReport.meanTrace(reports).map { [Double($0.iteration), $0.objective] }
        var meta = ScoreMetadata(method: req.method.rawValue, seed: seed, damping: o.damping, solver: solver, objectiveTrace: trace, seconds: seconds,
                             modelHash: model.parametersHash, configHash: ctx.config.hash, dataHash: ctx.data.hash,
                             querySet: querySet.name, queries: querySet.sources, queriesHash: querySet.contentHash, trainSize: ctx.data.train.count)
        if querySet.untargeted { meta.untargeted = true }
        return meta
    }

    /// Content hash of the factors' manifest, which holds the hash of every factor array.
    static func factorsHash(_ ctx: RunContext, seed: UInt64) throws -> String {
        ContentHash.of(try AtomicFile.read(ctx.workspace.factorsDirectory(seed: seed) + "/" + EKFAC.manifestName, hint: "re-run `astra-dist fit`"))
    }

    /// `seed-S.top.json` (docs/formats.md): the numbering stated, then per query its most
    /// helpful and most harmful training examples.
    struct TopFile: Codable { var numbering: String; var queries: [TopQuery] }
    struct TopQuery: Codable { var query: String; var target: Double; var prediction: Double; var helpful: [TopExample]; var harmful: [TopExample] }
    /// `column`: column of the score matrix (training order); `row`: `train_index.npy[column]`.
    struct TopExample: Codable { var column: Int; var row: Int; var target: Double; var prediction: Double; var score: Double }

    /// Per query the K largest and K smallest scores with each example's source row, target
    /// and prediction; equal scores in column order, so the choice is a function of the
    /// scores alone (scores closer than the reordering tolerance may still swap between rank
    /// counts). The one ordering of top-k lists: `score --top` writes it, `report` reads it
    /// (or calls this when a result has no top.json).
    static func topQueries(_ scores: [Float], network: Network<Float>, queries: Dataset, train: Dataset, k: Int, names: [String]) -> [TopQuery] {
        let n = train.count
        let trainPredicted = network.predictions(on: train), queryPredicted = network.predictions(on: queries)
        var out: [TopQuery] = []
        for i in 0..<queries.count {
            let row = Array(scores[(i * n)..<((i + 1) * n)])
            let order = row.indices.sorted { row[$0] != row[$1] ? row[$0] > row[$1] : $0 < $1 }
            func pick(_ idx: ArraySlice<Int>) -> [TopExample] {
                idx.map { TopExample(column: $0, row: train.globalIndex[$0], target: Double(train.targets[$0 * train.targetWidth]), prediction: trainPredicted[$0], score: Double(row[$0])) }
            }
            out.append(TopQuery(query: names[i], target: Double(queries.targets[i * queries.targetWidth]), prediction: queryPredicted[i],
                                helpful: pick(order.prefix(k)), harmful: pick(order.suffix(k).reversed()[...])))
        }
        return out
    }

    /// Writes `seed-S[.SET].top.json` (`topQueries`); returns the path written.
    static func writeTop(_ scores: [Float], network: Network<Float>, queries: Dataset, train: Dataset, k: Int, meta: ScoreMetadata, ctx: RunContext) throws -> String {
        let out = topQueries(scores, network: network, queries: queries, train: train, k: k, names: meta.queries)
        let path = ctx.workspace.scoresStem(name: meta.resultName, model: ModelReference(seed: meta.seed), querySet: meta.querySet) + ".top.json"
        try WorkDirectory.writeJSON(TopFile(numbering: ScoreMetadata.numbering, queries: out), to: path)
        return path
    }
}
