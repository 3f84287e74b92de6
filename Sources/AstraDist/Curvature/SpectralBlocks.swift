/// How `(M + λI)⁻¹` treats a matrix's eigenvalues (spec §12: one rule for every matrix).
public enum InversionRule: String, Codable, Sendable, CaseIterable {
    /// `1 / (max(e, 0) + λ)`: eigenvalues below 0 (H's) are clipped to 0 before damping.
    case clipped
    /// The pseudo-inverse of `M + λI` as the seed's code takes it (`numpy.linalg.pinv`, rcond
    /// 1e-6): `1 / (e + λ)` where `|e + λ| > 1e-6 · max |e + λ|`, else 0. Negative
    /// eigenvalues keep their sign.
    case pseudoInverse = "pseudo-inverse"

    /// The rule's inverse eigenvalues for one matrix's eigenvalues `values` (all blocks).
    func inverted(_ e: Double, damping: Double, cutoff: Double) -> Double {
        switch self {
        case .clipped: return 1 / (max(e, 0) + damping)
        case .pseudoInverse: let d = e + damping; return abs(d) > cutoff ? 1 / d : 0
        }
    }
}

/// The eigendecomposition of a symmetric P×P matrix that is block-diagonal over `blocks`
/// (one block `0..<P` for a full matrix): functions of the matrix applied to vectors by
/// rotating each block into its eigenbasis. Small networks only (P² doubles per block).
public struct SpectralBlocks: Sendable {
    public let size: Int
    public let blocks: [Range<Int>]
    public let eigen: [SymmetricEigen]

    /// Decomposes the diagonal blocks of `m` (entries outside them are ignored).
    /// Precondition: `blocks` partition `0..<m.rows`. Complexity: Σ_b |b|³.
    public init(_ m: Matrix<Double>, blocks: [Range<Int>]) throws {
        precondition(m.rows == m.cols && blocks.map(\.count).reduce(0, +) == m.rows, "SpectralBlocks: blocks do not partition the matrix")
        size = m.rows; self.blocks = blocks
        eigen = try blocks.map { try SymmetricEigen(m.block($0)) }
    }

    /// All eigenvalues, block by block (each block ascending).
    public var values: [Double] { eigen.flatMap(\.values) }

    /// Eigenvalues below 0 (clipped by `InversionRule.clipped`).
    public var negativeCount: Int { values.filter { $0 < 0 }.count }

    /// `X = f(M) V` for the P×Q matrix `v` (columns are vectors), `f` the damped inverse of `rule`.
    /// Complexity: 4·Q·Σ_b |b|² multiply-adds.
    public func inverseApplied(to v: Matrix<Double>, damping: Double, rule: InversionRule) -> Matrix<Double> {
        precondition(v.rows == size, "SpectralBlocks: \(v.rows) rows for a \(size)×\(size) matrix")
        let cutoff = 1e-6 * (values.map { abs($0 + damping) }.max() ?? 0)
        var out = Matrix<Double>(rows: v.rows, cols: v.cols)
        for (r, e) in zip(blocks, eigen) {
            var y = e.vectors.multiplied(by: v.rowSlice(r), transposeSelf: true)
            for i in 0..<y.rows {
                let s = rule.inverted(e.values[i], damping: damping, cutoff: cutoff)
                for j in 0..<y.cols { y[i, j] *= s }
            }
            let x = e.vectors.multiplied(by: y)
            for i in 0..<x.rows { for j in 0..<x.cols { out[r.lowerBound + i, j] = x[i, j] } }
        }
        return out
    }
}

extension Matrix where T == Double {
    /// The square diagonal block `m[r, r]`.
    public func block(_ r: Range<Int>) -> Matrix<Double> {
        var out = Matrix<Double>(rows: r.count, cols: r.count)
        for i in r { for j in r { out[i - r.lowerBound, j - r.lowerBound] = self[i, j] } }
        return out
    }
    /// Rows `r`, all columns.
    public func rowSlice(_ r: Range<Int>) -> Matrix<Double> {
        Matrix(rows: r.count, cols: cols, data: Array(data[(r.lowerBound * cols)..<(r.upperBound * cols)]))
    }
    /// `‖self − other‖_F`, accumulated in double. Precondition: equal shapes.
    public func frobeniusDistance(to other: Matrix<Double>) -> Double {
        precondition(rows == other.rows && cols == other.cols, "frobeniusDistance: shapes differ")
        var s = 0.0
        for k in data.indices { let d = data[k] - other.data[k]; s += d * d }
        return s.squareRoot()
    }
}
