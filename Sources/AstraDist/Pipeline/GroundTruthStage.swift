import Foundation

/// `astra-dist groundtruth` (spec §9): M subsets of ⌊αN⌋ training examples, R retrainings of
/// each, f_q of every query recorded. Job (j, r) — subset j, repeat r, id `j << 32 | r` — goes
/// through the MPI work queue; rank 0 appends each result to a checksummed journal, so a
/// killed sweep resumes with only the missing jobs, on any number of ranks. Every job trains
/// with a fixed BLAS thread count and a seed derived from (j, r) alone, so its result depends
/// neither on where it ran nor on M and R: asking for more subsets or repeats extends a sweep
/// (finished jobs stay), fewer selects a prefix (docs/formats.md, "Ground-truth journal").
public enum GroundTruthStage {
    /// The journal's header: what every job of the sweep shares. M and R are not in it.
    public struct Header: Codable, Equatable {
        var format = "astra-dist-groundtruth-2"
        var configHash: String
        var dataHash: String
        /// N and ⌊αN⌋: with the data seed (in the configuration) they define every subset.
        var population: Int
        var subsetSize: Int
        var queries: Int
    }

    /// `groundtruth/groundtruth.json`: the protocol of the written `groundtruth.npy`.
    public struct Sweep: Codable, Equatable, Sendable {
        public var masks: Int
        public var repeats: Int
        public var alpha: Double
        public var configHash: String
        /// Retrainings left out of their subset's mean because they diverged (nil: written before this was counted).
        public var divergedRetrainings: Int? = nil
    }

    /// Journal id of job (subset j, repeat r).
    public static func jobID(subset j: Int, repeat r: Int) -> Int {
        precondition(j >= 0 && j < 1 << 31 && r >= 0 && r < 1 << 32)
        return j << 32 | r
    }

    /// Seed of job (j, r): independent of the model seeds, the rank, M and R.
    public static func jobSeed(_ config: ExperimentConfig, subset j: Int, repeat r: Int) -> UInt64 {
        var g = CounterRandom(seed: config.dataSeed, purpose: .jobSeed, index: UInt64(jobID(subset: j, repeat: r)))
        return g.nextUInt64()
    }

    public static func masks(_ ctx: RunContext, count: Int) -> SubsetMasks {
        SubsetMasks(drawing: count, population: ctx.data.train.count, fraction: ctx.config.alpha, seed: ctx.config.dataSeed)
    }

    /// f_q for every query after training job `job` (an id from `jobID`) on its subset.
    public static func runJob(_ ctx: RunContext, masks: SubsetMasks, job: Int) -> [Float] {
        let j = job >> 32, r = job & 0xFFFF_FFFF
        let subset = ctx.data.train.subset(masks.members(row: j))
        let net = Trainer<Float>(shape: ctx.shape, recipe: ctx.config.recipe).train(on: subset, seed: jobSeed(ctx.config, subset: j, repeat: r))
        return net.measurements(on: ctx.data.queries).map { Float($0) }
    }

    /// Runs the jobs of an M×R sweep the journal lacks, then writes the M×R ground truth.
    /// - Precondition: `masks ≥ 2`, `repeats ≥ 1` (checked by the command line).
    public static func run(_ ctx: RunContext, masks mCount: Int, repeats rCount: Int) throws {
        try ctx.config.requireRecipe(for: "ground truth", workspace: ctx.workspace.root)
        let c = ctx.config, dir = ctx.workspace.groundTruthDirectory
        let m = masks(ctx, count: mCount)
        let q = ctx.data.queries.count
        let header = Header(configHash: c.hash, dataHash: ctx.data.hash, population: m.population,
                            subsetSize: SubsetMasks.subsetSize(population: m.population, fraction: c.alpha), queries: q)
        let e = JSONEncoder(); e.outputFormatting = [.sortedKeys]
        let headerText = String(decoding: try e.encode(header), as: UTF8.self)
        let jobs = (0..<mCount).flatMap { j in (0..<rCount).map { jobID(subset: j, repeat: $0) } }

        // Rank 0 opens the journal; its verdict reaches every rank before the queue starts.
        var journal: Journal? = nil
        var problem = ""
        if ctx.comm.isRoot {
            do {
                try refuseLegacyJournal(dir + "/journal")
                try writeOrExtendMasks(m, path: dir + "/masks.npy")
                journal = try Journal.open(path: dir + "/journal", header: headerText)
                journal!.warnings.forEach { ctx.log("groundtruth: warning: \($0)") }
            } catch { problem = "\(error)" }
        }
        problem = String(decoding: ctx.comm.broadcastBytes(Array(problem.utf8), root: 0), as: UTF8.self)
        guard problem.isEmpty else { throw AstraError(problem) }

        var doneFlags = [UInt8](repeating: 0, count: jobs.count)
        if let journal { for (k, id) in jobs.enumerated() where journal.completed[id] != nil { doneFlags[k] = 1 } }
        ctx.comm.broadcast(&doneFlags, root: 0)
        let pending = jobs.indices.filter { doneFlags[$0] == 0 }.map { jobs[$0] }
        let already = jobs.count - pending.count
        ctx.log("groundtruth: \(jobs.count) jobs (\(mCount) subsets × \(rCount) repeats), \(already) already in the journal, \(pending.count) to run on \(ctx.comm.size) rank(s)")

        setBLASThreads(ctx.threads)
        let start = now()
        var lastReport = 0.0
        try WorkQueue.run(jobs: pending, comm: ctx.comm, work: { job in runJob(ctx, masks: m, job: job) },
                          onResult: { job, values in try journal?.append(job: job, values: values) },
                          progress: { done, _ in
                              let t = now() - start
                              guard t - lastReport > 2 || done == pending.count else { return }
                              lastReport = t
                              let rate = Double(done) / max(t, 1e-9)
                              let left = Double(pending.count - done) / max(rate, 1e-9)
                              ctx.log(String(format: "groundtruth: %d/%d jobs, %.2f jobs/s, about %.0f s left", already + done, jobs.count, rate, left))
                          })
        if let journal {
            // LDS.groundTruth reads job j·R + r: renumber the requested M×R block.
            var block: [Int: [Float]] = [:]
            for (k, id) in jobs.enumerated() { block[k] = journal.completed[id] }
            let (gt, diverged) = try LDS.groundTruth(jobs: block, subsets: mCount, repeats: rCount, queries: q)
            if !diverged.isEmpty {
                ctx.log("groundtruth: warning: \(diverged.count) of \(jobs.count) retrainings diverged (non-finite query losses; subsets \(Set(diverged.map { $0 / rCount }).sorted().map(String.init).joined(separator: ", "))): each subset's target is the mean of its finite repeats")
            }
            var raw = [Float](repeating: 0, count: jobs.count * q)
            for k in jobs.indices { for i in 0..<q { raw[k * q + i] = block[k]![i] } }
            try NPY.write(raw, shape: [mCount, rCount, q], to: dir + "/raw.npy")
            try NPY.write(gt, shape: [mCount, q], to: dir + "/groundtruth.npy")
            try WorkDirectory.writeJSON(Sweep(masks: mCount, repeats: rCount, alpha: c.alpha, configHash: c.hash, divergedRetrainings: diverged.count), to: dir + "/groundtruth.json")
            ctx.log("groundtruth: wrote \(dir)/groundtruth.npy (\(mCount)×\(q), mean of \(rCount) repeats) in \(String(format: "%.1f", now() - start)) s")
        }
        ctx.comm.barrier()
    }

    /// A format-1 journal numbered jobs `j·R + r` and seeded them by that number, so its
    /// results depend on R and cannot be extended or cut to a prefix: refused with the way out.
    static func refuseLegacyJournal(_ path: String) throws {
        guard FileManager.default.fileExists(atPath: path),
              let bytes = try? AtomicFile.read(path, hint: ""), bytes.count >= 16 else { return }
        let length = min(Int(Journal.readU32(bytes, 12)), bytes.count - 16)
        let text = String(decoding: bytes[16..<(16 + max(length, 0))], as: UTF8.self)
        if text.contains("\"astra-dist-groundtruth-1\"") {
            let dir = FilePath.parent(of: path)
            throw AstraError("\(path) is a format-1 journal (jobs seeded by j·R + r, so its results depend on the repeat count); this astra-dist seeds jobs by (subset, repeat) and cannot continue it: move it aside (mv \(dir) \(dir)-v1) and rerun groundtruth")
        }
    }

    /// Writes `masks.npy` with the rows of `m`, keeping longer stored masks: rows depend only
    /// on their index, so stored rows must equal the drawn ones wherever both exist.
    static func writeOrExtendMasks(_ m: SubsetMasks, path: String) throws {
        if FileManager.default.fileExists(atPath: path) {
            let a = try NPY.read(path)
            let stored = a.values(UInt8.self), n = m.population
            let common = min(a.shape.first ?? 0, m.count) * n
            guard a.shape.count == 2, a.shape[1] == n, Array(stored.prefix(common)) == Array(m.bits.prefix(common)) else {
                throw AstraError("\(path) does not match this configuration's subsets; use a new --workdir or move \(FilePath.parent(of: path)) aside")
            }
            if a.shape[0] >= m.count { return }
        }
        try NPY.write(m.bits, shape: [m.count, m.population], to: path)
    }

    /// The protocol (M, R, α) of the written ground truth.
    public static func writtenProtocol(_ ctx: RunContext) throws -> Sweep {
        let dir = ctx.workspace.groundTruthDirectory
        let hint = "run `astra-dist groundtruth --workdir \(ctx.workspace.root)` (a groundtruth/ from an older astra-dist: move it aside first)"
        let p = try WorkDirectory.readJSON(Sweep.self, from: dir + "/groundtruth.json", hint: hint)
        guard p.configHash == ctx.config.hash else { throw AstraError("\(dir)/groundtruth.json was written for another configuration; \(hint)") }
        return p
    }

    /// The finished ground truth (M×Q, the protocol `groundtruth` last wrote), checked against
    /// the configuration.
    public static func load(_ ctx: RunContext) throws -> (gt: [Double], masks: SubsetMasks) {
        let dir = ctx.workspace.groundTruthDirectory, q = ctx.data.queries.count
        let hint = "run `astra-dist groundtruth --workdir \(ctx.workspace.root)` first"
        let p = try writtenProtocol(ctx)
        let a = try NPY.read(dir + "/groundtruth.npy", hint: hint)
        guard a.shape == [p.masks, q] else { throw AstraError("\(dir)/groundtruth.npy has shape \(a.shape), expected [\(p.masks), \(q)]; \(hint)") }
        let m = masks(ctx, count: p.masks)
        let stored = try NPY.read(dir + "/masks.npy", hint: hint)
        guard stored.shape.count == 2, stored.shape[1] == m.population, stored.shape[0] >= m.count,
              Array(stored.values(UInt8.self).prefix(m.bits.count)) == m.bits else {
            throw AstraError("\(dir)/masks.npy does not match this configuration's subsets; \(hint) in a new --workdir")
        }
        let gt = a.doubles
        // Written by a build that averaged diverged retrainings in: rewriting it needs no retraining.
        guard gt.allSatisfy(\.isFinite) else {
            throw AstraError("\(dir)/groundtruth.npy holds non-finite targets (diverged retrainings averaged in by an older astra-dist): rerun `astra-dist groundtruth --workdir \(ctx.workspace.root)`, which rewrites it from the journal without retraining")
        }
        return (gt, m)
    }
}
