import Foundation

/// A communicator of one rank: collectives are identities. Used by unit tests and by
/// library callers that never start MPI.
public final class SingleProcessCommunicator: Communicator, @unchecked Sendable {
    private var mailbox: [(bytes: [UInt8], tag: Int)] = []
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) {}
    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) {}
    public func allreduceMax(_ buffer: UnsafeMutableBufferPointer<Double>) {}
    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) {}
    public func gatherv(_ bytes: [UInt8], root: Int) -> [[UInt8]]? { [bytes] }
    public func barrier() {}
    public func send(_ bytes: [UInt8], to rank: Int, tag: Int) { mailbox.append((bytes, tag)) }
    public func receive(from rank: Int?, tag: Int?) -> (bytes: [UInt8], source: Int, tag: Int) {
        guard let i = mailbox.firstIndex(where: { tag == nil || $0.tag == tag }) else {
            fatalError("SingleProcessCommunicator: receive with no message sent (deadlock)")
        }
        let m = mailbox.remove(at: i)
        return (m.bytes, 0, m.tag)
    }
    public func probe(from rank: Int?, tag: Int?) -> (source: Int, tag: Int)? {
        mailbox.first(where: { tag == nil || $0.tag == tag }).map { (0, $0.tag) }
    }
    public func split(color: Int, key: Int) -> Communicator { SingleProcessCommunicator() }
    public func abort(_ code: Int32) -> Never { exit(code) }
}
