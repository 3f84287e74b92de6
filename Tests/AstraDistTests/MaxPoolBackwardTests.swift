import XCTest
@testable import AstraDist

/// The training backward pass of a max-pool with disjoint windows (the C kernel, Q = 1)
/// against the index-array path every other caller uses (Q > 1): bit for bit, with ties,
/// signed zeros and NaN inputs, so the fast path leaves every trained model unchanged.
final class MaxPoolBackwardTests: XCTestCase {
    func testDisjointBackwardEqualsTheArgmaxScatterBitForBit() throws {
        try XCTSkipUnless(Conv2dLayer.directKernels, "the kernel needs AVX-512 (this CPU runs the index-array path for Q = 1 too)")
        let pools = [MaxPool2d(channels: 3, height: 5, width: 4, kernel: 2, stride: 2),
                     MaxPool2d(channels: 16, height: 6, width: 6, kernel: 3, stride: 3),
                     // The kernel's 16-, 8- and masked-lane runs: 24 = 16 + 8, 11 = 8 + 3.
                     MaxPool2d(channels: 24, height: 4, width: 4, kernel: 2, stride: 2),
                     MaxPool2d(channels: 11, height: 4, width: 6, kernel: 2, stride: 2),
                     .global(channels: 2, height: 3, width: 3)]
        for pool in pools {
            XCTAssertTrue(pool.directBackward(Float.self))
            let op = SpatialOperation.maxPool(pool), iw = pool.inputWidth, ow = pool.outputWidth, b = 4
            // Few distinct values, so that windows hold ties; then a NaN, -0 and +0.
            var x = OperationConformanceTests.random(b * iw, seed: 60).map { Float(($0 * 2).rounded()) / 2 }
            x[0] = .nan; x[pool.channels] = .nan; x[pool.channels + 2] = .nan; x[1] = -0.0; x[pool.channels + 1] = 0.0
            let g = OperationConformanceTests.random(b * ow, seed: 61).map { Float($0) }
            var g2: [Float] = []
            for e in 0..<b { let one = Array(g[(e * ow)..<((e + 1) * ow)]); g2 += one; g2 += one }
            var fast = [Float](repeating: .nan, count: b * iw), scatter = [Float](repeating: .nan, count: 2 * b * iw)
            op.transpose(g, pre: x, into: &fast, batch: b, queries: 1, width: iw)
            op.transpose(g2, pre: x, into: &scatter, batch: b, queries: 2, width: iw)
            for e in 0..<b {
                for i in 0..<iw {
                    XCTAssertEqual(fast[e * iw + i].bitPattern, scatter[2 * e * iw + i].bitPattern, "\(pool): example \(e), input \(i)")
                }
            }
        }
    }
}
