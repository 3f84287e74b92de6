@testable import AstraDist
import Foundation
import XCTest

final class ZZSolverLmaxTmp: XCTestCase {
    func testLambdaMaxEstimates() throws {
        let setting = ProcessInfo.processInfo.environment["ZZ_SETTING"] ?? "digits"
        let (net, data) = TestSupport.trainPreset(setting)
        let damping = TestSupport.config(setting).damping
        let n = data.train.count
        let comm = SingleProcessCommunicator()
        let ek = try FitRunner.fit(network: net, data: data.train, shard: 0..<n, comm: comm, mode: .sampled, seed: 0, batchSize: 256)
        for e in [256, 1024, n] {
            let set = SolverObjective<Float>.evaluationSet(count: e, population: n)
            for pre in [true, false] {
                var s: [String] = []
                for iters in [5, 10, 15, 30, 100] {
                    let l = try NeumannSolvers.estimateLambdaMax(network: net, train: data.train, ekfac: pre ? ek : nil, damping: damping, evaluationSet: set, iterations: iters, comm: comm)
                    s.append(String(format: "%d:%.2f", iters, l))
                }
                print("E \(e) preconditioned \(pre): \(s.joined(separator: " "))")
            }
        }
    }
}
