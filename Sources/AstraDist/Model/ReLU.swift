/// ReLU `max(x, 0)`: its derivative is the mask `1[x > 0]` and its second derivative is 0
/// (the exact Hessian has no residual term from it). The scalar loops do not auto-vectorise
/// (Swift pointers may alias, and the select compiles to a branch), so Float takes an
/// explicit SIMD path; elementwise work was 25% of a Concrete training run before.

/// `dst[k] = max(src[k], 0)` for k < n.
@inline(__always)
func reluForward<T: BLASScalar>(_ src: UnsafePointer<T>, _ dst: UnsafeMutablePointer<T>, count n: Int) {
    var k = 0
    if T.self == Float.self {
        let s = UnsafeRawPointer(src), d = UnsafeMutableRawPointer(dst)
        while k + 16 <= n {
            let v = s.loadUnaligned(fromByteOffset: 4 * k, as: SIMD16<Float>.self)
            d.storeBytes(of: v.replacing(with: 0, where: v .< 0), toByteOffset: 4 * k, as: SIMD16<Float>.self)
            k += 16
        }
    }
    while k < n { let v = src[k]; dst[k] = v > 0 ? v : 0; k += 1 }
}

/// `out[k] = pre[k] > 0 ? grad[k] : 0` for k < n (ReLU derivative applied to a gradient).
@inline(__always)
func reluBackward<T: BLASScalar>(pre: UnsafePointer<T>, grad: UnsafePointer<T>, out: UnsafeMutablePointer<T>, count n: Int) {
    var k = 0
    if T.self == Float.self {
        let p = UnsafeRawPointer(pre), g = UnsafeRawPointer(grad), o = UnsafeMutableRawPointer(out)
        while k + 16 <= n {
            let v = p.loadUnaligned(fromByteOffset: 4 * k, as: SIMD16<Float>.self)
            let x = g.loadUnaligned(fromByteOffset: 4 * k, as: SIMD16<Float>.self)
            o.storeBytes(of: x.replacing(with: 0, where: v .<= 0), toByteOffset: 4 * k, as: SIMD16<Float>.self)
            k += 16
        }
    }
    while k < n { out[k] = pre[k] > 0 ? grad[k] : 0; k += 1 }
}


/// `out[b,q,j] = s[b,j] > 0 ? t[b,q,j] : 0` (the derivative broadcast over Q vectors; t and
/// out B×(Q·width), s B×width; `out` may be `t`). In place the scalar loop cannot vectorise
/// (the pointers are equal), so Float takes 16-value vectors; the select is exact either way.
@inline(__always)
func reluTangent<T: BLASScalar>(_ t: UnsafePointer<T>, pre s: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, batch: Int, queries: Int, width: Int) {
    for b in 0..<batch {
        let sb = s + b * width
        for q in 0..<queries {
            let tb = t + (b * queries + q) * width, ob = out + (b * queries + q) * width
            var j = 0
            if T.self == Float.self {
                let p = UnsafeRawPointer(sb), x = UnsafeRawPointer(tb), o = UnsafeMutableRawPointer(ob)
                while j + 16 <= width {
                    let v = p.loadUnaligned(fromByteOffset: 4 * j, as: SIMD16<Float>.self), g = x.loadUnaligned(fromByteOffset: 4 * j, as: SIMD16<Float>.self)
                    o.storeBytes(of: g.replacing(with: 0, where: .!(v .> 0)), toByteOffset: 4 * j, as: SIMD16<Float>.self)
                    j += 16
                }
            }
            while j < width { ob[j] = sb[j] > 0 ? tb[j] : 0; j += 1 }
        }
    }
}
