import AstraDist
import Foundation
import XCTest

final class ZZSolverExploreTmp: XCTestCase {
    func testPresetSweep() throws {
        let env = ProcessInfo.processInfo.environment
        let setting = env["ZZ_SETTING"] ?? "digits"
        let q = Int(env["ZZ_Q"] ?? "10")!
        let seeds = (env["ZZ_SEEDS"] ?? "0").split(separator: ",").map { UInt64($0)! }
        let (net, data) = TestSupport.trainPreset(setting)
        let damping = TestSupport.config(setting).damping
        let n = data.train.count
        let comm = SingleProcessCommunicator()
        let ek = try FitRunner.fit(network: net, data: data.train, shard: 0..<n, comm: comm, mode: .sampled, seed: 0, batchSize: 256)
        let v = net.measurementGradients(queries: data.queries.subset(Array(0..<q))).block
        var out = "setting \(setting) N \(n) P \(net.shape.parameterCount) λ \(damping) Q \(q)\n"
        func log(_ s: String) { print(s); out += s + "\n"; try? out.write(toFile: "/tmp/solver-defaults-\(setting)-\(env["ZZ_TAG"] ?? "").txt", atomically: true, encoding: .utf8) }
        var exact: [Float]? = nil
        var hstar: Double? = nil
        if net.shape.parameterCount <= 8000 {
            var o = SolverOptions(method: .exact, damping: damping); o.evaluationBatch = n
            let r = try IHVPSolver.solve(v, queries: q, network: net, train: data.train, ekfac: ek, options: o, comm: comm)
            exact = r.x; hstar = r.report.finalObjective
            log("exact h* = \(r.report.finalObjective) (\(r.report.seconds) s)")
        }
        for m in [SolverMethod.identity, .kfac, .ekfac] {
            var o = SolverOptions(method: m, damping: damping); o.evaluationBatch = n
            let r = try IHVPSolver.solve(v, queries: q, network: net, train: data.train, ekfac: ek, options: o, comm: comm)
            log("\(m): h = \(r.report.finalObjective)\(relerr(r.x))")
        }
        func relerr(_ x: [Float]) -> String {
            guard let exact else { return "" }
            var e = 0.0, nn = 0.0
            for i in 0..<x.count { let d = Double(x[i]) - Double(exact[i]); e += d * d; nn += Double(exact[i]) * Double(exact[i]) }
            return String(format: ", relerr %.3e", (e / nn).squareRoot())
        }
        func gap(_ h: Double) -> String { hstar.map { String(format: " (gap %.2e)", (h - $0) / abs($0)) } ?? "" }
        func run(_ m: SolverMethod, _ c: Double, _ k: Int, beta: Double? = nil, decay: Double? = nil, seed: UInt64) {
            var o = SolverOptions(method: m, damping: damping); o.evaluationBatch = n; o.iterations = k; o.learningRateScale = c; o.seed = seed
            o.traceEvery = k >= 1000 ? 250 : 50
            if let beta { o.momentum = beta }
            if let decay { o.decayFactor = decay }
            do {
                let r = try IHVPSolver.solve(v, queries: q, network: net, train: data.train, ekfac: ek, options: o, comm: comm)
                let tr = r.report.trace.map { String(format: "%d:%.4g", $0.iteration, $0.objective) }.joined(separator: " ")
                log("\(m) c \(c) β \(o.momentum) decay \(o.decayFactor) K \(k) seed \(seed): λmax \(String(format: "%.3g", r.report.lambdaMax ?? 0)) α \(String(format: "%.3g", r.report.learningRate ?? 0)) final \(String(format: "%.5g", r.report.finalObjective))\(gap(r.report.finalObjective))\(relerr(r.x)) [\(tr)] \(String(format: "%.1f", r.report.seconds)) s")
            } catch { log("\(m) c \(c) β \(o.momentum) K \(k) seed \(seed): \(error)") }
        }
        let astraC = (env["ZZ_ASTRA"] ?? "").split(separator: ",").map { Double($0)! }
        let sniC = (env["ZZ_SNI"] ?? "").split(separator: ",").map { Double($0)! }
        for seed in seeds {
            for c in astraC { run(.astra, c, 200, seed: seed) }
            for c in sniC { run(.sni, c, 2000, seed: seed) }
        }
    }
}
