import Foundation

/// `astra-dist groundtruth` (spec §9): M subsets of ⌊αN⌋ training examples, R retrainings of
/// each, f_q of every query recorded. Jobs `j·R + r` go through the MPI work queue; rank 0
/// appends each result to a checksummed journal, so a killed sweep resumes with only the
/// missing jobs, on any number of ranks. Every job trains with a fixed BLAS thread count and
/// a seed derived from its id, so its result does not depend on where it ran.
public enum GroundTruthStage {
    public struct Header: Codable, Equatable {
        var format = "astra-dist-groundtruth-1"
        var configHash: String
        var dataHash: String
        var masksHash: String
        var masks: Int
        var repeats: Int
        var queries: Int
    }

    /// Seed of job `job` (independent of the model seeds and of the rank).
    public static func jobSeed(_ config: ExperimentConfig, job: Int) -> UInt64 {
        var r = CounterRandom(seed: config.dataSeed, purpose: .jobSeed, index: UInt64(job))
        return r.nextUInt64()
    }

    public static func masks(_ ctx: RunContext) -> SubsetMasks {
        SubsetMasks(drawing: ctx.config.masks, population: ctx.data.train.count, fraction: ctx.config.alpha, seed: ctx.config.dataSeed)
    }

    /// f_q for every query after training job `job` on its subset.
    public static func runJob(_ ctx: RunContext, masks: SubsetMasks, job: Int) -> [Float] {
        let j = job / ctx.config.repeats
        let subset = ctx.data.train.subset(masks.members(row: j))
        let net = Trainer<Float>(shape: ctx.shape, recipe: ctx.config.recipe).train(on: subset, seed: jobSeed(ctx.config, job: job))
        return net.measurements(on: ctx.data.queries).map { Float($0) }
    }

    public static func run(_ ctx: RunContext) throws {
        let c = ctx.config, dir = ctx.workspace.groundTruthDirectory
        let m = masks(ctx)
        let q = ctx.data.queries.count, total = c.masks * c.repeats
        let header = Header(configHash: c.hash, dataHash: ctx.data.hash, masksHash: m.contentHash, masks: c.masks, repeats: c.repeats, queries: q)
        let e = JSONEncoder(); e.outputFormatting = [.sortedKeys]
        let headerText = String(decoding: try e.encode(header), as: UTF8.self)

        // Rank 0 opens the journal; its verdict reaches every rank before the queue starts.
        var journal: Journal? = nil
        var problem = ""
        if ctx.comm.isRoot {
            do {
                try writeOrCheckMasks(m, path: dir + "/masks.npy")
                journal = try Journal.open(path: dir + "/journal", header: headerText)
                journal!.warnings.forEach { ctx.log("groundtruth: warning: \($0)") }
            } catch { problem = "\(error)" }
        }
        problem = String(decoding: ctx.comm.broadcastBytes(Array(problem.utf8), root: 0), as: UTF8.self)
        guard problem.isEmpty else { throw AstraError(problem) }

        var doneFlags = [UInt8](repeating: 0, count: total)
        if let journal { for k in journal.completed.keys where k < total { doneFlags[k] = 1 } }
        ctx.comm.broadcast(&doneFlags, root: 0)
        let pending = (0..<total).filter { doneFlags[$0] == 0 }
        let already = total - pending.count
        ctx.log("groundtruth: \(total) jobs (\(c.masks) subsets × \(c.repeats) repeats), \(already) already in the journal, \(pending.count) to run on \(ctx.comm.size) rank(s)")

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
                              ctx.log(String(format: "groundtruth: %d/%d jobs, %.2f jobs/s, about %.0f s left", already + done, total, rate, left))
                          })
        if let journal {
            let gt = try LDS.groundTruth(jobs: journal.completed, subsets: c.masks, repeats: c.repeats, queries: q)
            var raw = [Float](repeating: 0, count: total * q)
            for (k, v) in journal.completed where k < total { for i in 0..<q { raw[k * q + i] = v[i] } }
            try NPY.write(raw, shape: [c.masks, c.repeats, q], to: dir + "/raw.npy")
            try NPY.write(gt, shape: [c.masks, q], to: dir + "/groundtruth.npy")
            ctx.log("groundtruth: wrote \(dir)/groundtruth.npy (\(c.masks)×\(q)) in \(String(format: "%.1f", now() - start)) s")
        }
        ctx.comm.barrier()
    }

    static func writeOrCheckMasks(_ m: SubsetMasks, path: String) throws {
        if FileManager.default.fileExists(atPath: path) {
            let a = try NPY.read(path)
            guard a.shape == [m.count, m.population], a.values(UInt8.self) == m.bits else {
                throw AstraError("\(path) does not match this configuration's subsets; use a new --workdir or delete \((path as NSString).deletingLastPathComponent)")
            }
        } else {
            try NPY.write(m.bits, shape: [m.count, m.population], to: path)
        }
    }

    /// The finished ground truth (M×Q), checked against the configuration.
    public static func load(_ ctx: RunContext) throws -> (gt: [Double], masks: SubsetMasks) {
        let dir = ctx.workspace.groundTruthDirectory, q = ctx.data.queries.count
        let hint = "run `astra-dist groundtruth --workdir \(ctx.workspace.root)` first"
        let a = try NPY.read(dir + "/groundtruth.npy", hint: hint)
        guard a.shape == [ctx.config.masks, q] else { throw AstraError("\(dir)/groundtruth.npy has shape \(a.shape), expected [\(ctx.config.masks), \(q)]; \(hint)") }
        let m = masks(ctx)
        let stored = try NPY.read(dir + "/masks.npy", hint: hint)
        guard stored.shape == [m.count, m.population], stored.values(UInt8.self) == m.bits else {
            throw AstraError("\(dir)/masks.npy does not match this configuration's subsets; \(hint) in a new --workdir")
        }
        return (a.doubles, m)
    }
}
