@testable import AstraDist
import XCTest

/// The Float im2col/col2im move patch runs as 8-value vectors (Conv2dPatches.swift); the
/// conformance tests run in Double, which takes the scalar path. Here the Float results must
/// equal the Double ones exactly (both are copies and sums in the same order of values that
/// are exact in Float), for kernels around the vector width, and nothing may be written past
/// the rows: a guard after the buffer stays untouched (a 1×1 or 3×3 kernel once overwrote it).
final class ConvPatchesTests: XCTestCase {
    static let layers = [
        Conv2dLayer(channels: 16, height: 1, width: 1, filters: 4, kernel: 1, bias: false),   // ResNet-9's head
        Conv2dLayer(channels: 5, height: 6, width: 5, filters: 3, kernel: 3, padding: 1),
        Conv2dLayer(channels: 3, height: 7, width: 7, filters: 2, kernel: 3, stride: 2),
        Conv2dLayer(channels: 2, height: 9, width: 8, filters: 2, kernel: 5, stride: 2, padding: 2),
        Conv2dLayer(channels: 1, height: 8, width: 8, filters: 2, kernel: 7, padding: 3),
        Conv2dLayer(channels: 2, height: 9, width: 9, filters: 2, kernel: 8, padding: 1),
        Conv2dLayer(channels: 2, height: 9, width: 9, filters: 2, kernel: 9),
    ]
    static let guardCount = 16, guardValue: Float = 12345

    /// Small integers (exact in Float, and their sums too).
    static func values(_ n: Int, seed: Int) -> [Double] { (0..<n).map { Double(($0 * 7 + seed * 13) % 11) - 5 } }

    func testFloatPatchesEqualDoubleAndStayInTheirRows() {
        for layer in Self.layers {
            let examples = 3, k = layer.inputFactorDimension, rowCount = examples * layer.positions * k
            let image = Self.values(examples * layer.inputWidth, seed: layer.kernel)
            var rowsD = [Double](repeating: 0, count: rowCount)
            var rowsF = [Float](repeating: 0, count: rowCount + Self.guardCount)
            for i in rowCount..<rowsF.count { rowsF[i] = Self.guardValue }
            let imageF = image.map(Float.init)
            image.withUnsafeBufferPointer { x in rowsD.withUnsafeMutableBufferPointer { r in
                layer.im2col(x.baseAddress!, exampleStride: layer.inputWidth, examples: examples, into: r.baseAddress!, ld: k, one: layer.bias)
            } }
            imageF.withUnsafeBufferPointer { x in rowsF.withUnsafeMutableBufferPointer { r in
                layer.im2col(x.baseAddress!, exampleStride: layer.inputWidth, examples: examples, into: r.baseAddress!, ld: k, one: layer.bias)
            } }
            XCTAssertEqual(rowsF.prefix(rowCount).map(Double.init), rowsD, "im2col, kernel \(layer.kernel)")
            XCTAssertTrue(rowsF.suffix(Self.guardCount).allSatisfy { $0 == Self.guardValue }, "im2col wrote past its rows, kernel \(layer.kernel)")

            let patchRows = Self.values(examples * layer.positions * layer.patch, seed: layer.kernel + 1)
            var outD = [Double](repeating: 0, count: examples * layer.inputWidth)
            var outF = [Float](repeating: 0, count: outD.count + Self.guardCount)
            for i in outD.count..<outF.count { outF[i] = Self.guardValue }
            let patchRowsF = patchRows.map(Float.init)
            patchRows.withUnsafeBufferPointer { r in outD.withUnsafeMutableBufferPointer { o in
                layer.col2im(r.baseAddress!, ld: layer.patch, examples: examples, into: o.baseAddress!, exampleStride: layer.inputWidth)
            } }
            patchRowsF.withUnsafeBufferPointer { r in outF.withUnsafeMutableBufferPointer { o in
                layer.col2im(r.baseAddress!, ld: layer.patch, examples: examples, into: o.baseAddress!, exampleStride: layer.inputWidth)
            } }
            XCTAssertEqual(outF.prefix(outD.count).map(Double.init), outD, "col2im, kernel \(layer.kernel)")
            XCTAssertTrue(outF.suffix(Self.guardCount).allSatisfy { $0 == Self.guardValue }, "col2im wrote past its images, kernel \(layer.kernel)")
        }
    }
}
