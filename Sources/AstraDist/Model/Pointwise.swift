/// A parameter-free elementwise operation `v' = f(v)` of a network (width preserved). Each
/// provides its forward map, the vector-Jacobian and Jacobian-vector products (the same map:
/// the Jacobian is diagonal) and, for the exact Hessian, the R-operator of its backward pass
/// with the second-derivative term. Adding one: a kernel file (like `ReLU.swift`), a case
/// here, and an entry in `OperationConformanceTests`.
public enum Pointwise: String, Codable, Sendable, CaseIterable {
    case relu
    /// Exact erf form (PyTorch's default `nn.GELU()`).
    case gelu

    /// `dst = f(src)`, n values.
    @inline(__always)
    func forward<T: BLASScalar>(_ src: UnsafePointer<T>, into dst: UnsafeMutablePointer<T>, count n: Int) {
        switch self {
        case .relu: reluForward(src, dst, count: n)
        case .gelu: geluForward(src, dst, count: n)
        }
    }

    /// `out = f'(pre) ∘ grad`, n values (the gradient with respect to the input).
    @inline(__always)
    func backward<T: BLASScalar>(pre: UnsafePointer<T>, grad: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, count n: Int) {
        switch self {
        case .relu: reluBackward(pre: pre, grad: grad, out: out, count: n)
        case .gelu: geluBackward(pre: pre, grad: grad, out: out, count: n)
        }
    }

    /// `out[b,q,:] = f'(pre[b,:]) ∘ t[b,q,:]` for Q tangents (or cotangents: the Jacobian is
    /// diagonal, so it is its own transpose); t, out B×(Q·width), pre B×width; `out` may be `t`.
    @inline(__always)
    func tangent<T: BLASScalar>(_ t: UnsafePointer<T>, pre: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, batch: Int, queries: Int, width: Int) {
        switch self {
        case .relu: reluTangent(t, pre: pre, into: out, batch: batch, queries: queries, width: width)
        case .gelu: geluTangent(t, pre: pre, into: out, batch: batch, queries: queries, width: width)
        }
    }

    /// R-operator of the backward pass along Q directions:
    /// `out = f'(pre) ∘ r + f''(pre) ∘ t ∘ g` (r the directional derivative of the output
    /// gradient, t the forward tangent of the input, g the output gradient B×width).
    /// `out` may be `t`. ReLU: f'' = 0 wherever it exists, so only the mask.
    @inline(__always)
    func hessianTranspose<T: BLASScalar>(_ r: UnsafePointer<T>, pre: UnsafePointer<T>, outputGradient g: UnsafePointer<T>, tangent t: UnsafePointer<T>,
                                         into out: UnsafeMutablePointer<T>, batch: Int, queries: Int, width: Int) {
        switch self {
        case .relu: reluTangent(r, pre: pre, into: out, batch: batch, queries: queries, width: width)
        case .gelu: geluHessianTranspose(r, pre: pre, outputGradient: g, tangent: t, into: out, batch: batch, queries: queries, width: width)
        }
    }
}
