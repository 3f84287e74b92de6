import Foundation
import CMPI
#if canImport(Glibc)
import Glibc
#endif

/// Communicator over Open MPI. Create the world communicator once, first thing in `main`
/// (before any BLAS call: platform notes, fork + threaded BLAS).
public final class MPICommunicator: Communicator, @unchecked Sendable {
    public let rank: Int
    public let size: Int
    private let comm: MPI_Comm
    /// The thread level MPI granted (`MPI_THREAD_SERIALIZED` is requested).
    nonisolated(unsafe) public private(set) static var threadLevel: Int32 = 0

    /// Initialises MPI (once per process) and returns `MPI_COMM_WORLD`.
    public static func world() -> MPICommunicator {
        var initialized: Int32 = 0
        MPI_Initialized(&initialized)
        if initialized == 0 {
            // Alone (no launcher's variables), a singleton needs no helper daemon: without this
            // Open MPI forks an `orted` at MPI_Init, the fork of the platform notes' trap, and
            // seen to hang for over 60 s on a loaded machine (CommandLineTests, session 6).
            let env = ProcessInfo.processInfo.environment
            if env["OMPI_COMM_WORLD_SIZE"] == nil && env["PMIX_RANK"] == nil { setenv("OMPI_MCA_ess_singleton_isolated", "1", 0) }
            var provided: Int32 = 0
            MPI_Init_thread(nil, nil, Int32(MPI_THREAD_SERIALIZED), &provided)
            threadLevel = provided
        }
        return MPICommunicator(comm: cmpi_comm_world())
    }

    private init(comm: MPI_Comm) {
        self.comm = comm
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(comm, &r); MPI_Comm_size(comm, &s)
        rank = Int(r); size = Int(s)
    }

    /// Finalises MPI; call once at normal exit.
    public static func finalize() {
        var finalized: Int32 = 0
        MPI_Finalized(&finalized)
        if finalized == 0 { MPI_Finalize() }
    }

    // MPI counts are Int32: large buffers go in chunks.
    private static let chunk = 1 << 28

    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) {
        guard size > 1, let base = buffer.baseAddress else { return }
        var offset = 0
        while offset < buffer.count {
            let n = min(Self.chunk, buffer.count - offset)
            MPI_Allreduce(cmpi_in_place(), base + offset, Int32(n), cmpi_float(), cmpi_sum(), comm)
            offset += n
        }
    }
    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) {
        guard size > 1, let base = buffer.baseAddress else { return }
        var offset = 0
        while offset < buffer.count {
            let n = min(Self.chunk, buffer.count - offset)
            MPI_Allreduce(cmpi_in_place(), base + offset, Int32(n), cmpi_double(), cmpi_sum(), comm)
            offset += n
        }
    }
    public func allreduceMax(_ buffer: UnsafeMutableBufferPointer<Double>) {
        guard size > 1, let base = buffer.baseAddress else { return }
        MPI_Allreduce(cmpi_in_place(), base, Int32(buffer.count), cmpi_double(), cmpi_max(), comm)
    }
    /// Non-blocking broadcast waited for without spinning: the ranks that wait here often
    /// wait while the root does long work alone (writing files, a sweep's journal).
    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) {
        guard size > 1, let base = buffer.baseAddress else { return }
        var offset = 0
        while offset < buffer.count {
            let n = min(Self.chunk, buffer.count - offset)
            var request: MPI_Request? = nil
            MPI_Ibcast(base + offset, Int32(n), cmpi_byte(), Int32(root), comm, &request)
            Self.waitSleeping(&request)
            offset += n
        }
    }
    public func gatherv(_ bytes: [UInt8], root: Int) -> [[UInt8]]? {
        if size == 1 { return [bytes] }
        // Sizes first, then each rank's bytes by point-to-point (no Int32 displacement limit).
        var counts = [Int64](repeating: 0, count: size)
        var mine = Int64(bytes.count)
        MPI_Gather(&mine, 1, cmpi_int64(), &counts, 1, cmpi_int64(), Int32(root), comm)
        let tag = 1_000_001
        if rank == root {
            var out = [[UInt8]](repeating: [], count: size)
            out[rank] = bytes
            for r in 0..<size where r != root { out[r] = receiveExactly(count: Int(counts[r]), from: r, tag: tag) }
            return out
        }
        sendChunked(bytes, to: root, tag: tag)
        return nil
    }
    /// Non-blocking barrier waited for without spinning (`MPI_Barrier` busy-polls a core).
    public func barrier() {
        guard size > 1 else { return }
        var request: MPI_Request? = nil
        MPI_Ibarrier(comm, &request)
        Self.waitSleeping(&request)
    }

    /// Completes `request` by `MPI_Test` between sleeps that grow from 50 µs to 2 ms: a
    /// quick collective costs at most ~50 µs more, a long wait costs almost no CPU
    /// (docs/design.md, "A waiting rank sleeps").
    static func waitSleeping(_ request: inout MPI_Request?) {
        var done: Int32 = 0
        var pause = timespec(tv_sec: 0, tv_nsec: 50_000)
        while true {
            MPI_Test(&request, &done, cmpi_status_ignore())
            if done != 0 { return }
            nanosleep(&pause, nil)
            pause.tv_nsec = min(pause.tv_nsec * 2, 2_000_000)
        }
    }

    public func send(_ bytes: [UInt8], to rank: Int, tag: Int) {
        var n = Int64(bytes.count)
        MPI_Send(&n, 1, cmpi_int64(), Int32(rank), Int32(tag), comm)
        sendChunked(bytes, to: rank, tag: tag)
    }
    public func receive(from rank: Int?, tag: Int?) -> (bytes: [UInt8], source: Int, tag: Int) {
        var status = MPI_Status()
        var n: Int64 = 0
        MPI_Recv(&n, 1, cmpi_int64(), Int32(rank ?? Int(cmpi_any_source())), Int32(tag ?? Int(cmpi_any_tag())), comm, &status)
        let source = Int(status.MPI_SOURCE), t = Int(status.MPI_TAG)
        return (receiveExactly(count: Int(n), from: source, tag: t), source, t)
    }
    public func probe(from rank: Int?, tag: Int?) -> (source: Int, tag: Int)? {
        var flag: Int32 = 0
        var status = MPI_Status()
        MPI_Iprobe(Int32(rank ?? Int(cmpi_any_source())), Int32(tag ?? Int(cmpi_any_tag())), comm, &flag, &status)
        return flag != 0 ? (Int(status.MPI_SOURCE), Int(status.MPI_TAG)) : nil
    }
    public func split(color: Int, key: Int) -> Communicator {
        var newComm: MPI_Comm? = nil
        MPI_Comm_split(comm, Int32(color), Int32(key), &newComm)
        return MPICommunicator(comm: newComm!)
    }
    public func abort(_ code: Int32) -> Never {
        MPI_Abort(comm, code)
        exit(code)
    }

    private func sendChunked(_ bytes: [UInt8], to dest: Int, tag: Int) {
        bytes.withUnsafeBytes { p in
            var offset = 0
            while offset < bytes.count {
                let n = min(Self.chunk, bytes.count - offset)
                MPI_Send(p.baseAddress! + offset, Int32(n), cmpi_byte(), Int32(dest), Int32(tag), comm)
                offset += n
            }
        }
    }
    private func receiveExactly(count: Int, from source: Int, tag: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { p in
            var offset = 0
            while offset < count {
                let n = min(Self.chunk, count - offset)
                MPI_Recv(p.baseAddress! + offset, Int32(n), cmpi_byte(), Int32(source), Int32(tag), comm, cmpi_status_ignore())
                offset += n
            }
        }
        return out
    }
}
