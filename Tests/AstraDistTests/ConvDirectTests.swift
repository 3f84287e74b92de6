@testable import AstraDist
import XCTest

/// The direct AVX-512 convolutions (Conv2dDirect.swift) run only in Float, so the
/// conformance tests (Double) never reach them: here a layer's Float forward pass, weight
/// gradient, tangent, block gradient, block input gradient and directional input gradient, which take the direct
/// kernels, must equal the Double ones (tap-order patches and BLAS) up to Float rounding, for
/// filter and channel counts of one group of 8 or 16 and several groups, widths past the
/// kernel's 14-position blocks and a stride of 2 (the tangent only: gradients need stride 1).
final class ConvDirectTests: XCTestCase {
    static let layers = [
        Conv2dLayer(channels: 8, height: 14, width: 14, filters: 16, kernel: 5, padding: 2),   // the CNN's conv2
        Conv2dLayer(channels: 16, height: 9, width: 20, filters: 8, kernel: 3, padding: 1),
        Conv2dLayer(channels: 24, height: 7, width: 17, filters: 40, kernel: 3, padding: 2),
        Conv2dLayer(channels: 8, height: 11, width: 11, filters: 24, kernel: 3, stride: 2),
    ]

    static func values(_ n: Int, seed: Int) -> [Double] { (0..<n).map { sin(Double($0 * 7 + seed * 13)) } }

    /// `body` on Double values and on the same values rounded to Float; returns both outputs.
    static func both(_ inputs: [[Double]], outputCount: Int, initial: [Double]? = nil,
                     _ body: (UnsafeMutablePointer<Double>, [UnsafePointer<Double>]) -> Void,
                     _ bodyF: (UnsafeMutablePointer<Float>, [UnsafePointer<Float>]) -> Void) -> ([Double], [Double]) {
        let rounded = inputs.map { $0.map { Double(Float($0)) } }
        var outD = (initial ?? [Double](repeating: 0, count: outputCount)).map { Double(Float($0)) }
        var outF = outD.map(Float.init)
        let pointersD = rounded.map { a -> UnsafeMutablePointer<Double> in let p = UnsafeMutablePointer<Double>.allocate(capacity: a.count); p.initialize(from: a, count: a.count); return p }
        let pointersF = rounded.map { a -> UnsafeMutablePointer<Float> in let p = UnsafeMutablePointer<Float>.allocate(capacity: a.count); p.initialize(from: a.map(Float.init), count: a.count); return p }
        defer { pointersD.forEach { $0.deallocate() }; pointersF.forEach { $0.deallocate() } }
        outD.withUnsafeMutableBufferPointer { body($0.baseAddress!, pointersD.map { UnsafePointer($0) }) }
        outF.withUnsafeMutableBufferPointer { bodyF($0.baseAddress!, pointersF.map { UnsafePointer($0) }) }
        return (outD, outF.map(Double.init))
    }

    func assertClose(_ r: ([Double], [Double]), _ label: String) {
        let scale = max(r.0.map(abs).max() ?? 0, 1e-30), diff = zip(r.0, r.1).map { abs($0 - $1) }.max() ?? 0
        XCTAssertGreaterThan(r.0.map(abs).max() ?? 0, 0.1, "\(label): a vanishing reference cannot fail")
        XCTAssertLessThan(diff / scale, 2e-5, "\(label): Float (direct) against Double (BLAS)")
    }

    func testDirectKernelsEqualTheBLASPath() throws {
        try XCTSkipUnless(Conv2dLayer.directKernels, "no AVX-512 on this CPU: the direct kernels never run")
        for layer in Self.layers {
            let b = 3, q = 2, net = NetworkLayer.conv2d(layer), p = layer.parameterCount, label = "conv \(layer.channels)→\(layer.filters) k\(layer.kernel) s\(layer.stride)"
            XCTAssertTrue(layer.directProducts(Float.self), label)
            let w = Self.values(p, seed: 1), dirs = Self.values(q * p, seed: 2), x = Self.values(b * layer.inputWidth, seed: 3)
            let da = Self.values(b * q * layer.inputWidth, seed: 4), ds = Self.values(b * q * layer.outputWidth, seed: 5)
            let rowCount = b * layer.positions * layer.inputFactorDimension
            assertClose(Self.both([x, w, dirs, da], outputCount: b * q * layer.outputWidth, { out, a in
                let rows = UnsafeMutablePointer<Double>.allocate(capacity: rowCount); defer { rows.deallocate() }
                net.makeRows(input: a[0], batch: b, into: rows)
                net.tangent(abar: rows, da: a[3], directions: a[2], weights: a[1], ds: out, batch: b, queries: q)
            }, { out, a in
                let rows = UnsafeMutablePointer<Float>.allocate(capacity: rowCount); defer { rows.deallocate() }
                net.makeRows(input: a[0], batch: b, into: rows)
                net.tangent(abar: rows, da: a[3], directions: a[2], weights: a[1], ds: out, batch: b, queries: q)
            }), "\(label) tangent")
            assertClose(Self.both([x, w], outputCount: b * layer.outputWidth, { out, a in
                let rows = UnsafeMutablePointer<Double>.allocate(capacity: rowCount); defer { rows.deallocate() }
                net.makeRows(input: a[0], batch: b, into: rows)
                net.forward(abar: rows, weights: a[1], s: out, batch: b)
            }, { out, a in
                let rows = UnsafeMutablePointer<Float>.allocate(capacity: rowCount); defer { rows.deallocate() }
                net.makeRows(input: a[0], batch: b, into: rows)
                net.forward(abar: rows, weights: a[1], s: out, batch: b)
            }), "\(label) forward")
            for beta in [0.0, 0.5] {
                assertClose(Self.both([ds, x], outputCount: p, initial: Self.values(p, seed: 9), { out, a in
                    let rows = UnsafeMutablePointer<Double>.allocate(capacity: rowCount); defer { rows.deallocate() }
                    net.makeRows(input: a[1], batch: b, into: rows)
                    net.weightGradient(ds: a[0], abar: rows, scale: 0.25, beta: beta, gradient: out, batch: b)
                }, { out, a in
                    let rows = UnsafeMutablePointer<Float>.allocate(capacity: rowCount); defer { rows.deallocate() }
                    net.makeRows(input: a[1], batch: b, into: rows)
                    net.weightGradient(ds: a[0], abar: rows, scale: 0.25, beta: Float(beta), gradient: out, batch: b)
                }), "\(label) weight gradient, beta \(beta)")
            }
            for beta in [0.0, 1.0] {
                assertClose(Self.both([ds, x, w], outputCount: q * p, initial: Self.values(q * p, seed: 8), { out, a in
                    let rows = UnsafeMutablePointer<Double>.allocate(capacity: rowCount); defer { rows.deallocate() }
                    net.makeRows(input: a[1], batch: b, into: rows)
                    net.blockGradient(ds: a[0], abar: rows, beta: beta, out: out, batch: b, queries: q)
                }, { out, a in
                    let rows = UnsafeMutablePointer<Float>.allocate(capacity: rowCount); defer { rows.deallocate() }
                    net.makeRows(input: a[1], batch: b, into: rows)
                    net.blockGradient(ds: a[0], abar: rows, beta: Float(beta), out: out, batch: b, queries: q)
                }), "\(label) block gradient, beta \(beta)")
            }
            guard layer.stride == 1 else { XCTAssertFalse(layer.directGradient(Float.self), label); continue }
            XCTAssertTrue(layer.directGradient(Float.self), label)
            assertClose(Self.both([ds, w], outputCount: b * q * layer.inputWidth, initial: Self.values(b * q * layer.inputWidth, seed: 6),
                                  { net.blockBackwardInput(ds: $1[0], weights: $1[1], da: $0, batch: b, queries: q) },
                                  { net.blockBackwardInput(ds: $1[0], weights: $1[1], da: $0, batch: b, queries: q) }), "\(label) block input gradient")
            let initial = Self.values(b * q * layer.inputWidth, seed: 7)
            assertClose(Self.both([ds, dirs], outputCount: initial.count, initial: initial,
                                  { net.directionalBackwardInput(ds: $1[0], directions: $1[1], da: $0, batch: b, queries: q) },
                                  { net.directionalBackwardInput(ds: $1[0], directions: $1[1], da: $0, batch: b, queries: q) }), "\(label) directional input gradient")
        }
    }
}
