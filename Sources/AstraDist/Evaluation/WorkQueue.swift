import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A dynamic work queue over a `Communicator`: independent jobs (e.g. the M×R retraining
/// runs of the LDS ground truth) go to whichever rank is free, so fast and slow ranks all
/// stay busy, and rank 0 works too.
///
/// Roles (size > 1):
/// - Rank 0, calling thread = *coordinator*: the only thread of rank 0 that touches the
///   communicator while `run` is active (so `MPI_THREAD_FUNNELED` already suffices when it
///   is the thread that initialised MPI; `MPI_THREAD_SERIALIZED` is what we request). It
///   polls with `probe` and sleeps `pollInterval` µs when idle; a blocking receive would
///   busy-poll a core (platform notes). It calls `onResult` and `progress`, serially.
/// - Rank 0, one extra thread = *local worker*: runs `work` on jobs it takes straight from
///   the pending queue (under a lock, no messages).
/// - Ranks ≥ 1 = *workers*: the coordinator keeps `depth` (2) jobs outstanding per worker,
///   so the next job is already in the worker's mailbox when the current one finishes
///   (prefetch); a worker only waits at the start and the end.
///
/// Messages (payload integers little-endian; tags chosen clear of `gatherv`'s 1_000_001):
/// - `jobTag`    0 → w: i64 job id.
/// - `stopTag`   0 → w: empty; no more jobs for w. Sent once per worker, after its last job.
/// - `resultTag` w → 0: i64 job id, then the values as f32.
/// - `errorTag`  w → 0: i64 job id, then the error text (UTF-8). The worker then drops
///   every further job it receives until `stopTag`.
/// - `doneTag`   w → 0: empty; reply to `stopTag`, the worker's last queue message.
/// MPI keeps messages between a pair of ranks in order, so a worker's results arrive before
/// its `doneTag`, and its jobs before its `stopTag`.
public enum WorkQueue {
    public static let jobTag = 7101
    public static let stopTag = 7102
    public static let resultTag = 7103
    public static let errorTag = 7104
    public static let doneTag = 7105
    /// Jobs outstanding per worker rank: the running one plus one prefetched.
    public static let depth = 2
    /// Sleep between polls of an idle coordinator or waiting worker, in microseconds.
    public static let pollInterval: UInt32 = 1000

    /// Runs every job of `jobs` exactly once across the ranks of `comm`.
    ///
    /// - Parameters:
    ///   - jobs: job ids, each at most once; only rank 0's list is used (workers may pass
    ///     the same list or `[]`). Handed out in this order; they finish in any order.
    ///   - work: computes one job's values. Purely local: it must not use `comm`. On rank 0
    ///     it runs on a separate thread, concurrently with `onResult`, so it must not share
    ///     unsynchronised mutable state with `onResult` or `progress`.
    ///   - onResult: rank 0 only, on the calling thread, once per job in completion order,
    ///     never concurrently with itself (e.g. `journal.append`). Results that arrive after
    ///     a failure are still delivered, so a resumed run repeats less work.
    ///   - progress: rank 0 only, on the calling thread, after each `onResult` with
    ///     (jobs done, total jobs).
    ///
    /// Collective: every rank of `comm` calls `run`. It returns on every rank, or throws the
    /// same `AstraError` on every rank (rank 0 broadcasts the first failure at the end) after
    /// all ranks have stopped cleanly: a job that throws (message "job J failed on rank R:
    /// …"), or `onResult` that throws (its message). With size 1 the jobs simply run in
    /// order on the calling thread and the first failure is thrown at once.
    public static func run(jobs: [Int], comm: Communicator, work: @escaping (Int) throws -> [Float],
                           onResult: (Int, [Float]) throws -> Void,
                           progress: ((_ done: Int, _ total: Int) -> Void)? = nil) throws {
        if comm.size == 1 {
            for (i, job) in jobs.enumerated() {
                let values: [Float]
                do { values = try work(job) } catch { throw AstraError("job \(job) failed on rank 0: \(describe(error))") }
                try onResult(job, values)
                progress?(i + 1, jobs.count)
            }
            return
        }
        var failure = ""
        if comm.rank == 0 {
            precondition(Set(jobs).count == jobs.count, "WorkQueue: duplicate job ids")
            failure = coordinate(jobs: jobs, comm: comm, work: work, onResult: onResult, progress: progress) ?? ""
        } else {
            workerLoop(comm: comm, work: work)
        }
        // Every rank is out of the queue protocol here, so a collective is safe.
        let message = String(decoding: comm.broadcastBytes(Array(failure.utf8), root: 0), as: UTF8.self)
        if !message.isEmpty { throw AstraError(message) }
    }

    // MARK: rank 0

    /// Shared between the coordinator and rank 0's local worker thread.
    private final class Shared: @unchecked Sendable {
        let lock = NSLock()
        var pending: [Int]
        var head = 0
        var stopped = false
        var inbox: [(job: Int, values: [Float]?, error: String?)] = []
        var localFinished = false
        init(_ jobs: [Int]) { pending = jobs }

        /// Next job, or nil when none remain or the run is failing. Caller holds `lock`.
        func popLocked() -> Int? {
            guard !stopped, head < pending.count else { return nil }
            head += 1
            return pending[head - 1]
        }
        func pop() -> Int? { lock.lock(); defer { lock.unlock() }; return popLocked() }
        var isEmpty: Bool { lock.lock(); defer { lock.unlock() }; return stopped || head == pending.count }
        func stop() { lock.lock(); stopped = true; lock.unlock() }
    }

    private final class WorkBox: @unchecked Sendable {
        let work: (Int) throws -> [Float]
        init(_ work: @escaping (Int) throws -> [Float]) { self.work = work }
    }

    /// The coordinator loop; returns the first failure's message, or nil.
    private static func coordinate(jobs: [Int], comm: Communicator, work: @escaping (Int) throws -> [Float],
                                   onResult: (Int, [Float]) throws -> Void,
                                   progress: ((Int, Int) -> Void)?) -> String? {
        let size = comm.size
        let shared = Shared(jobs)
        var outstanding = [Int](repeating: 0, count: size)
        var owner: [Int: Int] = [:]           // job → remote rank it was sent to
        var stopSent = [Bool](repeating: false, count: size)
        var finished = [Bool](repeating: false, count: size)
        var delivered = Set<Int>()
        var firstFailure: String? = nil
        func fail(_ message: String) {
            if firstFailure == nil { firstFailure = message }
            shared.stop()
        }
        func deliver(_ job: Int, _ values: [Float]) {
            guard delivered.insert(job).inserted else { fail("work queue: job \(job) finished twice (internal error)"); return }
            do { try onResult(job, values) } catch { fail(describe(error)) }
            progress?(delivered.count, jobs.count)
        }
        // Keeps every live worker `depth` jobs deep; stops it once nothing is left for it.
        func dispatch() -> Bool {
            var sent = false
            for w in 1..<size where !stopSent[w] {
                while outstanding[w] < depth, let job = shared.pop() {
                    comm.send(encode(job), to: w, tag: jobTag)
                    owner[job] = w; outstanding[w] += 1; sent = true
                }
                if shared.isEmpty {
                    comm.send([], to: w, tag: stopTag)
                    stopSent[w] = true; sent = true
                }
            }
            return sent
        }

        // Feed the remote workers first so they start at once, then start the local worker.
        _ = dispatch()
        let box = WorkBox(work)
        let thread = Thread {
            while let job = shared.pop() {
                var entry: (job: Int, values: [Float]?, error: String?) = (job, nil, nil)
                do { entry.values = try box.work(job) } catch { entry.error = describe(error) }
                shared.lock.lock()
                shared.inbox.append(entry)
                if entry.error != nil { shared.stopped = true }
                shared.lock.unlock()
            }
            shared.lock.lock(); shared.localFinished = true; shared.lock.unlock()
        }
        thread.stackSize = 16 << 20
        thread.start()

        while true {
            var busy = dispatch()
            while let (source, tag) = comm.probe(from: nil, tag: nil) {
                busy = true
                let message = comm.receive(from: source, tag: tag)
                switch tag {
                case resultTag, errorTag:
                    let job = decodeJob(message.bytes)
                    guard let job, owner[job] == source else {
                        fail("work queue: rank \(source) returned job \(job.map(String.init) ?? "?") it was not given (internal error)")
                        continue
                    }
                    owner[job] = nil
                    outstanding[source] -= 1
                    if tag == resultTag {
                        deliver(job, decodeValues(message.bytes))
                    } else {
                        fail("job \(job) failed on rank \(source): " + String(decoding: message.bytes.dropFirst(8), as: UTF8.self))
                    }
                case doneTag:
                    finished[source] = true
                default:
                    fail("work queue: unexpected message tag \(tag) from rank \(source) (internal error)")
                }
            }
            shared.lock.lock()
            let local = shared.inbox, localDone = shared.localFinished
            shared.inbox.removeAll()
            shared.lock.unlock()
            for entry in local {
                busy = true
                if let values = entry.values { deliver(entry.job, values) } else { fail("job \(entry.job) failed on rank 0: \(entry.error ?? "")") }
            }
            // `localFinished` is set after the thread's last inbox append, and both were read
            // under one lock, so nothing of rank 0 is left once it is true.
            if localDone && (1..<size).allSatisfy({ finished[$0] }) { break }
            if !busy { usleep(pollInterval) }
        }
        if firstFailure == nil && delivered.count != jobs.count {
            return "work queue: \(jobs.count - delivered.count) of \(jobs.count) jobs produced no result (internal error)"
        }
        return firstFailure
    }

    // MARK: ranks ≥ 1

    private static func workerLoop(comm: Communicator, work: (Int) throws -> [Float]) {
        var failed = false
        while true {
            // Poll instead of a blocking receive, which would spin a core while waiting.
            while comm.probe(from: 0, tag: nil) == nil { usleep(pollInterval) }
            let message = comm.receive(from: 0, tag: nil)
            if message.tag == stopTag {
                comm.send([], to: 0, tag: doneTag)
                return
            }
            guard message.tag == jobTag, let job = decodeJob(message.bytes) else { continue }
            if failed { continue }   // the coordinator is stopping the run
            do {
                let values = try work(job)
                var payload = encode(job)
                payload.reserveCapacity(8 + 4 * values.count)
                for v in values { appendLittleEndian(&payload, v.bitPattern) }
                comm.send(payload, to: 0, tag: resultTag)
            } catch {
                failed = true
                comm.send(encode(job) + Array(describe(error).utf8), to: 0, tag: errorTag)
            }
        }
    }

    // MARK: payloads

    private static func describe(_ error: Error) -> String {
        (error as? AstraError)?.message ?? String(describing: error)
    }
    private static func encode(_ job: Int) -> [UInt8] {
        var b: [UInt8] = []
        appendLittleEndian(&b, UInt64(bitPattern: Int64(job)))
        return b
    }
    private static func appendLittleEndian<T: FixedWidthInteger>(_ b: inout [UInt8], _ v: T) {
        for s in stride(from: 0, to: T.bitWidth, by: 8) { b.append(UInt8(truncatingIfNeeded: v >> s)) }
    }
    private static func decodeJob(_ b: [UInt8]) -> Int? {
        guard b.count >= 8 else { return nil }
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(b[i]) << (8 * i) }
        return Int(Int64(bitPattern: v))
    }
    private static func decodeValues(_ b: [UInt8]) -> [Float] {
        (0..<((b.count - 8) / 4)).map { k in
            let o = 8 + 4 * k
            return Float(bitPattern: UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24)
        }
    }
}
