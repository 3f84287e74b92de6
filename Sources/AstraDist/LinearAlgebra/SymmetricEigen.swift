import CLAPACKE

/// Eigendecomposition `M = Q diag(λ) Qᵀ` of a symmetric matrix, in double (LAPACK `dsyevd`).
public struct SymmetricEigen: Sendable {
    /// Ascending eigenvalues.
    public var values: [Double]
    /// Row-major n×n; column j is the eigenvector of `values[j]`.
    public var vectors: Matrix<Double>

    public enum Failure: Error, CustomStringConvertible {
        case lapack(Int32, Int)
        public var description: String {
            switch self {
            case .lapack(let info, let n): return "dsyevd failed (info \(info)) on a \(n)×\(n) matrix: it holds NaN or Inf"
            }
        }
    }

    /// Complexity: O(n³).
    public init(_ m: Matrix<Double>) throws {
        precondition(m.rows == m.cols, "SymmetricEigen: matrix must be square")
        let n = m.rows
        var a = m.data
        var w = [Double](repeating: 0, count: n)
        guard n > 0 else { values = []; vectors = m; return }
        let info = a.withUnsafeMutableBufferPointer { ap in w.withUnsafeMutableBufferPointer { wp in
            LAPACKE_dsyevd(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "V")), Int8(UInt8(ascii: "U")), Int32(n), ap.baseAddress!, Int32(n), wp.baseAddress!)
        } }
        guard info == 0 else { throw Failure.lapack(info, n) }
        values = w
        vectors = Matrix(rows: n, cols: n, data: a)
    }
}

/// Solves `M x = b` for a symmetric positive definite `M` (Cholesky, `dposv`), columns of `b` at once.
/// - Returns: nil if M is not positive definite.
public func solveSPD(_ m: Matrix<Double>, _ b: Matrix<Double>) -> Matrix<Double>? {
    precondition(m.rows == m.cols && b.rows == m.rows)
    var a = m.data, x = b.data
    let info = a.withUnsafeMutableBufferPointer { ap in x.withUnsafeMutableBufferPointer { xp in
        LAPACKE_dposv(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "U")), Int32(m.rows), Int32(b.cols), ap.baseAddress!, Int32(m.rows), xp.baseAddress!, Int32(b.cols))
    } }
    return info == 0 ? Matrix(rows: b.rows, cols: b.cols, data: x) : nil
}
