import AstraDist
import XCTest

/// Backpropagation against central finite differences, in double precision.
final class BackpropTests: XCTestCase {
    func check(_ task: Dataset.Task, outputs c: Int) {
        let data = TestSupport.synthetic(task: task, n: 7, d: 4, c: c)
        let shape = NetworkShape(widths: [4, 6, 5, c])
        let net = Network<Double>(shape: shape, loss: data.loss, seed: 3)
        let ws = Workspace<Double>(shape: shape, capacity: 7)
        var x = [Double](repeating: 0, count: 7 * 4), y = [Double](repeating: 0, count: 7 * data.targetWidth)
        x.withUnsafeMutableBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            data.gather(Array(0..<7)[...], x: xp.baseAddress!, y: yp.baseAddress!)
        } }
        var grad = [Double](repeating: 0, count: shape.parameterCount)
        func loss(_ n: Network<Double>) -> Double {
            n.lossAndGradient(x, y, batch: 7, workspace: ws, gradient: nil)
        }
        _ = grad.withUnsafeMutableBufferPointer { net.lossAndGradient(x, y, batch: 7, workspace: ws, gradient: $0.baseAddress!) }
        let h = 1e-6
        var worst = 0.0
        for i in 0..<shape.parameterCount {
            var plus = net, minus = net
            plus.parameters[i] += h; minus.parameters[i] -= h
            let fd = (loss(plus) - loss(minus)) / (2 * h)
            worst = max(worst, abs(fd - grad[i]) / max(1, abs(fd)))
        }
        // Central differences in double: truncation O(h²) ≈ 1e-12 and rounding ≈ 1e-16/h = 1e-10.
        XCTAssertLessThan(worst, 1e-7, "\(task): backprop disagrees with finite differences")
        XCTAssertGreaterThan(grad.map(abs).max()!, 1e-3, "gradient must not be trivially zero")
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
