@testable import AstraDist
import XCTest

/// The Float im2col, tap-order patches and their adjoint move runs as 8-value vectors
/// (Conv2dPatches.swift, Conv2dTapPatches.swift); the
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

        }
    }

    /// The scratch patches in tap order (Conv2dTapPatches.swift): a column permutation of
    /// PyTorch's rows, Float equal to Double, nothing past the rows; their adjoint equals
    /// Float and Double, overwrites or adds, stays in its images and is the transpose
    /// (⟨patches(x), r⟩ = ⟨x, adjoint(r)⟩, exact on small integers).
    func testTapPatchesPermutePyTorchColumnsAndTheirAdjointIsTheTranspose() {
        for layer in Self.layers {
            let examples = 3, k = layer.kernel, c = layer.channels, pk = layer.patch, rowCount = examples * layer.positions * pk
            let image = Self.values(examples * layer.inputWidth, seed: layer.kernel)
            var torchRows = [Double](repeating: 0, count: rowCount), tapD = torchRows
            var tapF = [Float](repeating: 0, count: rowCount + Self.guardCount)
            for i in rowCount..<tapF.count { tapF[i] = Self.guardValue }
            image.withUnsafeBufferPointer { x in
                torchRows.withUnsafeMutableBufferPointer { layer.im2col(x.baseAddress!, exampleStride: layer.inputWidth, examples: examples, into: $0.baseAddress!, ld: pk, one: false) }
                tapD.withUnsafeMutableBufferPointer { layer.tapPatches(x.baseAddress!, exampleStride: layer.inputWidth, examples: examples, into: $0.baseAddress!) }
            }
            image.map(Float.init).withUnsafeBufferPointer { x in
                tapF.withUnsafeMutableBufferPointer { layer.tapPatches(x.baseAddress!, exampleStride: layer.inputWidth, examples: examples, into: $0.baseAddress!) }
            }
            for r in 0..<(examples * layer.positions) {
                for ch in 0..<c { for i in 0..<k { for j in 0..<k {
                    XCTAssertEqual(tapD[r * pk + (i * k + j) * c + ch], torchRows[r * pk + (ch * k + i) * k + j], "tap order, kernel \(k), row \(r)")
                } } }
            }
            XCTAssertEqual(tapF.prefix(rowCount).map(Double.init), tapD, "tap patches, kernel \(k)")
            XCTAssertTrue(tapF.suffix(Self.guardCount).allSatisfy { $0 == Self.guardValue }, "tap patches wrote past their rows, kernel \(k)")

            let patchRows = Self.values(rowCount, seed: k + 1), prior = Self.values(examples * layer.inputWidth, seed: k + 2)
            var outD = prior, addedD = prior
            var outF = prior.map(Float.init) + [Float](repeating: Self.guardValue, count: Self.guardCount)
            patchRows.withUnsafeBufferPointer { r in
                outD.withUnsafeMutableBufferPointer { layer.addTapPatches(r.baseAddress!, examples: examples, into: $0.baseAddress!, exampleStride: layer.inputWidth, accumulate: false) }
                addedD.withUnsafeMutableBufferPointer { layer.addTapPatches(r.baseAddress!, examples: examples, into: $0.baseAddress!, exampleStride: layer.inputWidth, accumulate: true) }
            }
            patchRows.map(Float.init).withUnsafeBufferPointer { r in
                outF.withUnsafeMutableBufferPointer { layer.addTapPatches(r.baseAddress!, examples: examples, into: $0.baseAddress!, exampleStride: layer.inputWidth, accumulate: false) }
            }
            XCTAssertEqual(outF.prefix(outD.count).map(Double.init), outD, "tap adjoint, kernel \(k)")
            XCTAssertTrue(outF.suffix(Self.guardCount).allSatisfy { $0 == Self.guardValue }, "tap adjoint wrote past its images, kernel \(k)")
            XCTAssertEqual(addedD, zip(prior, outD).map { $0 + $1 }, "tap adjoint, accumulate, kernel \(k)")
            let lhs = zip(tapD, patchRows).reduce(0.0) { $0 + $1.0 * $1.1 }, rhs = zip(image, outD).reduce(0.0) { $0 + $1.0 * $1.1 }
            XCTAssertEqual(lhs, rhs, "tap adjoint is the transpose, kernel \(k)")
            XCTAssertNotEqual(lhs, 0, "a test that cannot fail: the inner product must not vanish, kernel \(k)")
        }
    }
}
