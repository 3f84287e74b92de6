import AstraDist
import Foundation
import XCTest

final class ZZSolverExploreTmp: XCTestCase {
    func testExploreScaled() throws {
        for task in [Dataset.Task.regression, .classification] {
            let c = task == .regression ? 2 : 3
            var data = TestSupport.synthetic(task: task, n: 64, d: 4, c: c, seed: 7)
            let scales: [Float] = [1, 0.1, 3, 0.03]
            for i in 0..<data.inputs.count { data.inputs[i] *= scales[i % 4] }
            var queries = TestSupport.synthetic(task: task, n: 3, d: 4, c: c, seed: 8)
            for i in 0..<queries.inputs.count { queries.inputs[i] *= scales[i % 4] }
            let recipe = TrainingRecipe(learningRate: 0.05, momentum: 0.9, weightDecay: 0, batchSize: 8, epochs: 20)
            let net = Trainer<Double>(shape: NetworkShape(widths: [4, 8, 6, c]), recipe: recipe).train(on: data, seed: 5)
            let ek = try FitRunner.fit(network: net, data: data, shard: 0..<data.count, comm: SingleProcessCommunicator(), mode: .exact, seed: 1, batchSize: 16)
            let v = net.measurementGradients(queries: queries).block
            for lam in [0.001, 0.01] {
                var o = SolverOptions(method: .exact, damping: lam); o.evaluationBatch = 10000
                let exact = try IHVPSolver.solve(v, queries: 3, network: net, train: data, ekfac: ek, options: o, comm: SingleProcessCommunicator()).x
                let nx = exact.reduce(0) { $0 + $1 * $1 }.squareRoot()
                var oe = SolverOptions(method: .ekfac, damping: lam)
                let ekx = try IHVPSolver.solve(v, queries: 3, network: net, train: data, ekfac: ek, options: oe, comm: SingleProcessCommunicator()).x
                var e0 = 0.0; for i in 0..<exact.count { e0 += (ekx[i] - exact[i]) * (ekx[i] - exact[i]) }
                func run(_ m: SolverMethod, _ cc: Double, _ k: Int, mom: Double? = nil) -> (Int?, Double, Double?) {
                    var o = SolverOptions(method: m, damping: lam); o.batchSize = 0; o.iterations = k; o.decayFactor = 1; o.learningRateScale = cc
                    if let mom { o.momentum = mom }
                    var first: Int? = nil
                    do {
                        let r = try IHVPSolver.solve(v, queries: 3, network: net, train: data, ekfac: ek, options: o, comm: SingleProcessCommunicator(), onIterate: { it, x in
                            if first == nil {
                                var e = 0.0; for i in 0..<x.count { e += (x[i] - exact[i]) * (x[i] - exact[i]) }
                                if e.squareRoot() / nx <= 1e-3 { first = it }
                            }
                        })
                        var e = 0.0; for i in 0..<exact.count { e += (r.x[i] - exact[i]) * (r.x[i] - exact[i]) }
                        return (first, e.squareRoot() / nx, r.report.lambdaMax)
                    } catch { return (nil, .nan, nil) }
                }
                print("task \(task) λ \(lam) ekfac relerr \(e0.squareRoot() / nx)")
                for cc in [0.25, 0.5, 1, 2] { let r = run(.astra, cc, 1500); print("  astra c \(cc): first \(r.0.map(String.init) ?? "-") final \(r.1) lmax \(r.2 ?? 0)") }
                for cc in [0.5, 1, 1.5] { let r = run(.astra, cc, 1500, mom: 0); print("  astra β0 c \(cc): first \(r.0.map(String.init) ?? "-") final \(r.1)") }
                for cc in [1, 1.9] { let r = run(.sni, cc, 20000); print("  sni c \(cc): first \(r.0.map(String.init) ?? "-") final \(r.1) lmax \(r.2 ?? 0)") }
                for cc in [1.0] { let r = run(.sni, cc, 5000, mom: 0.9); print("  sni β0.9 c \(cc): first \(r.0.map(String.init) ?? "-") final \(r.1) lmax \(r.2 ?? 0)") }
            }
        }
    }
}
