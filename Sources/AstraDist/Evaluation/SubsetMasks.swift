/// The M random training subsets `S_j` of the LDS (spec §9), as an M×N row-major uint8
/// matrix: `bits[j·N + i] == 1` iff training example i (position in the training set, not
/// its global index) is in `S_j`. Saved as a uint8 `.npy` so users can open it in NumPy.
///
/// Row j depends only on `(seed, j)` and N: drawing more subsets later never changes the
/// earlier ones, and every rank draws the same masks.
public struct SubsetMasks: Equatable, Sendable {
    /// M: number of subsets (rows).
    public let count: Int
    /// N: training-set size (columns).
    public let population: Int
    /// M×N, row-major, each value 0 or 1.
    public let bits: [UInt8]

    /// Wraps existing masks (e.g. read from `masks.npy`).
    /// - Precondition: `bits.count == count · population`.
    public init(count: Int, population: Int, bits: [UInt8]) {
        precondition(count >= 0 && population >= 0 && bits.count == count * population,
                     "SubsetMasks: \(bits.count) values for \(count)×\(population)")
        self.count = count; self.population = population; self.bits = bits
    }

    /// Draws fresh masks; see `draw(count:population:fraction:seed:)`.
    public init(drawing count: Int, population: Int, fraction: Double, seed: UInt64) {
        self.init(count: count, population: population,
                  bits: Self.draw(count: count, population: population, fraction: fraction, seed: seed))
    }

    /// Subset size `⌊αN⌋`. A relative slack of 1e-12 absorbs decimal representation error
    /// (`0.29 · 100` is 28.999999999999996 in binary, and the user meant 29).
    ///
    /// - Precondition: `0 < alpha ≤ 1`, `n ≥ 0`.
    public static func subsetSize(population n: Int, fraction alpha: Double) -> Int {
        precondition(alpha > 0 && alpha <= 1, "SubsetMasks: fraction \(alpha) is not in (0, 1]")
        precondition(n >= 0)
        let exact = alpha * Double(n)
        return min(n, Int((exact + exact * 1e-12).rounded(.down)))
    }

    /// M×N row-major masks; row j has exactly `subsetSize(population: n, fraction: alpha)`
    /// ones, chosen uniformly among all subsets of that size by a partial Fisher–Yates
    /// shuffle driven by `CounterRandom(seed: seed, purpose: .subsets, index: j)`.
    ///
    /// Deterministic: a pure function of its arguments.
    /// - Complexity: O(M·N) time, O(N) scratch.
    public static func draw(count m: Int, population n: Int, fraction alpha: Double, seed: UInt64) -> [UInt8] {
        precondition(m >= 0, "SubsetMasks: negative subset count \(m)")
        let k = subsetSize(population: n, fraction: alpha)
        var bits = [UInt8](repeating: 0, count: m * n)
        var perm = [Int](repeating: 0, count: n)
        bits.withUnsafeMutableBufferPointer { out in
            perm.withUnsafeMutableBufferPointer { p in
                for j in 0..<m {
                    for i in 0..<n { p[i] = i }
                    var rng = CounterRandom(seed: seed, purpose: .subsets, index: UInt64(j))
                    let row = out.baseAddress! + j * n
                    // After step i, p[0...i] is a uniform random i+1-subset in random order.
                    for i in 0..<k {
                        p.swapAt(i, i + rng.nextInt(below: n - i))
                        row[p[i]] = 1
                    }
                }
            }
        }
        return bits
    }

    /// Positions (ascending) of the examples in subset `S_j`.
    /// - Complexity: O(N).
    public func members(row j: Int) -> [Int] {
        precondition(j >= 0 && j < count, "SubsetMasks: row \(j) out of 0..<\(count)")
        let start = j * population
        return (0..<population).filter { bits[start + $0] != 0 }
    }

    /// Content hash of the masks (for the ground-truth journal header).
    public var contentHash: String { ContentHash.of(bits) }
}
