/// The one place where ranks talk to each other. Every distributed algorithm is written
/// once against this protocol and gives the same answer (to floating-point reordering)
/// on any number of ranks.
///
/// Collective calls must be made by every rank of the communicator in the same order.
public protocol Communicator: AnyObject, Sendable {
    var rank: Int { get }
    var size: Int { get }
    /// Element-wise sum over ranks, in place, result on every rank.
    func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>)
    func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Double>)
    /// Element-wise maximum over ranks, in place.
    func allreduceMax(_ buffer: UnsafeMutableBufferPointer<Double>)
    /// Copies `buffer` of rank `root` to every rank (same length everywhere).
    func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int)
    /// Concatenates every rank's bytes in rank order on `root` (nil elsewhere).
    func gatherv(_ bytes: [UInt8], root: Int) -> [[UInt8]]?
    func barrier()
    /// Point-to-point messages for work queues.
    func send(_ bytes: [UInt8], to rank: Int, tag: Int)
    /// Blocking receive from any rank (`from: nil`) or one rank.
    func receive(from rank: Int?, tag: Int?) -> (bytes: [UInt8], source: Int, tag: Int)
    /// Non-blocking test for a pending message: its source and tag, if any.
    func probe(from rank: Int?, tag: Int?) -> (source: Int, tag: Int)?
    /// Sub-communicator of the ranks with the same `color`, ordered by `key`.
    func split(color: Int, key: Int) -> Communicator
    /// Ends every rank of the job with `code` (used after a clear error on one rank).
    func abort(_ code: Int32) -> Never
}

extension Communicator {
    public var isRoot: Bool { rank == 0 }

    public func allreduceSum(_ array: inout [Float]) { array.withUnsafeMutableBufferPointer { allreduceSum($0) } }
    public func allreduceSum(_ array: inout [Double]) { array.withUnsafeMutableBufferPointer { allreduceSum($0) } }
    public func allreduceSum(_ x: Double) -> Double { var a = [x]; allreduceSum(&a); return a[0] }
    public func allreduceMax(_ x: Double) -> Double {
        var a = [x]; a.withUnsafeMutableBufferPointer { allreduceMax($0) }; return a[0]
    }
    public func broadcast<T: BitwiseCopyable>(_ array: inout [T], root: Int) {
        array.withUnsafeMutableBytes { broadcast($0, root: root) }
    }
    /// Broadcasts a byte array whose length only `root` knows.
    public func broadcastBytes(_ bytes: [UInt8], root: Int) -> [UInt8] {
        var n = [Int64(bytes.count)]
        broadcast(&n, root: root)
        var out = rank == root ? bytes : [UInt8](repeating: 0, count: Int(n[0]))
        broadcast(&out, root: root)
        return out
    }
    /// True on every rank if `flag` is true on any rank (for decisions every rank takes from
    /// values it computed itself, e.g. a divergence test on allreduced objectives).
    public func any(_ flag: Bool) -> Bool { allreduceMax(flag ? 1 : 0) > 0 }

    /// Agrees on a failure: nil on every rank if `message` is nil on every rank, else on every
    /// rank the message of the lowest failing rank, prefixed `rank R: ` when R is not 0, so
    /// the line rank 0 prints is the failing rank's own. Collective; starts with the
    /// non-spinning barrier, so a rank that finished its share early does not spin a core.
    public func firstFailure(_ message: String?) -> String? {
        barrier()
        let failing = Int(allreduceMax(message != nil ? Double(size - rank) : 0))
        guard failing > 0 else { return nil }
        let root = size - failing
        let text = String(decoding: broadcastBytes(Array((message ?? "").utf8), root: root), as: UTF8.self)
        return root == 0 ? text : "rank \(root): \(text)"
    }
}

/// Contiguous block `[lower, upper)` of `0..<count` owned by `rank` of `size`;
/// the first `count % size` ranks get one extra item.
public func blockRange(count: Int, rank: Int, size: Int) -> Range<Int> {
    let base = count / size, extra = count % size
    let lower = rank * base + min(rank, extra)
    return lower..<(lower + base + (rank < extra ? 1 : 0))
}
