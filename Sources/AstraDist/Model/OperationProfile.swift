import Foundation

/// Seconds spent per operation and pass of the network walk, for `astra-dist bench train`'s
/// profile: a `Workspace` with a profile set records each operation's forward and backward
/// (a layer's rows, its GEMM, its weight- and input-gradient passes apart), and `Trainer`
/// adds batch gathering, the loss and the optimiser step. Times are the thread's CPU seconds
/// (`CLOCK_THREAD_CPUTIME_ID`), so time the thread spent descheduled on a shared machine is
/// not charged to whatever part it interrupted. Recording is two clock reads per part, so the
/// profiled run is within noise of an unprofiled one; nothing else changes.
public final class OperationProfile: @unchecked Sendable {
    /// The parts of a training step.
    public enum Pass: String, Codable, Sendable, CaseIterable {
        /// A layer's rows `ā` (im2col for a convolution, the augmented copy for a linear layer).
        case rows
        /// A layer's forward GEMM, or a parameter-free operation's forward map.
        case forward
        /// A layer's weight-gradient GEMM `Dsᵀ Ā`.
        case weightGradient
        /// A layer's input gradient (`Ds W`, then col2im for a convolution).
        case inputGradient
        /// A parameter-free operation's backward map.
        case backward
        case loss
        case gather
        case optimiser
    }
    public struct Key: Hashable, Sendable {
        /// Operation index in the shape, or nil for the step's own parts (gather, loss, optimiser).
        public var operation: Int?
        public var pass: Pass
    }
    public private(set) var seconds: [Key: Double] = [:]
    /// Calls recorded per key (steps, for the per-step parts).
    public private(set) var calls: [Key: Int] = [:]

    public init() {}

    /// A clock reading for `record`.
    @inline(__always)
    public func start() -> Double { threadCPUSeconds() }

    /// Adds the time since `started` to (operation, pass) and returns the clock, so
    /// consecutive parts chain without a second reading.
    @inline(__always) @discardableResult
    public func record(_ operation: Int?, _ pass: Pass, since started: Double) -> Double {
        let t = threadCPUSeconds(), key = Key(operation: operation, pass: pass)
        seconds[key, default: 0] += t - started
        calls[key, default: 0] += 1
        return t
    }
}

/// CPU seconds used by the calling thread.
public func threadCPUSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}
