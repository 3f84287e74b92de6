import CBLAS

/// A floating-point type with BLAS kernels: `Float` for production work (SGEMM runs at
/// twice DGEMM's speed), `Double` for references and finite-difference tests.
///
/// All matrices are row-major and contiguous unless a leading dimension says otherwise.
public protocol BLASScalar: BinaryFloatingPoint, Sendable where Self.RawSignificand: FixedWidthInteger {
    /// `C ← α·op(A)·op(B) + β·C`, op(A) m×k, op(B) k×n, C m×n (row-major).
    static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Self,
        a: UnsafePointer<Self>, lda: Int, b: UnsafePointer<Self>, ldb: Int,
        beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)
    /// Upper and lower triangle of `C ← α·AᵀA + β·C`, A k×n, C n×n (row-major).
    static func syrkTransposed(
        n: Int, k: Int, alpha: Self, a: UnsafePointer<Self>, lda: Int,
        beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)
    /// `Double(self)` without the generic conversion cost.
    var asDouble: Double { get }
    init(_ value: Double)
}

extension Float: BLASScalar {
    @inline(__always) public static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
    @inline(__always) public static func syrkTransposed(
        n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard n > 0 else { return }
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(n), Int32(k), alpha, a, Int32(lda), beta, c, Int32(ldc))
        mirrorUpper(c, n: n, ldc: ldc)
    }
    @inline(__always) public var asDouble: Double { Double(self) }
}

extension Double: BLASScalar {
    @inline(__always) public static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Double,
        a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int,
        beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        cblas_dgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
    @inline(__always) public static func syrkTransposed(
        n: Int, k: Int, alpha: Double, a: UnsafePointer<Double>, lda: Int,
        beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        guard n > 0 else { return }
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(n), Int32(k), alpha, a, Int32(lda), beta, c, Int32(ldc))
        mirrorUpper(c, n: n, ldc: ldc)
    }
    @inline(__always) public var asDouble: Double { self }
}

/// Copies the upper triangle of an n×n row-major matrix onto its lower triangle.
@inline(__always) func mirrorUpper<T>(_ c: UnsafeMutablePointer<T>, n: Int, ldc: Int) {
    for i in 1..<max(n, 1) { for j in 0..<i { c[i * ldc + j] = c[j * ldc + i] } }
}

/// Sets the number of threads OpenBLAS uses in this process. Anything that must be
/// bit-identical across rank counts runs with an explicitly fixed count (platform notes).
public func setBLASThreads(_ n: Int) { openblas_set_num_threads(Int32(max(1, n))) }
public func blasThreads() -> Int { Int(openblas_get_num_threads()) }
