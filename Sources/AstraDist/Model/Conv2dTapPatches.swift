/// Patches of `Conv2dLayer` in its internal tap order, columns (i, j, c), for scratch that
/// never leaves a call: the patches of the input tangents in a GGN product and the patch
/// gradients `Ds W` of an input gradient. A zero-padded copy of one image in the values' own
/// (y, x, c) layout makes the k·C values of kernel row i of a patch contiguous, so a row is
/// k runs of k·C values (5 runs of 40 for a 5×5 kernel over 8 channels, against C·k runs of
/// k in PyTorch's order), and padding an image is a copy of its rows, not a transpose. The
/// kernel is permuted to the same order (`withTapKernel`), so `patches · Wᵀ` holds the same
/// products (summed in another order) and `col2im(Ds W)` the very same sums: each pixel
/// still receives its terms position by position. Rows that are kept (`makeRows`: the
/// factors, gradients and scores read them) stay in PyTorch's order (Conv2dPatches.swift).
extension Conv2dLayer {
    /// Values of one zero-padded image in (y, x, c) layout, (H + 2p)·(W + 2p)·C.
    var paddedImageCount: Int { paddedHeight * paddedWidth * channels }

    /// Runs `body` with a zeroed padded image of `paddedImageCount` values (on the stack when small).
    @inline(__always)
    func withPaddedImage<T: BLASScalar>(_: T.Type, _ body: (UnsafeMutablePointer<T>) -> Void) {
        withUnsafeTemporaryAllocation(of: T.self, capacity: paddedImageCount) { buffer in
            let padded = buffer.baseAddress!
            padded.initialize(repeating: 0, count: paddedImageCount)
            body(padded)
        }
    }

    /// `body(kernel)` with the O×(C·k·k) weight part of `w` (O rows of `ld` values, the bias
    /// skipped) in tap order: `kernel[o][(i·k + j)·C + c] = w[o][(c·k + i)·k + j]`.
    func withTapKernel<T: BLASScalar>(_ w: UnsafePointer<T>, ld: Int, _ body: (UnsafePointer<T>) -> Void) {
        let k = kernel, c = channels, pk = patch
        let tapKernel = UnsafeMutablePointer<T>.allocate(capacity: filters * pk)
        defer { tapKernel.deallocate() }
        for o in 0..<filters {
            for ch in 0..<c { for i in 0..<k { for j in 0..<k { tapKernel[o * pk + (i * k + j) * c + ch] = w[o * ld + (ch * k + i) * k + j] } } }
        }
        body(UnsafePointer(tapKernel))
    }

    /// Offset of padded pixel (y, x) in the padded image.
    @inline(__always)
    func paddedOffset(_ y: Int, _ x: Int) -> Int { (y * paddedWidth + x) * channels }
    /// Offset in the padded image of kernel row i of the patch under output position (oy, ox).
    @inline(__always)
    func tapRowOffset(_ oy: Int, _ ox: Int, _ i: Int) -> Int { paddedOffset(oy * stride + i, ox * stride) }

    /// Patches of `examples` images (image e at `input + e·exampleStride`) into rows of
    /// `patch` values in tap order (row e·T + t; no bias column).
    func tapPatches<T: BLASScalar>(_ input: UnsafePointer<T>, exampleStride: Int, examples: Int, into rows: UnsafeMutablePointer<T>) {
        let k = kernel, run = kernel * channels, pk = patch
        withPaddedImage(T.self) { padded in
            for e in 0..<examples {
                let image = input + e * exampleStride
                copyIntoPadded(image, height: height, width: width, channels: channels, padding: padding, into: padded)
                var row = rows + e * positions * pk
                for oy in 0..<outHeight {
                    for ox in 0..<outWidth {
                        for i in 0..<k { copyRun(padded + tapRowOffset(oy, ox, i), to: row + i * run, count: run) }
                        row += pk
                    }
                }
            }
        }
    }

    /// The adjoint of `tapPatches`: each row's values go back onto the pixels they came from,
    /// image e at `out + e·exampleStride`, added to it if `accumulate`, else overwriting it.
    /// Every pixel receives its terms position by position, summed from zero.
    func addTapPatches<T: BLASScalar>(_ rows: UnsafePointer<T>, examples: Int, into out: UnsafeMutablePointer<T>, exampleStride: Int, accumulate: Bool) {
        let k = kernel, run = kernel * channels, pk = patch, rowValues = width * channels
        withPaddedImage(T.self) { padded in
            for e in 0..<examples {
                if e > 0 { padded.update(repeating: 0, count: paddedImageCount) }
                var row = rows + e * positions * pk
                for oy in 0..<outHeight {
                    for ox in 0..<outWidth {
                        for i in 0..<k { copyRun(row + i * run, to: padded + tapRowOffset(oy, ox, i), count: run, adding: true) }
                        row += pk
                    }
                }
                let image = out + e * exampleStride
                for y in 0..<height {
                    let src = UnsafePointer(padded) + paddedOffset(y + padding, padding), dst = image + y * rowValues
                    copyRun(src, to: dst, count: rowValues, adding: accumulate)
                }
            }
        }
    }
}

/// `padded[y + p][x + p][c] = image[y, x, c]` for an H×W×C image and a padded image of
/// (H + 2p)×(W + 2p)×C (the border is not written): one row copy per image row.
@inline(__always)
func copyIntoPadded<T: BLASScalar>(_ image: UnsafePointer<T>, height: Int, width: Int, channels: Int, padding: Int, into padded: UnsafeMutablePointer<T>) {
    let rowValues = width * channels, paddedRow = (width + 2 * padding) * channels
    for y in 0..<height { copyRun(image + y * rowValues, to: padded + (y + padding) * paddedRow + padding * channels, count: rowValues) }
}

/// `dst[0..<n] = src[0..<n]`, or with `adding` `dst[0..<n] += src[0..<n]` (the same sums as
/// a scalar loop), inline (a `memmove` call per short run was 12% of an ASTRA solve on the
/// CNN), Float in 8-value vectors. The ranges must not overlap.
@inline(__always)
func copyRun<T: BLASScalar>(_ src: UnsafePointer<T>, to dst: UnsafeMutablePointer<T>, count n: Int, adding: Bool = false) {
    var i = 0
    if T.self == Float.self {
        let s = UnsafeRawPointer(src), d = UnsafeMutableRawPointer(dst)
        while i + 8 <= n {
            var v = s.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
            if adding { v += d.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self) }
            d.storeBytes(of: v, toByteOffset: 4 * i, as: SIMD8<Float>.self)
            i += 8
        }
    }
    while i < n { dst[i] = adding ? dst[i] + src[i] : src[i]; i += 1 }
}
