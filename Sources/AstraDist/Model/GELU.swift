import Foundation

/// GELU in the exact erf form (PyTorch's default `nn.GELU()`): `f(x) = x Φ(x)`, with
/// `f'(x) = Φ(x) + x φ(x)` and `f''(x) = φ(x)(2 − x²)` (φ, Φ the standard normal density and
/// distribution). Evaluated in Double per element, so Float and Double networks agree to
/// Float rounding.
enum GELU {
    static let inverseSqrt2 = 1 / 2.0.squareRoot()
    static let inverseSqrt2Pi = 1 / (2 * Double.pi).squareRoot()

    @inline(__always) static func value(_ x: Double) -> Double { 0.5 * x * (1 + erf(x * inverseSqrt2)) }
    @inline(__always) static func density(_ x: Double) -> Double { inverseSqrt2Pi * exp(-0.5 * x * x) }
    @inline(__always) static func derivative(_ x: Double) -> Double { 0.5 * (1 + erf(x * inverseSqrt2)) + x * density(x) }
    @inline(__always) static func secondDerivative(_ x: Double) -> Double { density(x) * (2 - x * x) }
}

/// `dst[k] = f(src[k])` for k < n.
func geluForward<T: BLASScalar>(_ src: UnsafePointer<T>, _ dst: UnsafeMutablePointer<T>, count n: Int) {
    for k in 0..<n { dst[k] = T(GELU.value(src[k].asDouble)) }
}

/// `out[k] = f'(pre[k])·grad[k]` for k < n.
func geluBackward<T: BLASScalar>(pre: UnsafePointer<T>, grad: UnsafePointer<T>, out: UnsafeMutablePointer<T>, count n: Int) {
    for k in 0..<n { out[k] = T(GELU.derivative(pre[k].asDouble) * grad[k].asDouble) }
}

/// `out[b,q,j] = f'(s[b,j])·t[b,q,j]` (t, out B×(Q·width), s B×width; `out` may be `t`).
func geluTangent<T: BLASScalar>(_ t: UnsafePointer<T>, pre s: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, batch: Int, queries: Int, width: Int) {
    withUnsafeTemporaryAllocation(of: Double.self, capacity: width) { d in
        for b in 0..<batch {
            for j in 0..<width { d[j] = GELU.derivative(s[b * width + j].asDouble) }
            for q in 0..<queries {
                let row = (b * queries + q) * width
                for j in 0..<width { out[row + j] = T(d[j] * t[row + j].asDouble) }
            }
        }
    }
}

/// The R-operator of the backward pass through GELU for Q directions:
/// `out[b,q,j] = f'(s)·r[b,q,j] + f''(s)·t[b,q,j]·g[b,j]`, with r the directional derivative
/// of the output gradient, t the forward tangent of the input and g the output gradient.
/// `out` may be `t` (each element is read before it is written).
func geluHessianTranspose<T: BLASScalar>(_ r: UnsafePointer<T>, pre s: UnsafePointer<T>, outputGradient g: UnsafePointer<T>, tangent t: UnsafePointer<T>,
                                         into out: UnsafeMutablePointer<T>, batch: Int, queries: Int, width: Int) {
    for b in 0..<batch {
        for q in 0..<queries {
            let row = (b * queries + q) * width
            for j in 0..<width {
                let x = s[b * width + j].asDouble
                out[row + j] = T(GELU.derivative(x) * r[row + j].asDouble + GELU.secondDerivative(x) * t[row + j].asDouble * g[b * width + j].asDouble)
            }
        }
    }
}
