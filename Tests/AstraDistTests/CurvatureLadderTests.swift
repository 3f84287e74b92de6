import AstraDist
import Foundation
import XCTest

/// The curvature ladder (spec §12): the dense matrices, their relations, the inversion rule,
/// the error decomposition, the bootstrap interval, and the command on 1 and 2 ranks.
final class CurvatureLadderTests: XCTestCase {
    static let single = SingleProcessCommunicator()

    static func ladder(_ widths: [Int], task: Dataset.Task, n: Int = 29, activation: Pointwise = .gelu) throws -> (CurvatureLadder, Network<Double>, Dataset) {
        let c = widths.last!
        let data = TestSupport.synthetic(task: task, n: n, d: widths[0], c: c, seed: 13, firstGlobalIndex: 500)
        let recipe = TrainingRecipe(learningRate: 0.05, momentum: 0.9, weightDecay: 0, batchSize: 8, epochs: 15)
        let net = Trainer<Double>(shape: NetworkShape(widths: widths, activation: activation), recipe: recipe).train(on: data, seed: 4)
        return (try CurvatureLadder.compute(network: net, train: data, comm: single, seed: 3), net, data)
    }

    static func maxDiff(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).map { abs($0 - $1) }.max() ?? 0 }
    static func maxAbs(_ a: [Double]) -> Double { a.map(abs).max() ?? 0 }

    /// Row k of example x's output Jacobian ∂y_k/∂θ (P values), by one backward pass.
    static func jacobianRow(_ net: Network<Double>, _ x: [Double], output k: Int) -> [Double] {
        let ws = Workspace<Double>(shape: net.shape, capacity: 1)
        var g = [Double](repeating: 0, count: net.shape.parameterCount)
        x.withUnsafeBufferPointer { net.forward($0.baseAddress!, batch: 1, workspace: ws) }
        for i in 0..<net.shape.outputCount { ws.outputGradient[i] = i == k ? 1 : 0 }
        g.withUnsafeMutableBufferPointer { net.backward(batch: 1, workspace: ws, gradient: $0.baseAddress!) }
        return g
    }

    /// H − G is the residual `(1/N) Σ_n Σ_k (∂L_n/∂y_k) ∇²_θ y_{n,k}`, built here from the
    /// network's second derivatives by central differences of its Jacobian rows (no
    /// R-operator): it checks the Hessian's second-order terms independently of the GGN.
    /// (H against differences of the gradient is OperationConformanceTests' and CurvatureTests'.)
    func testHessianMinusGGNIsTheSecondDerivativeResidual() throws {
        for task in [Dataset.Task.classification, .regression] {
            let (ladder, net, data) = try Self.ladder([3, 4, 3, 3], task: task, n: 9)
            let p = net.shape.parameterCount, c = net.shape.outputCount, h = 1e-5
            var r = Matrix<Double>(rows: p, cols: p)
            for n in 0..<data.count {
                let x = (0..<data.featureCount).map { Double(data.inputs[n * data.featureCount + $0]) }
                let ws = Workspace<Double>(shape: net.shape, capacity: 1)
                x.withUnsafeBufferPointer { net.forward($0.baseAddress!, batch: 1, workspace: ws) }
                let y = (0..<c).map { ws.output[$0] }
                // ∂L/∂y: softmax − one-hot (cross-entropy), 2(y − t) (squared error).
                let residual: [Double]
                if task == .classification {
                    let m = y.max()!, e = y.map { exp($0 - m) }, z = e.reduce(0, +)
                    let label = Int(data.targets[n])
                    residual = (0..<c).map { e[$0] / z - ($0 == label ? 1 : 0) }
                } else {
                    residual = (0..<c).map { 2 * (y[$0] - Double(data.targets[n * c + $0])) }
                }
                for j in 0..<p {
                    var plus = net, minus = net
                    plus.parameters[j] += h; minus.parameters[j] -= h
                    for k in 0..<c {
                        let jp = Self.jacobianRow(plus, x, output: k), jm = Self.jacobianRow(minus, x, output: k)
                        for i in 0..<p { r[i, j] += residual[k] * (jp[i] - jm[i]) / (2 * h) / Double(data.count) }
                    }
                }
            }
            var hg = ladder.hessian
            for i in hg.data.indices { hg.data[i] -= ladder.ggn.data[i] }
            XCTAssertGreaterThan(hg.frobeniusNorm, 1e-3 * ladder.hessian.frobeniusNorm, "\(task): a GELU net's H should differ from G")
            XCTAssertLessThan(hg.frobeniusDistance(to: r) / hg.frobeniusNorm, 1e-6, "\(task): H − G ≠ Σ ∂L/∂y ∇²y")
        }
    }

    /// One linear layer with squared error: the GGN is S ⊗ A exactly, so EK-FAC with the exact
    /// Fisher, built densely as (Q_S⊗Q_A) diag(Λ) (Q_S⊗Q_A)ᵀ, is the block GGN (= G).
    func testEKFACIsTheBlockGGNForLinearRegression() throws {
        let (ladder, _, _) = try Self.ladder([4, 3], task: .regression)
        let e = ladder.matrix(.ekfac), b = ladder.matrix(.blockGGN)
        XCTAssertGreaterThan(Self.maxAbs(b.data), 0.1)
        XCTAssertLessThan(e.frobeniusDistance(to: b) / b.frobeniusNorm, 1e-12)
        // Not so for softmax cross-entropy: its block is not Kronecker-structured.
        let (cls, _, _) = try Self.ladder([4, 3], task: .classification)
        XCTAssertGreaterThan(cls.matrix(.ekfac).frobeniusDistance(to: cls.matrix(.blockGGN)) / cls.matrix(.blockGGN).frobeniusNorm, 1e-4)
    }

    /// K-FAC and EK-FAC act diagonally in the same basis Q_S ⊗ Q_A: for a vector v with
    /// coefficients c in that basis, K v and E v have coefficients λ_Sλ_Aᵀ ∘ c and Λ ∘ c, and
    /// the two matrices commute. Checked through the dense matrices' action.
    func testKFACAndEKFACShareTheirEigenbasis() throws {
        let (ladder, net, _) = try Self.ladder([3, 5, 4, 3], task: .classification)
        let fit = ladder.exactFit, p = net.shape.parameterCount
        var rng = CounterRandom(seed: 5, purpose: .test, index: 3)
        let coefficients = (0..<p).map { _ in rng.nextNormal() }
        func fromBasis(_ c: [Double]) -> [Double] {
            var out = c
            c.withUnsafeBufferPointer { cp in out.withUnsafeMutableBufferPointer { fit.fromEigenbasis(cp.baseAddress!, queries: 1, into: $0.baseAddress!) } }
            return out
        }
        func times(_ m: Matrix<Double>, _ v: [Double]) -> [Double] { m.multiplied(by: Matrix(rows: p, cols: 1, data: v)).data }
        let v = fromBasis(coefficients)
        let e = ladder.matrix(.ekfac), k = ladder.matrix(.kfac)
        let ev = times(e, v), kv = times(k, v)
        let expectE = fromBasis(zip(coefficients, fit.diagonal()).map(*)), expectK = fromBasis(zip(coefficients, fit.diagonal(kfac: true)).map(*))
        XCTAssertLessThan(Self.maxDiff(ev, expectE) / Self.maxAbs(expectE), 1e-10)
        XCTAssertLessThan(Self.maxDiff(kv, expectK) / Self.maxAbs(expectK), 1e-10)
        XCTAssertGreaterThan(Self.maxDiff(ev, kv) / Self.maxAbs(ev), 1e-3, "EK-FAC and K-FAC should differ on a deep net")
        let ekv = times(e, kv), kev = times(k, ev)
        XCTAssertLessThan(Self.maxDiff(ekv, kev) / Self.maxAbs(ekv), 1e-10, "EK-FAC and K-FAC must commute")
    }

    /// George et al.: with the exact Fisher, EK-FAC's Λ is the Frobenius-optimal diagonal in the
    /// K-FAC eigenbasis, so every block is at least as close to the block GGN as K-FAC's.
    func testEKFACIsCloserToTheBlockGGNThanKFAC() throws {
        for task in [Dataset.Task.classification, .regression] {
            let (ladder, _, _) = try Self.ladder([3, 6, 5, 3], task: task, n: 41)
            let e = ladder.blockDistancesToGGN(ladder.matrix(.ekfac)), k = ladder.blockDistancesToGGN(ladder.matrix(.kfac))
            let zero = Matrix<Double>(rows: ladder.ggn.rows, cols: ladder.ggn.cols, data: [Double](repeating: 0, count: ladder.ggn.rows * ladder.ggn.cols))
            let norms = ladder.blockDistancesToGGN(zero)
            // Where both are exact (regression's one-output last layer: a Kronecker block), both
            // distances are rounding (~1e-15 ‖G_b‖) and either may be the smaller.
            for l in e.indices { XCTAssertLessThanOrEqual(e[l], k[l] * (1 + 1e-12) + 1e-12 * norms[l], "\(task) block \(l)") }
            XCTAssertTrue(zip(e, k).contains { $0 < 0.99 * $1 }, "\(task): EK-FAC should improve on K-FAC somewhere")
        }
    }

    /// The clipped rule is the exact damped solve for a positive semi-definite matrix, clips
    /// negative eigenvalues otherwise; the pseudo-inverse keeps their sign.
    func testInversionRules() throws {
        let (ladder, _, _) = try Self.ladder([3, 4, 3], task: .classification)
        let p = ladder.ggn.rows, lambda = 1e-3
        var rng = CounterRandom(seed: 2, purpose: .test, index: 9)
        let v = Matrix<Double>(rows: p, cols: 2, data: (0..<(2 * p)).map { _ in rng.nextNormal() })
        var damped = ladder.ggn
        for i in 0..<p { damped[i, i] += lambda }
        let exact = solveSPD(damped, v)!
        let g = try ladder.spectrum(.ggn, dense: ladder.ggn)
        XCTAssertLessThan(Self.maxDiff(g.inverseApplied(to: v, damping: lambda, rule: .clipped).data, exact.data) / Self.maxAbs(exact.data), 1e-8)
        // A symmetric matrix with eigenvalues (−1, 2): clipped → 1/λ and 1/(2+λ); pinv → 1/(−1+λ), 1/(2+λ).
        let m = Matrix<Double>(rows: 2, cols: 2, data: [0.5, 1.5, 1.5, 0.5])
        let s = try SpectralBlocks(m, blocks: [0..<2])
        XCTAssertEqual(s.negativeCount, 1)
        let u = Matrix<Double>(rows: 2, cols: 1, data: [1, -1])  // the eigenvector of −1
        XCTAssertEqual(s.inverseApplied(to: u, damping: 0.1, rule: .clipped).data[0], 10, accuracy: 1e-9)
        XCTAssertEqual(s.inverseApplied(to: u, damping: 0.1, rule: .pseudoInverse).data[0], 1 / (-0.9), accuracy: 1e-9)
    }

    func testOverlapAndDecomposition() {
        XCTAssertEqual(CurvatureLadder.overlap([3, 1, 2], [1, 2, 3]), 1)
        XCTAssertEqual(CurvatureLadder.overlap([0, 0], [3, 4]), 0, accuracy: 1e-15)
        let d = ErrorDecomposition(names: ["H", "G", "B", "E", "K"], errors: [0, 0.2, 0.3, 0.4, 1.0], lds: [0.5, 0.45, 0.44, 0.4, 0.1],
                                   standardErrors: [0.01, 0.01, 0.01, 0.01, 0.01])
        XCTAssertTrue(d.ldsSharesMeaningful)
        XCTAssertLessThan(Self.maxDiff(d.steps.map { $0.errorSharePercent! }, [20, 10, 10, 60]), 1e-9)
        XCTAssertEqual(d.steps.map { $0.ldsSharePercent! }.reduce(0, +), 100, accuracy: 1e-9)
        XCTAssertEqual(d.steps[3].ldsSharePercent!, 75, accuracy: 1e-9)
        let noisy = ErrorDecomposition(names: ["H", "K"], errors: [0, 1], lds: [0.5, 0.49], standardErrors: [0.02, 0.02])
        XCTAssertFalse(noisy.ldsSharesMeaningful)
        XCTAssertNil(noisy.steps[0].ldsSharePercent)
        XCTAssertEqual(noisy.steps[0].ldsLoss, 0.01, accuracy: 1e-12)
    }

    func testBootstrapIntervalBracketsTheLDS() {
        let m = 40, q = 6
        var rng = CounterRandom(seed: 1, purpose: .test, index: 1)
        let gt = (0..<(m * q)).map { _ in rng.nextNormal() }
        let pr = gt.map { $0 + 0.8 * rng.nextNormal() }
        let lds = LDS.evaluate(groundTruth: gt, predictions: pr, subsets: m, queries: q).mean
        let ci = BootstrapInterval(groundTruth: gt, predictions: pr, subsets: m, queries: q, resamples: 400)
        XCTAssertLessThan(ci.low, lds); XCTAssertGreaterThan(ci.high, lds)
        XCTAssertLessThan(ci.high - ci.low, 0.5); XCTAssertGreaterThan(ci.high - ci.low, 0.01)
        XCTAssertEqual(ci, BootstrapInterval(groundTruth: gt, predictions: pr, subsets: m, queries: q, resamples: 400), "seeded")
    }

    /// The command on a tiny sweep point (width 2 at depth 1, 4 subsets × 1 retraining) gives
    /// the same ladder on 1 and 2 ranks, and writes its tables and figures.
    func testCommandSameOnOneAndTwoRanks() throws {
        var results: [[String: Any]] = []
        for ranks in [1, 2] {
            let dir = TestSupport.temporaryDirectory("curvature-\(ranks)")
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let r = try TestSupport.run(["curvature", "--workdir", dir, "--sweep", "width", "--values", "2", "--masks", "4", "--repeats", "1", "--bootstrap", "50"],
                                        ranks: ranks, timeout: 400)
            XCTAssertEqual(r.status, 0, r.stderr)
            for f in ["width.csv", "width.json", "width-decomposition.csv", "width-lds.svg", "width-decomposition.svg"] {
                XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir)/curvature/\(f)"), f)
            }
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/curvature/width-2/ladder.json"))) as! [String: Any]
            results.append(json["ladder"] as! [String: Any])
            // Resumes: a second run skips the finished point.
            let again = try TestSupport.run(["curvature", "--workdir", dir, "--sweep", "width", "--values", "2", "--masks", "4", "--repeats", "1", "--bootstrap", "50"],
                                            ranks: ranks, timeout: 200)
            XCTAssertTrue(again.stderr.contains("already done"), again.stderr)
        }
        func numbers(_ l: [String: Any]) -> [Double] {
            var out = [l["residualShare"] as! Double]
            for e in l["entries"] as! [[String: Any]] {
                out += [e["errorToHessian"] as! Double, e["errorToGGN"] as! Double] + (e["blockOverlap"] as! [Double])
                for i in e["influence"] as! [[String: Any]] { out.append((i["lds"] as! [String: Any])["mean"] as! Double) }
            }
            return out
        }
        let a = numbers(results[0]), b = numbers(results[1])
        XCTAssertEqual(a.count, b.count)
        XCTAssertGreaterThan(a.count, 30)
        XCTAssertLessThan(Self.maxDiff(a, b), 1e-7, "1 and 2 ranks differ beyond summation order")
    }

    func testCommandRefusesBadSweep() throws {
        let dir = TestSupport.temporaryDirectory("curvature-bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try TestSupport.run(["curvature", "--workdir", dir, "--sweep", "height"], timeout: 60)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertEqual(r.stderr.split(separator: "\n").filter { $0.hasPrefix("error:") }.count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("--sweep"), r.stderr)
    }
}
