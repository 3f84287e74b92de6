/// What a random stream is for. Each purpose is an independent stream family, so adding
/// a new use of randomness never shifts an existing one.
public enum RandomPurpose: UInt64, Sendable {
    case initialization = 1, shuffle, pseudoLabel, ggnBatch, subsets, split, labelNoise, jobSeed, projection, queryChoice, test, bootstrap, augmentation
}

/// Counter-based generator: the value at position `counter` of stream `(seed, purpose, index)`
/// is a pure function of those four numbers (SplitMix64 finaliser chained over the key).
/// Keyed by *global* example index or iteration, so results never depend on the rank count.
public struct CounterRandom: Sendable {
    public let key: UInt64
    public var counter: UInt64 = 0

    public init(seed: UInt64, purpose: RandomPurpose, index: UInt64 = 0) {
        key = Self.mix(Self.mix(Self.mix(seed &+ 0x9E37_79B9_7F4A_7C15) ^ purpose.rawValue) ^ (index &* 0xD1B5_4A32_D192_ED03))
    }

    @inline(__always) static func mix(_ z0: UInt64) -> UInt64 {
        var z = z0 &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    @inline(__always) public mutating func nextUInt64() -> UInt64 {
        defer { counter &+= 1 }
        return Self.mix(key ^ Self.mix(counter))
    }
    /// Uniform in [0, 1) with 53 random bits.
    @inline(__always) public mutating func nextUniform() -> Double {
        Double(nextUInt64() >> 11) * 0x1.0p-53
    }
    /// Uniform integer in `0..<n` (Lemire's multiply-shift; bias below 2⁻³² for n < 2³²).
    @inline(__always) public mutating func nextInt(below n: Int) -> Int {
        Int((UInt64(UInt32(truncatingIfNeeded: nextUInt64() >> 32)) &* UInt64(n)) >> 32)
    }
    /// Standard normal (Box–Muller; consumes two counters).
    @inline(__always) public mutating func nextNormal() -> Double {
        let u1 = 1 - nextUniform(), u2 = nextUniform()
        return (-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2)
    }
    /// A random permutation of `0..<n` (Fisher–Yates).
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        if n > 1 { for i in stride(from: n - 1, to: 0, by: -1) { p.swapAt(i, nextInt(below: i + 1)) } }
        return p
    }
}

#if canImport(Glibc)
import Glibc
@inline(__always) func _log(_ x: Double) -> Double { Glibc.log(x) }
@inline(__always) func _cos(_ x: Double) -> Double { Glibc.cos(x) }
#endif
