/// im2col for the rows `Conv2dLayer` keeps (PyTorch's column order), through a zero-padded
/// channel-major copy of one image at a time (`planes`: plane c is (H + 2p)×(W + 2p), the image at offset (p, p)). In
/// it the k values of one kernel row of a patch, (c, i, j = 0..<k), are contiguous, so a patch
/// row in PyTorch's (c, i, j) order is C·k plain runs of k values with no bounds test (the
/// border holds real zeros). The per-value closure and padding test of a tap-by-tap loop made
/// these copies 60% of a CNN training step. For Float and k ≤ 8 a run moves as one 8-value
/// vector: a copy also writes the next 8 − k columns, which the next run overwrites (so a run
/// with fewer than 8 columns of the patch left, e.g. every run of a 1×1 kernel near the end,
/// is copied value by value: nothing is ever written past a row's patch). Scratch patches
/// and the adjoint (col2im) use the tap order of Conv2dTapPatches.swift.
extension Conv2dLayer {
    var paddedHeight: Int { height + 2 * padding }
    var paddedWidth: Int { width + 2 * padding }
    /// Values of one image's padded planes, C·(H + 2p)·(W + 2p).
    var planeCount: Int { channels * paddedHeight * paddedWidth }

    /// Runs `body` with a zeroed scratch of `planeCount` values (on the stack when small).
    @inline(__always)
    func withPlanes<T: BLASScalar>(_: T.Type, _ body: (UnsafeMutablePointer<T>) -> Void) {
        // 8 values of slack: a vector run read at the end of the last plane row stays inside.
        withUnsafeTemporaryAllocation(of: T.self, capacity: planeCount + 8) { buffer in
            let planes = buffer.baseAddress!
            planes.initialize(repeating: 0, count: planeCount + 8)
            body(planes)
        }
    }

    /// `planes[c][y + p][x + p] = image[y, x, c]` (the border is not written).
    @inline(__always)
    func spread<T: BLASScalar>(_ image: UnsafePointer<T>, into planes: UnsafeMutablePointer<T>) {
        let c = channels, pw = paddedWidth, plane = paddedHeight * pw
        for y in 0..<height {
            let src = image + y * width * c, dst = planes + (y + padding) * pw + padding
            if c == 1 { dst.update(from: src, count: width); continue }
            for x in 0..<width { for ch in 0..<c { dst[ch * plane + x] = src[x * c + ch] } }
        }
    }

    /// Patches of `examples` images (image e at `input + e·exampleStride`) into rows of `ld`
    /// values (row (e·T + t)): columns (c, i, j), then a 1 at column `patch` if `one`.
    func im2col<T: BLASScalar>(_ input: UnsafePointer<T>, exampleStride: Int, examples: Int, into rows: UnsafeMutablePointer<T>, ld: Int, one: Bool) {
        let k = kernel, pw = paddedWidth, plane = paddedHeight * pw, ow = outWidth, t = positions
        let vector = T.self == Float.self && k <= 8
        withPlanes(T.self) { planes in
            for e in 0..<examples {
                spread(input + e * exampleStride, into: planes)
                let r = rows + e * t * ld
                for oy in 0..<outHeight {
                    for ox in 0..<ow {
                        let row = r + (oy * ow + ox) * ld
                        var column = row, corner = UnsafePointer(planes) + oy * stride * pw + ox * stride
                        let end = row + patch
                        for _ in 0..<channels {
                            var src = corner
                            for _ in 0..<k {
                                if vector && end - column >= 8 {
                                    UnsafeMutableRawPointer(column).storeBytes(of: UnsafeRawPointer(src).loadUnaligned(as: SIMD8<Float>.self), as: SIMD8<Float>.self)
                                } else {
                                    for j in 0..<k { column[j] = src[j] }
                                }
                                column += k; src += pw
                            }
                            corner += plane
                        }
                        if one { row[patch] = 1 }
                    }
                }
            }
        }
    }
}
