import CConvKernels

/// A max-pool over windows of an image in the (position, channel) layout of `Conv2dLayer`
/// (`[y, x, c]` per example), no padding (PyTorch's `nn.MaxPool2d(kernel, stride)`); a
/// global max-pool is the window of the whole image.
public struct MaxPool2d: Equatable, Sendable {
    public let channels: Int
    public let height: Int
    public let width: Int
    public let windowHeight: Int
    public let windowWidth: Int
    public let stride: Int

    /// Square windows of side `kernel`. Precondition: positive sizes, the window fits.
    public init(channels: Int, height: Int, width: Int, kernel: Int, stride: Int) {
        self.init(channels: channels, height: height, width: width, windowHeight: kernel, windowWidth: kernel, stride: stride)
    }
    /// The whole image per channel (`AdaptiveMaxPool2d(1)`): output C values.
    public static func global(channels: Int, height: Int, width: Int) -> MaxPool2d {
        MaxPool2d(channels: channels, height: height, width: width, windowHeight: height, windowWidth: width, stride: 1)
    }
    private init(channels: Int, height: Int, width: Int, windowHeight: Int, windowWidth: Int, stride: Int) {
        precondition(channels > 0 && height > 0 && width > 0 && windowHeight > 0 && windowWidth > 0 && stride > 0, "MaxPool2d: sizes must be positive")
        precondition(windowHeight <= height && windowWidth <= width, "MaxPool2d: window larger than the \(height)×\(width) image")
        self.channels = channels; self.height = height; self.width = width
        self.windowHeight = windowHeight; self.windowWidth = windowWidth; self.stride = stride
    }

    public var outHeight: Int { (height - windowHeight) / stride + 1 }
    public var outWidth: Int { (width - windowWidth) / stride + 1 }
    public var inputWidth: Int { height * width * channels }
    public var outputWidth: Int { outHeight * outWidth * channels }

    /// `y[o]` = the maximum of output o's window, for one example's input `x`. Channels are
    /// contiguous, so each window tap is one vectorisable pass over C values.
    @inline(__always)
    func maxima<T: BLASScalar>(_ x: UnsafePointer<T>, into y: UnsafeMutablePointer<T>) {
        for oy in 0..<outHeight {
            for ox in 0..<outWidth {
                let corner = x + (oy * stride * width + ox * stride) * channels, yo = y + (oy * outWidth + ox) * channels
                yo.update(from: corner, count: channels)
                for i in 0..<windowHeight {
                    for j in 0..<windowWidth where i > 0 || j > 0 {
                        let at = corner + (i * width + j) * channels
                        // Selects, not branches: a maximum's position is data-dependent.
                        for c in 0..<channels { let v = at[c], m = yo[c]; yo[c] = v > m ? v : m }
                    }
                }
            }
        }
    }

    /// `best[o]` = the input index of output o's window maximum for one example's input `x`
    /// (ties: the first in row-major window order); `value` is scratch of `channels` values.
    @inline(__always)
    func argmaxima<T: BLASScalar>(_ x: UnsafePointer<T>, into best: UnsafeMutablePointer<Int>, value: UnsafeMutablePointer<T>) {
        for oy in 0..<outHeight {
            for ox in 0..<outWidth {
                let corner = (oy * stride * width + ox * stride) * channels, bo = best + (oy * outWidth + ox) * channels
                for c in 0..<channels { value[c] = x[corner + c]; bo[c] = corner + c }
                for i in 0..<windowHeight {
                    for j in 0..<windowWidth where i > 0 || j > 0 {
                        let at = corner + (i * width + j) * channels
                        for c in 0..<channels {
                            let v = x[at + c], m = value[c], better = v > m
                            value[c] = better ? v : m
                            bo[c] = better ? at + c : bo[c]
                        }
                    }
                }
            }
        }
    }

    /// Whether every input lies in at most one window (stride ≥ window along each axis that
    /// has more than one), as in `MaxPool2d(2)` and the global pool.
    var windowsDisjoint: Bool { (stride >= windowHeight || outHeight == 1) && (stride >= windowWidth || outWidth == 1) }

    /// Whether the training backward pass (Q = 1) runs the C kernel
    /// `astra_maxpool_backward_disjoint` (Float, AVX-512, disjoint windows): the argmax
    /// scatter's values without its index arrays (3× faster in CNN training).
    func directBackward<T: BLASScalar>(_: T.Type) -> Bool { T.self == Float.self && Conv2dLayer.directKernels && windowsDisjoint }

    /// Runs `body(argmax of example b)` for each of `batch` examples of `pre` (one index buffer).
    @inline(__always)
    func forEachArgmax<T: BLASScalar>(_ pre: UnsafePointer<T>, batch: Int, _ body: (Int, UnsafePointer<Int>) -> Void) {
        withUnsafeTemporaryAllocation(of: Int.self, capacity: outputWidth) { best in
            withUnsafeTemporaryAllocation(of: T.self, capacity: channels) { value in
                for b in 0..<batch {
                    argmaxima(pre + b * inputWidth, into: best.baseAddress!, value: value.baseAddress!)
                    body(b, UnsafePointer(best.baseAddress!))
                }
            }
        }
    }
}

/// Parameter-free operations that are linear given their input's pattern (piecewise
/// linear), so their second derivative is zero wherever it exists and the R-operator of
/// their backward pass is their transpose: max-pools, `Flatten` and a constant `Scale`.
/// Each provides forward, the Jacobian-vector product of Q tangents and its transpose
/// (the backward pass is the transpose with Q = 1). Adding one: a case here, its coding in
/// `NetworkOperation`, an entry in `OperationConformanceTests`.
public enum SpatialOperation: Equatable, Sendable {
    case maxPool(MaxPool2d)
    case globalMaxPool(MaxPool2d)
    /// (position, channel) `[y, x, c]` to PyTorch's NCHW order `[c, y, x]`, so a PyTorch
    /// linear head after `nn.Flatten()` lines up.
    case flatten(channels: Int, height: Int, width: Int)
    /// `y = factor·x` (any width).
    case scale(Double)

    /// The input width the operation requires (nil: any; the width is kept).
    public var requiredInputWidth: Int? {
        switch self {
        case .maxPool(let p), .globalMaxPool(let p): p.inputWidth
        case .flatten(let c, let h, let w): c * h * w
        case .scale: nil
        }
    }
    public func outputWidth(input: Int) -> Int {
        switch self {
        case .maxPool(let p), .globalMaxPool(let p): p.outputWidth
        case .flatten, .scale: input
        }
    }

    /// `y = f(x)` for B examples of `width` inputs.
    func forward<T: BLASScalar>(_ x: UnsafePointer<T>, into y: UnsafeMutablePointer<T>, batch: Int, width: Int) {
        switch self {
        case .maxPool(let p), .globalMaxPool(let p):
            for b in 0..<batch { p.maxima(x + b * p.inputWidth, into: y + b * p.outputWidth) }
        case .flatten(let c, let h, let w):
            for b in 0..<batch { permuteToChannelMajor(x + b * width, into: y + b * width, channels: c, pixels: h * w, inverse: false) }
        case .scale(let factor):
            let s = T(factor)
            for k in 0..<(batch * width) { y[k] = s * x[k] }
        }
    }

    /// `out[b,q] = J(pre_b) t[b,q]` for Q tangents (t B×(Q·width), out B×(Q·outputWidth)).
    func tangent<T: BLASScalar>(_ t: UnsafePointer<T>, pre: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, batch: Int, queries: Int, width: Int) {
        switch self {
        case .maxPool(let p), .globalMaxPool(let p):
            let iw = p.inputWidth, ow = p.outputWidth
            p.forEachArgmax(pre, batch: batch) { b, best in
                for q in 0..<queries {
                    let tq = t + (b * queries + q) * iw, oq = out + (b * queries + q) * ow
                    for o in 0..<ow { oq[o] = tq[best[o]] }
                }
            }
        case .flatten, .scale:
            // Independent of the input: the forward map itself, on B·Q examples.
            forward(t, into: out, batch: batch * queries, width: width)
        }
    }

    /// `out[b,q] = J(pre_b)ᵀ g[b,q]` (g B×(Q·outputWidth), out B×(Q·width)): the backward
    /// pass (Q = 1), the transposed walk and, the second derivative being zero, the R-operator.
    func transpose<T: BLASScalar>(_ g: UnsafePointer<T>, pre: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, batch: Int, queries: Int, width: Int) {
        switch self {
        case .maxPool(let p), .globalMaxPool(let p):
            let iw = p.inputWidth, ow = p.outputWidth
            if queries == 1 && p.directBackward(T.self) {
                let f = { (q: UnsafePointer<T>) in UnsafeRawPointer(q).assumingMemoryBound(to: Float.self) }
                let o = UnsafeMutableRawPointer(out).assumingMemoryBound(to: Float.self)
                for b in 0..<batch {
                    astra_maxpool_backward_disjoint(f(pre + b * iw), f(g + b * ow), o + b * iw, p.height, p.width, p.channels,
                                                    p.windowHeight, p.windowWidth, p.stride)
                }
                return
            }
            p.forEachArgmax(pre, batch: batch) { b, best in
                for q in 0..<queries {
                    let gq = g + (b * queries + q) * ow, oq = out + (b * queries + q) * iw
                    // Zeroed here, not all B·Q at once: the image is still in L1 for the adds.
                    oq.initialize(repeating: 0, count: iw)
                    for o in 0..<ow { oq[best[o]] += gq[o] }
                }
            }
        case .flatten(let c, let h, let w):
            for e in 0..<(batch * queries) { permuteToChannelMajor(g + e * width, into: out + e * width, channels: c, pixels: h * w, inverse: true) }
        case .scale:
            forward(g, into: out, batch: batch * queries, width: width)
        }
    }
}

/// `out[c·P + p] = x[p·C + c]` (or the inverse permutation) for one example of P pixels.
@inline(__always)
private func permuteToChannelMajor<T: BLASScalar>(_ x: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, channels: Int, pixels: Int, inverse: Bool) {
    for p in 0..<pixels {
        for c in 0..<channels {
            if inverse { out[p * channels + c] = x[c * pixels + p] } else { out[c * pixels + p] = x[p * channels + c] }
        }
    }
}
