/// A dense row-major matrix over contiguous storage.
///
/// A value type: copies are cheap until written (copy-on-write `Array`).
public struct Matrix<T: BLASScalar>: Equatable, Sendable {
    public var rows: Int
    public var cols: Int
    /// `rows × cols`, row-major.
    public var data: [T]

    public init(rows: Int, cols: Int, data: [T]) {
        precondition(data.count == rows * cols, "Matrix: \(data.count) values for \(rows)×\(cols)")
        self.rows = rows; self.cols = cols; self.data = data
    }
    public init(rows: Int, cols: Int, repeating value: T = 0) {
        self.init(rows: rows, cols: cols, data: [T](repeating: value, count: rows * cols))
    }
    public static func identity(_ n: Int) -> Matrix {
        var m = Matrix(rows: n, cols: n)
        for i in 0..<n { m[i, i] = 1 }
        return m
    }
    @inline(__always) public subscript(i: Int, j: Int) -> T {
        get { data[i * cols + j] }
        set { data[i * cols + j] = newValue }
    }
    public var transposed: Matrix {
        var t = Matrix(rows: cols, cols: rows)
        for i in 0..<rows { for j in 0..<cols { t.data[j * rows + i] = data[i * cols + j] } }
        return t
    }
    /// `op(self)·op(other)` by GEMM.
    public func multiplied(by other: Matrix, transposeSelf: Bool = false, transposeOther: Bool = false) -> Matrix {
        let m = transposeSelf ? cols : rows, k = transposeSelf ? rows : cols
        let k2 = transposeOther ? other.cols : other.rows, n = transposeOther ? other.rows : other.cols
        precondition(k == k2, "Matrix product: inner dimensions \(k) and \(k2) differ")
        var c = Matrix(rows: m, cols: n)
        data.withUnsafeBufferPointer { a in other.data.withUnsafeBufferPointer { b in c.data.withUnsafeMutableBufferPointer { cp in
            T.gemm(transA: transposeSelf, transB: transposeOther, m: m, n: n, k: k, alpha: 1,
                   a: a.baseAddress!, lda: cols, b: b.baseAddress!, ldb: other.cols, beta: 0, c: cp.baseAddress!, ldc: n)
        } } }
        return c
    }
    /// Frobenius norm, accumulated in double.
    public var frobeniusNorm: Double { data.reduce(0.0) { $0 + $1.asDouble * $1.asDouble }.squareRoot() }
}
