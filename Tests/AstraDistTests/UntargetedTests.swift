@testable import AstraDist
import Foundation
import XCTest

/// Queries without a target (`score --untargeted`): classification measures the margin of the
/// predicted class, regression the output g itself.
final class UntargetedTests: XCTestCase {
    /// With the target set to the model's predicted class, the targeted measurement and its
    /// gradient are the untargeted ones, bit for bit; with another target they differ.
    func testUntargetedClassificationIsTheMarginOfThePredictedClass() {
        let data = TestSupport.synthetic(task: .classification, n: 12, d: 5, c: 4, seed: 3)
        let net = Network<Double>(shape: NetworkShape(widths: [5, 7, 4]), loss: data.loss, seed: 5)
        var predicted = data
        predicted.targets = net.predictions(on: data).map(Float.init)
        let untargeted = net.measurementGradients(queries: data, untargeted: true)
        let targeted = net.measurementGradients(queries: predicted)
        XCTAssertEqual(untargeted.values, targeted.values)
        XCTAssertEqual(untargeted.parameterBlock(), targeted.parameterBlock())
        // The given labels disagree with the prediction somewhere (else the check above proves nothing).
        XCTAssertNotEqual(predicted.targets, data.targets)
        XCTAssertNotEqual(net.measurementGradients(queries: data).values, untargeted.values)
    }

    /// Regression: f = g (one output), and ∇f against central differences of the output.
    func testUntargetedRegressionMeasuresTheOutputAndItsGradient() {
        let data = TestSupport.synthetic(task: .regression, n: 3, d: 4, c: 1, seed: 9)
        let shape = NetworkShape(widths: [4, 6, 1])
        let net = Network<Double>(shape: shape, loss: .mse, seed: 2), p = shape.parameterCount
        func outputs(_ theta: [Double]) -> [Double] {
            let n = Network<Double>(shape: shape, loss: .mse, parameters: theta), ws = Workspace<Double>(shape: shape, capacity: data.count)
            let x = data.inputs.map(Double.init)
            x.withUnsafeBufferPointer { n.forward($0.baseAddress!, batch: data.count, workspace: ws) }
            return (0..<data.count).map { ws.output[$0] }
        }
        let v = net.measurementGradients(queries: data, untargeted: true)
        XCTAssertEqual(v.values, outputs(net.parameters))
        let block = v.parameterBlock(), h = 1e-6
        // The block layout: per layer, Q consecutive O×(I+1) matrices.
        let layerOf = { (j: Int) in (0..<shape.layerCount).last { shape.offset($0) <= j }! }
        for j in 0..<p {
            let l = layerOf(j)
            var plus = net.parameters, minus = net.parameters
            plus[j] += h; minus[j] -= h
            let (a, b) = (outputs(plus), outputs(minus))
            for q in 0..<data.count {
                let at = shape.blockOffset(l, queries: data.count) + q * shape.layer(l).parameterCount + j - shape.offset(l)
                XCTAssertEqual(block[at], (a[q] - b[q]) / (2 * h), accuracy: 1e-7, "query \(q), parameter \(j)")
            }
        }
    }

    /// `score --untargeted`: its own query set (`seed-0.untargeted.npy`), recorded as untargeted;
    /// on queries whose label is the prediction the scores equal the targeted ones.
    func testScoreUntargetedWritesItsOwnQuerySet() throws {
        let w = TestSupport.temporaryDirectory("untargeted") + "/ws"
        XCTAssertEqual(try TestSupport.run(["train", "--workdir", w, "--epochs", "3", "--train-size", "150", "--query-size", "8"]).status, 0)
        let r = try TestSupport.run(["score", "--workdir", w, "--method", "identity", "--untargeted"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let dir = w + "/scores/identity"
        XCTAssertTrue(r.stdout.contains("wrote \(dir)/seed-0.untargeted.npy"), r.stdout)
        let meta = try JSONDecoder().decode(ScoreMetadata.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/seed-0.untargeted.json")))
        XCTAssertEqual(meta.untargeted, true)
        XCTAssertEqual(meta.querySet, "untargeted")
        XCTAssertEqual(try TestSupport.run(["score", "--workdir", w, "--method", "identity"]).status, 0)
        let config = try XCTUnwrap(try WorkDirectory(w).loadConfig())
        let data = try PreparedData.load(config)
        let (net, _) = try ModelStore.load(from: w + "/models/seed-0")
        let predicted = net.predictions(on: data.queries), n = data.train.count
        let a = try NPY.read(dir + "/seed-0.untargeted.npy").values(Float.self), b = try NPY.read(dir + "/seed-0.npy").values(Float.self)
        var agreeing = 0
        for q in 0..<data.queries.count {
            let same = a[(q * n)..<((q + 1) * n)] == b[(q * n)..<((q + 1) * n)]
            XCTAssertEqual(same, predicted[q] == Double(data.queries.targets[q]), "query \(q)")
            if same { agreeing += 1 }
        }
        XCTAssertGreaterThan(agreeing, 0)
        // tracin and trak have no untargeted measurement: refused, nothing written.
        let t = try TestSupport.run(["score", "--workdir", w, "--method", "trak", "--untargeted"])
        XCTAssertEqual(t.status, 1)
        XCTAssertTrue(t.stderr.hasPrefix("error: score: --untargeted applies to the iHVP methods"), t.stderr)
    }
}
