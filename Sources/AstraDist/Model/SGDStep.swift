/// The optimiser step of `Trainer`, with an explicit SIMD path for Float (the scalar loop does
/// not auto-vectorise: Swift pointers may alias).

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
