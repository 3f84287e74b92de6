import AstraDist
import XCTest

/// Backpropagation against central finite differences, in double precision.
final class BackpropTests: XCTestCase {
    /// Backpropagated and central-difference gradients of the mean loss of `data` (all rows).
    func gradients(_ net: Network<Double>, _ data: Dataset, h: Double = 1e-6) -> (backprop: [Double], fd: [Double]) {
        let n = data.count, shape = net.shape
        let ws = Workspace<Double>(shape: shape, capacity: n)
        var x = [Double](repeating: 0, count: n * data.featureCount), y = [Double](repeating: 0, count: n * data.targetWidth)
        x.withUnsafeMutableBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            data.gather(Array(0..<n)[...], x: xp.baseAddress!, y: yp.baseAddress!)
        } }
        var grad = [Double](repeating: 0, count: shape.parameterCount)
        func loss(_ m: Network<Double>) -> Double {
            m.lossAndGradient(x, y, batch: n, workspace: ws, gradient: nil)
        }
        _ = grad.withUnsafeMutableBufferPointer { net.lossAndGradient(x, y, batch: n, workspace: ws, gradient: $0.baseAddress!) }
        let fd = (0..<shape.parameterCount).map { i in
            var plus = net, minus = net
            plus.parameters[i] += h; minus.parameters[i] -= h
            return (loss(plus) - loss(minus)) / (2 * h)
        }
        return (grad, fd)
    }

    func check(_ task: Dataset.Task, outputs c: Int) {
        let data = TestSupport.synthetic(task: task, n: 7, d: 4, c: c)
        let net = Network<Double>(shape: NetworkShape(widths: [4, 6, 5, c]), loss: data.loss, seed: 3)
        let (grad, fd) = gradients(net, data)
        let worst = zip(grad, fd).map { abs($1 - $0) / max(1, abs($1)) }.max()!
        // Central differences in double: truncation O(h²) ≈ 1e-12 and rounding ≈ 1e-16/h = 1e-10.
        XCTAssertLessThan(worst, 1e-7, "\(task): backprop disagrees with finite differences")
        XCTAssertGreaterThan(grad.map(abs).max()!, 1e-3, "gradient must not be trivially zero")
    }

    /// The curvature ladder's base network (depth 8, width 16, GELU, PyTorch's default
    /// initialisation, 64 inputs, 10 classes) at init: every layer's gradient, however small
    /// it has become in the early layers, agrees with finite differences relative to its own
    /// size, so the network that does not train (docs/results.md) is not a backprop bug.
    func testDeepGELUNetworkAtInitialisation() {
        let data = TestSupport.synthetic(task: .classification, n: 16, d: 64, c: 10)
        let shape = NetworkShape(widths: [64] + Array(repeating: 16, count: 8) + [10], activation: .gelu)
        let net = Network<Double>(shape: shape, loss: data.loss, seed: 0)
        let (grad, fd) = gradients(net, data, h: 1e-5)
        for l in 0..<shape.layerCount {
            let r = shape.offset(l)..<(shape.offset(l) + shape.layer(l).parameterCount)
            let norm = r.map { fd[$0] * fd[$0] }.reduce(0, +).squareRoot()
            let diff = r.map { (grad[$0] - fd[$0]) * (grad[$0] - fd[$0]) }.reduce(0, +).squareRoot()
            XCTAssertGreaterThan(norm, 0, "layer \(l): no gradient at all")
            XCTAssertLessThan(diff, 1e-4 * norm, "layer \(l): backprop disagrees with finite differences (‖g‖ = \(norm))")
            print("depth-8 GELU at init: layer \(l) ‖∇‖ = \(norm), relative FD error \(diff / norm)")
        }
    }

    func testMeanSquaredError() { check(.regression, outputs: 2) }
    func testCrossEntropy() { check(.classification, outputs: 3) }

    /// The measurement gradients of spec §1 against finite differences in the outputs.
    func testMeasurementGradients() {
        for loss in [LossKind.mse, .crossEntropy] {
            let y: [Double] = [0.3, -1.2, 2.0], target: [Double] = loss == .mse ? [0.1, 0.2, 0.3] : [1]
            var dy = [Double](repeating: 0, count: 3), scratch = dy
            let f = Measurement.value(loss: loss, y: y, target: target, gradient: &dy)
            for k in 0..<3 {
                var yp = y, ym = y
                yp[k] += 1e-6; ym[k] -= 1e-6
                let fd = (Measurement.value(loss: loss, y: yp, target: target, gradient: &scratch) - Measurement.value(loss: loss, y: ym, target: target, gradient: &scratch)) / 2e-6
                XCTAssertEqual(fd, dy[k], accuracy: 1e-8)
            }
            if loss == .crossEntropy { XCTAssertEqual(f, -(y[1] - log(exp(y[0]) + exp(y[2]))), accuracy: 1e-12) }
            else { XCTAssertEqual(f, 0.2 + 1.4 + 1.7, accuracy: 1e-12) }
        }
    }
}
