/// The residual add `y = x + v_j` (`NetworkOperation.residual(from: j)`) is linear in both
/// inputs: its forward tangent is `t_x + t_j`, its transpose hands the output cotangent to
/// both (the input unchanged, and added into value j's cotangent once the backward walk has
/// computed it), and its R-operator adds no second-derivative term.

/// `out[k] = a[k] + b[k]` for k < n; `out` may be `a` (accumulating the skip's cotangent).
@inline(__always)
func addResidual<T: BLASScalar>(_ a: UnsafePointer<T>, _ b: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, count n: Int) {
    var k = 0
    if T.self == Float.self {
        let pa = UnsafeRawPointer(a), pb = UnsafeRawPointer(b), po = UnsafeMutableRawPointer(out)
        while k + 16 <= n {
            let v = pa.loadUnaligned(fromByteOffset: 4 * k, as: SIMD16<Float>.self) + pb.loadUnaligned(fromByteOffset: 4 * k, as: SIMD16<Float>.self)
            po.storeBytes(of: v, toByteOffset: 4 * k, as: SIMD16<Float>.self)
            k += 16
        }
    }
    while k < n { out[k] = a[k] + b[k]; k += 1 }
}
