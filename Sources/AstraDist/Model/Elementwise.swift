/// Elementwise kernels of the MLP. The scalar loops do not auto-vectorise (Swift pointers
/// may alias, and the select compiles to a branch), so Float takes an explicit SIMD path;
/// it was 25% of a Concrete training run before.

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

/// One PyTorch SGD step over n parameters: `g = grad + wd·θ; v = first ? g : m·v + g; θ −= lr·v`.
@inline(__always)
func sgdStep<T: BLASScalar>(theta: UnsafeMutablePointer<T>, grad: UnsafePointer<T>, velocity: UnsafeMutablePointer<T>, count n: Int,
                            lr: T, momentum: T, weightDecay: T, first: Bool) {
    let m: T = first ? 0 : momentum
    var k = 0
    if T.self == Float.self {
        let th = UnsafeMutableRawPointer(theta), g = UnsafeRawPointer(grad), v = UnsafeMutableRawPointer(velocity)
        let lrv = SIMD16<Float>(repeating: lr.asDouble == 0 ? 0 : Float(lr.asDouble))
        let mv = SIMD16<Float>(repeating: Float(m.asDouble)), wdv = SIMD16<Float>(repeating: Float(weightDecay.asDouble))
        while k + 16 <= n {
            let t = th.loadUnaligned(fromByteOffset: 4 * k, as: SIMD16<Float>.self)
            let gk = g.loadUnaligned(fromByteOffset: 4 * k, as: SIMD16<Float>.self) + wdv * t
            let vk = mv * v.loadUnaligned(fromByteOffset: 4 * k, as: SIMD16<Float>.self) + gk
            v.storeBytes(of: vk, toByteOffset: 4 * k, as: SIMD16<Float>.self)
            th.storeBytes(of: t - lrv * vk, toByteOffset: 4 * k, as: SIMD16<Float>.self)
            k += 16
        }
    }
    while k < n {
        let g = grad[k] + weightDecay * theta[k]
        velocity[k] = m * velocity[k] + g
        theta[k] -= lr * velocity[k]
        k += 1
    }
}
