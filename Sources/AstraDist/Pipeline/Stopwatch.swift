/// A wall clock and the calling thread's CPU clock started together. Stage code records both
/// per part (`add`), so `bench score` can report CPU seconds, the steadier measure on a shared
/// machine (with one BLAS thread a rank's work runs on its calling thread).
public struct Stopwatch: Sendable {
    public let wall: Double, cpu: Double
    public init() { wall = now(); cpu = threadCPUSeconds() }

    /// The key under which `add` records the CPU seconds of part `key`.
    public static func cpuKey(_ key: String) -> String { key + ".cpu" }

    /// Adds the wall seconds since the start to `seconds[key]` and this thread's CPU seconds to
    /// `seconds[cpuKey(key)]`.
    public func add(to seconds: inout [String: Double], _ key: String) {
        seconds[key, default: 0] += now() - wall
        seconds[Stopwatch.cpuKey(key), default: 0] += threadCPUSeconds() - cpu
    }
}
