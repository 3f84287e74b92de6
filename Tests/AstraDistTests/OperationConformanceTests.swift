@testable import AstraDist
import Foundation
import XCTest

/// Every operation type against its definition by central differences in Double: pointwise
/// operations (forward, backward, tangent, second-derivative term), parameterised layers
/// (input and weight gradients, tangents, block and example gradients, scores, the Hessian's
/// directional terms, factor statistics, the eigenvalue correction, the dense block GGN), and
/// each pointwise operation inside a whole network (gradient, GGN product, exact Hessian).
/// A new operation is one entry in `pointwise` or `layers`.
final class OperationConformanceTests: XCTestCase {
    static let pointwise = Pointwise.allCases
    static let layers: [NetworkLayer] = [
        .linear(LinearLayer(inputs: 4, outputs: 3)),
        // Stride and padding (T = 3·2 = 6, edge patches partly padding), with a bias.
        .conv2d(Conv2dLayer(channels: 2, height: 5, width: 4, filters: 3, kernel: 3, stride: 2, padding: 1)),
        // Bias-free (K = C·k·k), T = 9.
        .conv2d(Conv2dLayer(channels: 3, height: 4, width: 4, filters: 2, kernel: 2, bias: false)),
    ]

    static func random(_ n: Int, seed: UInt64) -> [Double] {
        var rng = CounterRandom(seed: seed, purpose: .test, index: 5)
        return (0..<n).map { _ in rng.nextNormal() }
    }
    static func maxDiff(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).map { abs($0 - $1) }.max() ?? 0 }
    static func scale(_ a: [Double]) -> Double { max(a.map(abs).max() ?? 0, 1e-12) }
    static let h = 1e-6

    // MARK: Pointwise operations

    /// Inputs away from ReLU's kink (|x| ≥ 0.2) so central differences never straddle it.
    static func inputs(_ n: Int, seed: UInt64) -> [Double] {
        random(n, seed: seed).map { $0 >= 0 ? $0 + 0.2 : $0 - 0.2 }
    }
    static func apply(_ f: Pointwise, _ x: [Double]) -> [Double] {
        var y = x
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { f.forward(xp.baseAddress!, into: $0.baseAddress!, count: x.count) } }
        return y
    }
    static func backward(_ f: Pointwise, _ x: [Double], _ g: [Double]) -> [Double] {
        var out = x
        x.withUnsafeBufferPointer { xp in g.withUnsafeBufferPointer { gp in out.withUnsafeMutableBufferPointer {
            f.backward(pre: xp.baseAddress!, grad: gp.baseAddress!, into: $0.baseAddress!, count: x.count)
        } } }
        return out
    }

    func testPointwiseOperations() {
        let b = 3, q = 2, w = 5
        for f in Self.pointwise {
            let x = Self.inputs(b * w, seed: 1), g = Self.random(b * w, seed: 2), t = Self.random(b * q * w, seed: 3), r = Self.random(b * q * w, seed: 4)
            // Backward: f'(x)·g against differences of the forward map.
            let plus = Self.apply(f, x.map { $0 + Self.h }), minus = Self.apply(f, x.map { $0 - Self.h })
            let fd = (0..<(b * w)).map { (plus[$0] - minus[$0]) / (2 * Self.h) * g[$0] }
            let back = Self.backward(f, x, g)
            XCTAssertLessThan(Self.maxDiff(back, fd), 1e-8, "\(f): backward")
            // Tangent of Q directions, in place, against differences along each direction.
            var tangent = t
            x.withUnsafeBufferPointer { xp in tangent.withUnsafeMutableBufferPointer {
                f.tangent(UnsafePointer($0.baseAddress!), pre: xp.baseAddress!, into: $0.baseAddress!, batch: b, queries: q, width: w)
            } }
            var fdT = t
            for i in 0..<b { for k in 0..<q { for j in 0..<w {
                let d = t[(i * q + k) * w + j], xi = x[i * w + j]
                let yp = Self.apply(f, [xi + Self.h * d]), ym = Self.apply(f, [xi - Self.h * d])
                fdT[(i * q + k) * w + j] = (yp[0] - ym[0]) / (2 * Self.h)
            } } }
            XCTAssertLessThan(Self.maxDiff(tangent, fdT), 1e-8, "\(f): tangent")
            // Hessian transpose: f'·r + f''·t·g, the second term against differences of the backward map.
            var second = t
            x.withUnsafeBufferPointer { xp in g.withUnsafeBufferPointer { gp in r.withUnsafeBufferPointer { rp in second.withUnsafeMutableBufferPointer {
                f.hessianTranspose(rp.baseAddress!, pre: xp.baseAddress!, outputGradient: gp.baseAddress!, tangent: UnsafePointer($0.baseAddress!),
                                   into: $0.baseAddress!, batch: b, queries: q, width: w)
            } } } }
            var fdH = t
            for i in 0..<b { for k in 0..<q { for j in 0..<w {
                let at = (i * q + k) * w + j, xi = x[i * w + j], gi = g[i * w + j]
                let d2 = (Self.backward(f, [xi + Self.h * t[at]], [gi])[0] - Self.backward(f, [xi - Self.h * t[at]], [gi])[0]) / (2 * Self.h)
                fdH[at] = Self.backward(f, [xi], [r[at]])[0] + d2
            } } }
            XCTAssertLessThan(Self.maxDiff(second, fdH), 1e-7, "\(f): second-derivative term")
        }
        // GELU is PyTorch's exact form: nn.GELU()(±1), (2) = 0.8413447, −0.1586553, 1.9544997.
        let gelu = Self.apply(.gelu, [1, -1, 2])
        XCTAssertLessThan(Self.maxDiff(gelu, [0.8413447460685429, -0.15865525393145707, 1.9544997361036416]), 1e-12)
        XCTAssertEqual(Self.apply(.relu, [-1, 0, 2]), [0, 0, 2])
    }

    // MARK: Parameterised layers

    /// `s` of `layer` at input x (B×inputWidth) and weights w.
    static func outputs(_ layer: NetworkLayer, _ x: [Double], _ w: [Double], batch: Int) -> (rows: [Double], s: [Double]) {
        var rows = [Double](repeating: 0, count: batch * layer.positions * layer.inputFactorDimension)
        var s = [Double](repeating: 0, count: batch * layer.outputWidth)
        x.withUnsafeBufferPointer { xp in rows.withUnsafeMutableBufferPointer { layer.makeRows(input: xp.baseAddress!, batch: batch, into: $0.baseAddress!) } }
        rows.withUnsafeBufferPointer { rp in w.withUnsafeBufferPointer { wp in s.withUnsafeMutableBufferPointer {
            layer.forward(abar: rp.baseAddress!, weights: wp.baseAddress!, s: $0.baseAddress!, batch: batch)
        } } }
        return (rows, s)
    }
    static func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }

    func testLayerDerivatives() {
        let b = 3, q = 2
        for layer in Self.layers {
            let iw = layer.inputWidth, ow = layer.outputWidth, p = layer.parameterCount
            let x = Self.random(b * iw, seed: 10), w = Self.random(p, seed: 11), ds = Self.random(b * ow, seed: 12)
            let dx = Self.random(b * q * iw, seed: 13), dw = Self.random(q * p, seed: 14)
            let (rows, _) = Self.outputs(layer, x, w, batch: b)
            // ⟨Ds, s⟩ differentiated in the input and in the weights.
            func objective(_ x: [Double], _ w: [Double]) -> Double { Self.dot(ds, Self.outputs(layer, x, w, batch: b).s) }
            let fdInput = (0..<x.count).map { k -> Double in
                var xp = x, xm = x; xp[k] += Self.h; xm[k] -= Self.h
                return (objective(xp, w) - objective(xm, w)) / (2 * Self.h)
            }
            let fdWeights = (0..<p).map { k -> Double in
                var wp = w, wm = w; wp[k] += Self.h; wm[k] -= Self.h
                return (objective(x, wp) - objective(x, wm)) / (2 * Self.h)
            }
            var da = [Double](repeating: 0, count: b * iw), grad = [Double](repeating: 0, count: p)
            ds.withUnsafeBufferPointer { dp in w.withUnsafeBufferPointer { wp in rows.withUnsafeBufferPointer { rp in
                da.withUnsafeMutableBufferPointer { layer.backwardInput(ds: dp.baseAddress!, weights: wp.baseAddress!, da: $0.baseAddress!, batch: b) }
                grad.withUnsafeMutableBufferPointer { layer.weightGradient(ds: dp.baseAddress!, abar: rp.baseAddress!, scale: 1, beta: 0, gradient: $0.baseAddress!, batch: b) }
            } } }
            XCTAssertLessThan(Self.maxDiff(da, fdInput), 1e-7, "\(layer): backwardInput")
            XCTAssertLessThan(Self.maxDiff(grad, fdWeights), 1e-7, "\(layer): weightGradient")
            // Example gradients sum to the weight gradient; scores are their inner products with a block.
            var examples = [[Double]](repeating: [Double](repeating: 0, count: p), count: b)
            for e in 0..<b {
                ds.withUnsafeBufferPointer { dp in rows.withUnsafeBufferPointer { rp in examples[e].withUnsafeMutableBufferPointer {
                    layer.exampleGradient(ds: dp.baseAddress!, rows: rp.baseAddress!, example: e, into: $0.baseAddress!)
                } } }
            }
            XCTAssertLessThan(Self.maxDiff((0..<p).map { k in examples.reduce(0) { $0 + $1[k] } }, grad), 1e-12, "\(layer): exampleGradient")
            var tau = [Double](repeating: 0, count: q * b), scratch = [Double](repeating: 0, count: layer.scoreScratchCount(batch: b))
            dw.withUnsafeBufferPointer { xp in rows.withUnsafeBufferPointer { rp in ds.withUnsafeBufferPointer { dp in scratch.withUnsafeMutableBufferPointer { sp in
                tau.withUnsafeMutableBufferPointer {
                    layer.accumulateScores(block: xp.baseAddress!, rows: rp.baseAddress!, ds: dp.baseAddress!, batch: b, queries: q, scratch: sp.baseAddress!, into: $0.baseAddress!)
                }
            } } } }
            let expected = (0..<q).flatMap { k in (0..<b).map { e in Self.dot(Array(dw[(k * p)..<((k + 1) * p)]), examples[e]) } }
            XCTAssertLessThan(Self.maxDiff(tau, expected), 1e-12, "\(layer): accumulateScores")
            // Tangents of Q directions (input and weights) against differences of the forward map.
            var tangent = [Double](repeating: 0, count: b * q * ow)
            rows.withUnsafeBufferPointer { rp in dx.withUnsafeBufferPointer { xp in dw.withUnsafeBufferPointer { dp in w.withUnsafeBufferPointer { wp in
                tangent.withUnsafeMutableBufferPointer {
                    layer.tangent(abar: rp.baseAddress!, da: xp.baseAddress!, directions: dp.baseAddress!, weights: wp.baseAddress!, ds: $0.baseAddress!, batch: b, queries: q)
                }
            } } } }
            for k in 0..<q {
                let dxk = (0..<(b * iw)).map { dx[($0 / iw * q + k) * iw + $0 % iw] }, dwk = Array(dw[(k * p)..<((k + 1) * p)])
                let sp = Self.outputs(layer, zip(x, dxk).map { $0 + Self.h * $1 }, zip(w, dwk).map { $0 + Self.h * $1 }, batch: b).s
                let sm = Self.outputs(layer, zip(x, dxk).map { $0 - Self.h * $1 }, zip(w, dwk).map { $0 - Self.h * $1 }, batch: b).s
                let got = (0..<(b * ow)).map { tangent[($0 / ow * q + k) * ow + $0 % ow] }
                XCTAssertLessThan(Self.maxDiff(got, zip(sp, sm).map { ($0 - $1) / (2 * Self.h) }), 1e-7, "\(layer): tangent \(k)")
                // Block gradient of Q cotangents: per query the weight gradient of that cotangent.
                var block = [Double](repeating: 0, count: q * p), single = [Double](repeating: 0, count: p)
                rows.withUnsafeBufferPointer { rp in tangent.withUnsafeBufferPointer { tp in got.withUnsafeBufferPointer { gp in
                    block.withUnsafeMutableBufferPointer { layer.blockGradient(ds: tp.baseAddress!, abar: rp.baseAddress!, beta: 0, out: $0.baseAddress!, batch: b, queries: q) }
                    single.withUnsafeMutableBufferPointer { layer.weightGradient(ds: gp.baseAddress!, abar: rp.baseAddress!, scale: 1, beta: 0, gradient: $0.baseAddress!, batch: b) }
                } } }
                XCTAssertLessThan(Self.maxDiff(Array(block[(k * p)..<((k + 1) * p)]), single), 1e-12, "\(layer): blockGradient \(k)")
            }
            // The Hessian's directional terms: d/dh of the input gradient along dW, and of the
            // weight gradient along the input tangent.
            var dirInput = [Double](repeating: 0, count: b * q * iw), dirWeights = [Double](repeating: 0, count: q * p)
            ds.withUnsafeBufferPointer { dp in dw.withUnsafeBufferPointer { vp in dx.withUnsafeBufferPointer { xp in
                dirInput.withUnsafeMutableBufferPointer { layer.directionalBackwardInput(ds: dp.baseAddress!, directions: vp.baseAddress!, da: $0.baseAddress!, batch: b, queries: q) }
                dirWeights.withUnsafeMutableBufferPointer { layer.directionalWeightGradient(ds: dp.baseAddress!, tangentInput: xp.baseAddress!, out: $0.baseAddress!, batch: b, queries: q) }
            } } }
            for k in 0..<q {
                let dxk = (0..<(b * iw)).map { dx[($0 / iw * q + k) * iw + $0 % iw] }, dwk = Array(dw[(k * p)..<((k + 1) * p)])
                func inputGradient(_ w: [Double]) -> [Double] {
                    var out = [Double](repeating: 0, count: b * iw)
                    ds.withUnsafeBufferPointer { dp in w.withUnsafeBufferPointer { wp in out.withUnsafeMutableBufferPointer {
                        layer.backwardInput(ds: dp.baseAddress!, weights: wp.baseAddress!, da: $0.baseAddress!, batch: b)
                    } } }
                    return out
                }
                let fdI = zip(inputGradient(zip(w, dwk).map { $0 + Self.h * $1 }), inputGradient(zip(w, dwk).map { $0 - Self.h * $1 })).map { ($0 - $1) / (2 * Self.h) }
                let gotI = (0..<(b * iw)).map { dirInput[($0 / iw * q + k) * iw + $0 % iw] }
                XCTAssertLessThan(Self.maxDiff(gotI, fdI), 1e-7, "\(layer): directionalBackwardInput \(k)")
                func weightGradient(_ x: [Double]) -> [Double] {
                    let r = Self.outputs(layer, x, w, batch: b).rows
                    var out = [Double](repeating: 0, count: p)
                    ds.withUnsafeBufferPointer { dp in r.withUnsafeBufferPointer { rp in out.withUnsafeMutableBufferPointer {
                        layer.weightGradient(ds: dp.baseAddress!, abar: rp.baseAddress!, scale: 1, beta: 0, gradient: $0.baseAddress!, batch: b)
                    } } }
                    return out
                }
                let fdW = zip(weightGradient(zip(x, dxk).map { $0 + Self.h * $1 }), weightGradient(zip(x, dxk).map { $0 - Self.h * $1 })).map { ($0 - $1) / (2 * Self.h) }
                XCTAssertLessThan(Self.maxDiff(Array(dirWeights[(k * p)..<((k + 1) * p)]), fdW), 1e-7, "\(layer): directionalWeightGradient \(k)")
            }
        }
    }

    /// Factor statistics and the eigenvalue correction against their definitions from the
    /// layer's rows, Ds and example gradients.
    func testLayerCurvatureStatistics() throws {
        let b = 4, draws = 2
        for layer in Self.layers {
            let iw = layer.inputWidth, ow = layer.outputWidth, k = layer.inputFactorDimension, o = layer.outputFactorDimension, p = layer.parameterCount
            let x = Self.random(b * iw, seed: 20), w = Self.random(p, seed: 21)
            let rows = Self.outputs(layer, x, w, batch: b).rows, n = b * layer.positions
            let dsDraws = (0..<draws).map { Self.random(b * ow, seed: 30 + UInt64($0)) }
            var scratch = [Double](repeating: 0, count: layer.curvatureScratchCount(batch: b))
            var a = [Double](repeating: 0, count: k * k), s = [Double](repeating: 0, count: o * o)
            rows.withUnsafeBufferPointer { rp in scratch.withUnsafeMutableBufferPointer { sp in a.withUnsafeMutableBufferPointer {
                layer.accumulateInputFactor(abar: rp.baseAddress!, batch: b, scratch: sp.baseAddress!, into: $0.baseAddress!)
            } } }
            dsDraws[0].withUnsafeBufferPointer { dp in scratch.withUnsafeMutableBufferPointer { sp in s.withUnsafeMutableBufferPointer {
                layer.accumulateOutputFactor(ds: dp.baseAddress!, batch: b, scratch: sp.baseAddress!, into: $0.baseAddress!)
            } } }
            // K-FC (spec §3): A averaged over positions, S summed over them.
            let aRef = (0..<(k * k)).map { ij in (0..<n).reduce(0.0) { $0 + rows[$1 * k + ij / k] * rows[$1 * k + ij % k] } / Double(layer.positions) }
            let sRef = (0..<(o * o)).map { ij in (0..<n).reduce(0.0) { $0 + dsDraws[0][$1 * o + ij / o] * dsDraws[0][$1 * o + ij % o] } }
            XCTAssertLessThan(Self.maxDiff(a, aRef), 1e-12, "\(layer): input factor")
            XCTAssertLessThan(Self.maxDiff(s, sRef), 1e-12, "\(layer): output factor")
            // Eigenbases of the factors (any orthonormal bases would do).
            let qA = try SymmetricEigen(Matrix(rows: k, cols: k, data: aRef)).vectors, qS = try SymmetricEigen(Matrix(rows: o, cols: o, data: sRef)).vectors
            var state = [Double](repeating: 0, count: layer.eigenCorrectionStateCount(batch: b)), lambda = [Double](repeating: 0, count: o * k)
            rows.withUnsafeBufferPointer { rp in qA.data.withUnsafeBufferPointer { ap in qS.data.withUnsafeBufferPointer { qp in
                state.withUnsafeMutableBufferPointer { st in scratch.withUnsafeMutableBufferPointer { sp in lambda.withUnsafeMutableBufferPointer { lp in
                    layer.beginEigenCorrection(rows: rp.baseAddress!, eigenvectorsA: ap.baseAddress!, batch: b, state: st.baseAddress!)
                    for d in dsDraws {
                        d.withUnsafeBufferPointer {
                            layer.accumulateEigenCorrectionDraw(ds: $0.baseAddress!, rows: rp.baseAddress!, eigenvectorsS: qp.baseAddress!, eigenvectorsA: ap.baseAddress!,
                                                                batch: b, state: st.baseAddress!, scratch: sp.baseAddress!, into: lp.baseAddress!)
                        }
                    }
                    layer.finishEigenCorrection(rows: rp.baseAddress!, eigenvectorsA: ap.baseAddress!, batch: b, state: st.baseAddress!, scratch: sp.baseAddress!, into: lp.baseAddress!)
                } } }
            } } }
            var reference = [Double](repeating: 0, count: o * k)
            for d in dsDraws {
                for e in 0..<b {
                    var g = [Double](repeating: 0, count: p)
                    d.withUnsafeBufferPointer { dp in rows.withUnsafeBufferPointer { rp in g.withUnsafeMutableBufferPointer {
                        layer.exampleGradient(ds: dp.baseAddress!, rows: rp.baseAddress!, example: e, into: $0.baseAddress!)
                    } } }
                    let rotated = qS.multiplied(by: Matrix(rows: o, cols: k, data: g), transposeSelf: true).multiplied(by: qA)
                    for i in 0..<(o * k) { reference[i] += rotated.data[i] * rotated.data[i] }
                }
            }
            XCTAssertLessThan(Self.maxDiff(lambda, reference) / Self.scale(reference), 1e-12, "\(layer): eigenvalue correction")
        }
    }

    /// Each layer as the first layer of a small network: its block of the GGN product equals
    /// the dense GGN's (built from example gradients, independent of tangents).
    func testLayerBlockGGN() {
        for layer in Self.layers {
            let data = TestSupport.synthetic(task: .classification, n: 13, d: layer.inputWidth, c: 3, seed: 3)
            let shape = NetworkShape(operations: [.layer(layer), .pointwise(.gelu), .linear(inputs: layer.outputWidth, outputs: 3)])
            let net = Network<Double>(shape: shape, loss: .crossEntropy, seed: 4)
            let g = DenseCurvature.denseGGN(network: net, data: data), p = shape.parameterCount, p0 = layer.parameterCount
            var v = Self.random(p, seed: 40)
            for i in p0..<p { v[i] = 0 }
            let product = GGNProduct<Double>(network: net, data: data, queries: 1, maxBatch: 5).apply(v, indices: Array(0..<data.count)[...])
            let dense = (0..<p).map { i in (0..<p).reduce(0.0) { $0 + g[i, $1] * v[$1] } }
            XCTAssertLessThan(Self.maxDiff(product, dense) / Self.scale(dense), 1e-12, "\(layer): block GGN product")
            // The K-FC scaling: trace(S)·trace(A) has the scale of the block's trace (averaging
            // both factors over positions would understate it by T, summing both overstate it by T).
            let factors = KroneckerFactors.compute(network: net, data: data, shard: 0..<data.count, comm: SingleProcessCommunicator(),
                                                   mode: .exact, seed: 1, batchSize: 4)
            let trace = { (m: Matrix<Double>) in (0..<m.rows).reduce(0.0) { $0 + m[$1, $1] } }
            let ratio = trace(factors.s[0]) * trace(factors.a[0]) / (0..<p0).reduce(0.0) { $0 + g[$1, $1] }
            let t = Double(layer.positions)
            XCTAssertTrue(t == 1 || (ratio > 1 / t.squareRoot() && ratio < t.squareRoot()), "\(layer): K-FC trace ratio \(ratio) for T = \(t)")
        }
    }

    // MARK: Spatial (parameter-free, piecewise linear) operations

    static let spatial: [(SpatialOperation, width: Int)] = [
        (.maxPool(MaxPool2d(channels: 2, height: 5, width: 4, kernel: 2, stride: 2)), 40),
        (.maxPool(MaxPool2d(channels: 1, height: 4, width: 4, kernel: 3, stride: 1)), 16),
        (.globalMaxPool(.global(channels: 3, height: 3, width: 2)), 18),
        (.flatten(channels: 3, height: 2, width: 2), 12),
        (.scale(0.2), 7),
    ]

    func testSpatialOperations() {
        let b = 3, q = 2
        for (f, iw) in Self.spatial {
            let ow = f.outputWidth(input: iw)
            func apply(_ x: [Double]) -> [Double] {
                var y = [Double](repeating: 0, count: x.count / iw * ow)
                x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { f.forward(xp.baseAddress!, into: $0.baseAddress!, batch: x.count / iw, width: iw) } }
                return y
            }
            let x = Self.random(b * iw, seed: 50), t = Self.random(b * q * iw, seed: 51), g = Self.random(b * q * ow, seed: 52)
            var jt = [Double](repeating: 0, count: b * q * ow), jg = [Double](repeating: 0, count: b * q * iw)
            x.withUnsafeBufferPointer { xp in
                t.withUnsafeBufferPointer { tp in jt.withUnsafeMutableBufferPointer { f.tangent(tp.baseAddress!, pre: xp.baseAddress!, into: $0.baseAddress!, batch: b, queries: q, width: iw) } }
                g.withUnsafeBufferPointer { gp in jg.withUnsafeMutableBufferPointer { f.transpose(gp.baseAddress!, pre: xp.baseAddress!, into: $0.baseAddress!, batch: b, queries: q, width: iw) } }
            }
            for k in 0..<q {
                let tk = (0..<(b * iw)).map { t[($0 / iw * q + k) * iw + $0 % iw] }
                let fd = zip(apply(zip(x, tk).map { $0 + Self.h * $1 }), apply(zip(x, tk).map { $0 - Self.h * $1 })).map { ($0 - $1) / (2 * Self.h) }
                let got = (0..<(b * ow)).map { jt[($0 / ow * q + k) * ow + $0 % ow] }
                XCTAssertLessThan(Self.maxDiff(got, fd), 1e-8, "\(f): tangent \(k)")
            }
            // The transpose is the adjoint of the tangent: ⟨g, J t⟩ = ⟨Jᵀ g, t⟩.
            XCTAssertEqual(Self.dot(g, jt), Self.dot(jg, t), accuracy: 1e-12, "\(f): transpose")
        }
        // Flatten is PyTorch's NCHW order: [y, x, c] → [c, y, x].
        var y = [Double](repeating: 0, count: 6)
        [0, 1, 2, 3, 4, 5].withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer {
            SpatialOperation.flatten(channels: 2, height: 1, width: 3).forward(xp.baseAddress!, into: $0.baseAddress!, batch: 1, width: 6)
        } }
        XCTAssertEqual(y, [0, 2, 4, 1, 3, 5])
    }

    /// A small CNN with every spatial operation: gradient, GGN products (parameter and EK-FAC
    /// coordinates) against the dense GGN, the exact Hessian against differences of the gradient.
    func testConvolutionalNetwork() throws {
        let conv1 = Conv2dLayer(channels: 1, height: 6, width: 6, filters: 2, kernel: 3, padding: 1)
        let conv2 = Conv2dLayer(channels: 2, height: 3, width: 3, filters: 3, kernel: 2, bias: false)
        let shape = NetworkShape(operations: [
            .layer(.conv2d(conv1)), .pointwise(.gelu), .spatial(.maxPool(MaxPool2d(channels: 2, height: 6, width: 6, kernel: 2, stride: 2))),
            .layer(.conv2d(conv2)), .pointwise(.gelu), .spatial(.flatten(channels: 3, height: 2, width: 2)), .spatial(.scale(0.5)),
            .linear(inputs: 12, outputs: 4), .pointwise(.gelu), .spatial(.globalMaxPool(.global(channels: 1, height: 2, width: 2))),
            .linear(inputs: 1, outputs: 3),
        ])
        let data = TestSupport.synthetic(task: .classification, n: 11, d: 36, c: 3, seed: 5)
        let net = Network<Double>(shape: shape, loss: .crossEntropy, seed: 6), p = shape.parameterCount
        Self.checkNetwork(net, data, "CNN", hessianTolerance: 1e-6)
        let v = Self.random(2 * p, seed: 7)
        // In the EK-FAC eigenbasis the product is Rᵀ G R y.
        let comm = SingleProcessCommunicator()
        let factors = KroneckerFactors.compute(network: net, data: data, shard: 0..<data.count, comm: comm, mode: .exact, seed: 1, batchSize: 4)
        let bases = try factors.eigendecomposed(comm: comm)
        let correction = EigenvalueCorrection.shardSums(network: net, data: data, shard: 0..<data.count, bases: bases, mode: .exact, seed: 1, batchSize: 4)
        let ekfac = EKFAC(shape: shape, bases: bases, correction: correction.reduced(over: comm), mode: .exact)
        let eigenProduct = GGNProduct<Double>(network: net, data: data, queries: 2, maxBatch: 4, eigenbasis: ekfac).apply(v, indices: Array(0..<data.count)[...])
        var rv = v, expected = [Double](repeating: 0, count: 2 * p)
        rv.withUnsafeMutableBufferPointer { ekfac.fromEigenbasis(UnsafePointer($0.baseAddress!), queries: 2, into: $0.baseAddress!) }
        var grv = GGNProduct<Double>(network: net, data: data, queries: 2, maxBatch: 4).apply(rv, indices: Array(0..<data.count)[...])
        grv.withUnsafeMutableBufferPointer { ekfac.toEigenbasis(UnsafePointer($0.baseAddress!), queries: 2, into: &expected) }
        XCTAssertLessThan(Self.maxDiff(eigenProduct, expected) / Self.scale(expected), 1e-10, "CNN GGN product in the eigenbasis")
        // The operation list round-trips through JSON.
        XCTAssertEqual(try JSONDecoder().decode(NetworkShape.self, from: JSONEncoder().encode(shape)), shape)
    }

    /// A whole network against its definitions: the gradient against differences of the mean
    /// loss, GGN products of two vectors against the dense GGN, the exact Hessian against
    /// differences of the gradient (relative `hessianTolerance`). Returns the dense GGN and Hessian.
    @discardableResult
    static func checkNetwork(_ net: Network<Double>, _ data: Dataset, _ label: String, hessianTolerance: Double) -> (ggn: Matrix<Double>, hessian: Matrix<Double>) {
        let shape = net.shape, p = shape.parameterCount
        let grad = DenseCurvature.meanGradient(network: net, data: data)
        let fd = (0..<p).map { k -> Double in
            var plus = net, minus = net
            plus.parameters[k] += h; minus.parameters[k] -= h
            return (plus.evaluate(on: data).loss - minus.evaluate(on: data).loss) / (2 * h)
        }
        XCTAssertLessThan(maxDiff(grad, fd) / scale(fd), 1e-6, "\(label): gradient")
        let g = DenseCurvature.denseGGN(network: net, data: data), v = random(2 * p, seed: 8)
        let product = GGNProduct<Double>(network: net, data: data, queries: 2, maxBatch: 6).apply(v, indices: Array(0..<data.count)[...])
        for k in 0..<2 {
            let vk = (0..<p).map { v[DenseCurvature.blockIndex(shape, queries: 2, query: k, parameter: $0)] }
            let dense = (0..<p).map { i in (0..<p).reduce(0.0) { $0 + g[i, $1] * vk[$1] } }
            let got = (0..<p).map { product[DenseCurvature.blockIndex(shape, queries: 2, query: k, parameter: $0)] }
            XCTAssertLessThan(maxDiff(got, dense) / scale(dense), 1e-12, "\(label): GGN product \(k)")
        }
        let hess = DenseCurvature.denseHessian(network: net, data: data)
        var worst = 0.0
        for k in 0..<p {
            var plus = net, minus = net
            plus.parameters[k] += 1e-5; minus.parameters[k] -= 1e-5
            let gp = DenseCurvature.meanGradient(network: plus, data: data), gm = DenseCurvature.meanGradient(network: minus, data: data)
            for i in 0..<p { worst = max(worst, abs(hess[i, k] - (gp[i] - gm[i]) / 2e-5)) }
        }
        XCTAssertLessThan(worst / scale(hess.data), hessianTolerance, "\(label): Hessian")
        return (g, hess)
    }

    // MARK: Pointwise operations in a whole network

    func testPointwiseInNetworks() {
        for f in Self.pointwise {
            for (task, c, loss) in [(Dataset.Task.regression, 2, LossKind.mse), (.classification, 3, .crossEntropy)] {
                let data = TestSupport.synthetic(task: task, n: 17, d: 3, c: c, seed: 9)
                let shape = NetworkShape(widths: [3, 5, 4, c], activation: f)
                let net = Network<Double>(shape: shape, loss: loss, seed: 2)
                let (g, hess) = Self.checkNetwork(net, data, "\(f) \(loss)", hessianTolerance: 1e-7)
                if f == .gelu { XCTAssertGreaterThan(Self.maxDiff(hess.data, g.data), 1e-4, "GELU's second-derivative terms should show") }
            }
        }
    }

    /// The operation list round-trips through JSON in the documented form, and an old shape
    /// (widths only) still decodes as an MLP with ReLU.
    func testOperationListCoding() throws {
        let shape = NetworkShape(widths: [3, 4, 2], activation: .gelu)
        let json = String(decoding: try JSONEncoder().encode(shape), as: UTF8.self)
        XCTAssertTrue(json.contains("\"op\":\"gelu\"") && json.contains("\"op\":\"linear\""), json)
        XCTAssertEqual(try JSONDecoder().decode(NetworkShape.self, from: Data(json.utf8)), shape)
        XCTAssertEqual(try JSONDecoder().decode(NetworkShape.self, from: Data("{\"widths\":[3,4,2]}".utf8)), NetworkShape(widths: [3, 4, 2]))
        XCTAssertThrowsError(try JSONDecoder().decode(NetworkShape.self, from: Data("{\"widths\":[3,2],\"operations\":[{\"op\":\"linear\",\"inputs\":3,\"outputs\":2},{\"op\":\"linear\",\"inputs\":4,\"outputs\":2}]}".utf8)))
        XCTAssertThrowsError(try JSONDecoder().decode(NetworkShape.self, from: Data("{\"widths\":[3,2],\"operations\":[{\"op\":\"tanh\"}]}".utf8)))
    }
}
