import AstraDist
import Foundation
import XCTest

/// Spearman, subset masks, LDS, the ground-truth journal and the work queue.
final class EvaluationTests: XCTestCase {

    // MARK: Spearman

    func testAverageRanksHandCases() {
        XCTAssertEqual(averageRanks([10, 20, 20, 30]), [1, 2.5, 2.5, 4])
        XCTAssertEqual(averageRanks([3, 1, 2]), [3, 1, 2])
        // Three-way tie at the bottom occupies ranks 1, 2, 3 → 2 each.
        XCTAssertEqual(averageRanks([5, 5, 9, 5]), [2, 2, 4, 2])
        XCTAssertEqual(averageRanks([7, 7]), [1.5, 1.5])
        XCTAssertEqual(averageRanks([]), [])
    }

    func testSpearmanHandCases() {
        // x = [1,2,2,3] → ranks [1, 2.5, 2.5, 4]; y = [1,3,2,4] → ranks [1, 3, 2, 4]; both means 2.5.
        // Deviations dx = [−1.5, 0, 0, 1.5], dy = [−1.5, 0.5, −0.5, 1.5].
        // Σdx·dy = 2.25 + 0 + 0 + 2.25 = 4.5; Σdx² = 4.5; Σdy² = 2.25 + 0.25 + 0.25 + 2.25 = 5.
        // ρ = 4.5 / √(4.5·5) = √0.9 ≈ 0.9486833.
        XCTAssertEqual(spearman([1, 2, 2, 3], [1, 3, 2, 4]), 0.9.squareRoot(), accuracy: 1e-15)
        // x = [1,1,2,2] → [1.5,1.5,3.5,3.5]; y = [1,2,1,2] → [1.5,3.5,1.5,3.5];
        // dx = [−1,−1,1,1], dy = [−1,1,−1,1]: Σdx·dy = 1 − 1 − 1 + 1 = 0 → ρ = 0.
        XCTAssertEqual(spearman([1, 1, 2, 2], [1, 2, 1, 2]), 0, accuracy: 1e-15)
        // x = [1,2,3,4], y = [1,3,2,4] (no ties): classic 1 − 6Σd²/(n(n²−1)) = 1 − 6·2/60 = 0.8.
        XCTAssertEqual(spearman([1, 2, 3, 4], [1, 3, 2, 4]), 0.8, accuracy: 1e-15)
        XCTAssertEqual(spearman([1, 2, 3], [3, 2, 1]), -1, accuracy: 1e-15)
        // Invariant to any increasing transform.
        let x: [Double] = [0.3, -1.2, 4.5, 2.2, 0.0, 7.1]
        XCTAssertEqual(spearman(x, x.map { exp($0) * 3 - 1 }), 1, accuracy: 1e-15)
        // Undefined: constant input, too few values, NaN.
        XCTAssertTrue(spearman([1, 2, 3], [5, 5, 5]).isNaN)
        XCTAssertTrue(spearman([4, 4], [1, 2]).isNaN)
        XCTAssertTrue(spearman([1], [2]).isNaN)
        XCTAssertTrue(spearman([1, 2, .nan], [1, 2, 3]).isNaN)
    }

    // MARK: Subset masks

    func testSubsetMasksExactSizeDeterministicAndPrefixStable() {
        let n = 37, m = 12
        let a = SubsetMasks.draw(count: m, population: n, fraction: 0.5, seed: 3)
        XCTAssertEqual(a.count, m * n)
        for j in 0..<m { XCTAssertEqual(a[(j * n)..<((j + 1) * n)].reduce(0) { $0 + Int($1) }, 18, "row \(j)") }
        XCTAssertTrue(a.allSatisfy { $0 <= 1 })
        XCTAssertEqual(a, SubsetMasks.draw(count: m, population: n, fraction: 0.5, seed: 3))
        XCTAssertNotEqual(a, SubsetMasks.draw(count: m, population: n, fraction: 0.5, seed: 4))
        // Row j depends on (seed, j) only: fewer subsets are a prefix.
        XCTAssertEqual(Array(a[0..<(5 * n)]), SubsetMasks.draw(count: 5, population: n, fraction: 0.5, seed: 3))
        // Rows differ from each other.
        XCTAssertEqual(Set((0..<m).map { Array(a[($0 * n)..<(($0 + 1) * n)]) }).count, m)

        let masks = SubsetMasks(count: m, population: n, bits: a)
        for j in 0..<m {
            let members = masks.members(row: j)
            XCTAssertEqual(members, (0..<n).filter { a[j * n + $0] == 1 })
            XCTAssertEqual(members.count, 18)
        }
        XCTAssertEqual(SubsetMasks.subsetSize(population: 100, fraction: 0.29), 29)
        XCTAssertEqual(SubsetMasks.subsetSize(population: 7, fraction: 0.5), 3)
        XCTAssertEqual(SubsetMasks.subsetSize(population: 10, fraction: 1), 10)
        XCTAssertEqual(SubsetMasks.subsetSize(population: 6144, fraction: 0.5), 3072)
    }

    /// Every example is in a subset with probability α (a biased shuffle would show here).
    func testSubsetMasksInclusionFrequency() {
        let n = 10, m = 4000
        let masks = SubsetMasks(drawing: m, population: n, fraction: 0.3, seed: 9)
        for i in 0..<n {
            let freq = Double((0..<m).reduce(0) { $0 + Int(masks.bits[$1 * n + i]) }) / Double(m)
            // σ = √(0.3·0.7/4000) ≈ 0.0072; 5σ ≈ 0.036.
            XCTAssertEqual(freq, 0.3, accuracy: 0.036, "example \(i)")
        }
    }

    // MARK: LDS

    func testPredictionsMatchDirectSums() throws {
        let n = 23, m = 9, q = 4
        let masks = SubsetMasks(drawing: m, population: n, fraction: 0.5, seed: 1)
        var rng = CounterRandom(seed: 2, purpose: .test)
        let scores = (0..<(q * n)).map { _ in Float(rng.nextNormal()) }
        let gamma = LDS.predictions(masks: masks, scores: scores, queries: q)
        for j in 0..<m { for k in 0..<q {
            let direct = masks.members(row: j).reduce(0.0) { $0 - Double(scores[k * n + $1]) }
            XCTAssertEqual(gamma[j * q + k], direct, accuracy: 1e-12)
        } }
    }

    /// (c) Ground truth that is an increasing function of Γ gives LDS exactly 1; a constant
    /// ground-truth query is undefined, skipped and counted.
    func testPerfectPredictorScoresOne() throws {
        let n = 40, m = 30, q = 5
        let masks = SubsetMasks(drawing: m, population: n, fraction: 0.5, seed: 5)
        var rng = CounterRandom(seed: 6, purpose: .test)
        let scores = (0..<(q * n)).map { _ in Float(rng.nextNormal()) }
        var gt = [Double](repeating: 0, count: m * q)
        for j in 0..<m { for k in 0..<q {
            // Independent of the GEMM: loop over members, then a monotone map.
            let s = masks.members(row: j).reduce(0.0) { $0 + Double(scores[k * n + $1]) }
            gt[j * q + k] = k == q - 1 ? 2.5 : exp(-0.3 * s) + 1
        } }
        let r = try LDS.evaluate(masks: masks, groundTruth: gt, scores: scores, queries: q)
        for k in 0..<(q - 1) { XCTAssertEqual(r.perQuery[k], 1, accuracy: 1e-12) }
        XCTAssertTrue(r.perQuery[q - 1].isNaN)
        XCTAssertEqual(r.undefinedQueries, 1)
        XCTAssertEqual(r.mean, 1, accuracy: 1e-12)
        XCTAssertEqual(r.standardError, 0, accuracy: 1e-12)
        XCTAssertEqual(r.subsets, m)
        // Negated scores (the wrong sign convention) give −1.
        let flipped = try LDS.evaluate(masks: masks, groundTruth: gt, scores: scores.map { -$0 }, queries: q)
        XCTAssertEqual(flipped.mean, -1, accuracy: 1e-12)
    }

    /// (b) Scores unrelated to the ground truth: mean LDS within 4 standard errors of 0.
    func testRandomScoresGiveZero() throws {
        let n = 50, m = 40, q = 60
        let masks = SubsetMasks(drawing: m, population: n, fraction: 0.5, seed: 7)
        var rng = CounterRandom(seed: 8, purpose: .test)
        let scores = (0..<(q * n)).map { _ in Float(rng.nextNormal()) }
        let gt = (0..<(m * q)).map { _ in rng.nextNormal() }
        let r = try LDS.evaluate(masks: masks, groundTruth: gt, scores: scores, queries: q)
        XCTAssertEqual(r.undefinedQueries, 0)
        // Under independence sd(ρ) ≈ 1/√(M−1) ≈ 0.16, so SE ≈ 0.02: not degenerate.
        XCTAssertGreaterThan(r.standardError, 0.01)
        XCTAssertLessThan(abs(r.mean), 4 * r.standardError, "mean \(r.mean) se \(r.standardError)")
        // The standard error matches its definition.
        let d = r.perQuery, mean = d.reduce(0, +) / Double(q)
        let sd = (d.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(q - 1)).squareRoot()
        XCTAssertEqual(r.standardError, sd / Double(q).squareRoot(), accuracy: 1e-15)
        XCTAssertEqual(r.mean, mean, accuracy: 1e-15)
    }

    /// (a) Ridge regression, where refitting on every subset is exact (normal equations):
    /// influence scores `τ(m,q) = ∇f_qᵀ (H + λI)⁻¹ ∇L_m` at the full-data fit must predict
    /// the refit measurements well.
    ///
    /// Subset objective `J_S(θ) = (1/|S|) Σ_{i∈S} (x_iᵀθ − t_i)² + (λ/2)‖θ‖²`, whose Hessian
    /// at full data is `H + λI` with `H = (2/N) XᵀX`. The subset fit reweights every example
    /// by `N/|S|·[i∈S]`, so to first order `f_q(θ_S) ≈ const − (1/|S|) Σ_{m∈S} τ(m,q)`:
    /// the 1/|S| scale is the same for all subsets and Spearman ignores it, so
    /// `Γ = −Σ_{m∈S} τ` must rank like the ground truth.
    func testRidgeRegressionInfluenceHasHighLDS() throws {
        let n = 60, d = 4, q = 10, m = 100, lambda = 0.05
        var rng = CounterRandom(seed: 11, purpose: .test)
        let theta0 = (0..<d).map { _ in rng.nextNormal() }
        // Correlated features of very different scales, so H is far from a multiple of I.
        let scale: [Double] = [3, 1, 0.3, 0.1]
        func feature() -> [Double] {
            let z = (0..<d).map { _ in rng.nextNormal() }
            var v = [Double](repeating: 0, count: d)
            for r in 0..<d { v[r] = scale[r] * (z[r] + 0.8 * (r > 0 ? z[r - 1] : 0)) }
            return v
        }
        let x = (0..<n).flatMap { _ in feature() }
        let t = (0..<n).map { i in (0..<d).reduce(0.0) { $0 + x[i * d + $1] * theta0[$1] } + 0.3 * rng.nextNormal() }
        let xq = (0..<q).flatMap { _ in feature() }
        // Query residuals of 1–2 in size, so f = |r| stays away from its kink at r = 0 on every
        // subset: where r changes sign across subsets f is not differentiable and no
        // first-order (influence) model can rank it.
        let tq = (0..<q).map { k in
            (0..<d).reduce(0.0) { $0 + xq[k * d + $1] * theta0[$1] } + (k % 2 == 0 ? 1 : -1) * (1 + rng.nextUniform())
        }

        func fit(_ rows: [Int]) -> [Double] {
            let s = Double(rows.count)
            var a = Matrix<Double>(rows: d, cols: d), b = Matrix<Double>(rows: d, cols: 1)
            for r in 0..<d { a[r, r] = lambda }
            for i in rows { for r in 0..<d {
                b[r, 0] += 2 / s * x[i * d + r] * t[i]
                for c in 0..<d { a[r, c] += 2 / s * x[i * d + r] * x[i * d + c] }
            } }
            return solveSPD(a, b)!.data
        }
        func f(_ theta: [Double], _ k: Int) -> Double { abs((0..<d).reduce(0.0) { $0 + xq[k * d + $1] * theta[$1] } - tq[k]) }

        // Full-data fit, Hessian + damping, query gradients, iHVPs.
        let theta = fit(Array(0..<n))
        var hd = Matrix<Double>(rows: d, cols: d)
        for i in 0..<n { for r in 0..<d { for c in 0..<d { hd[r, c] += 2 / Double(n) * x[i * d + r] * x[i * d + c] } } }
        for r in 0..<d { hd[r, r] += lambda }
        var gradF = Matrix<Double>(rows: d, cols: q)
        for k in 0..<q {
            let residual = (0..<d).reduce(0.0) { $0 + xq[k * d + $1] * theta[$1] } - tq[k]
            for r in 0..<d { gradF[r, k] = (residual >= 0 ? 1 : -1) * xq[k * d + r] }
        }
        let v = solveSPD(hd, gradF)!   // d×q
        var scores = [Float](repeating: 0, count: q * n)
        for i in 0..<n {
            let residual = (0..<d).reduce(0.0) { $0 + x[i * d + $1] * theta[$1] } - t[i]
            for k in 0..<q {
                scores[k * n + i] = Float((0..<d).reduce(0.0) { $0 + 2 * residual * x[i * d + $1] * v[$1, k] })
            }
        }

        let masks = SubsetMasks(drawing: m, population: n, fraction: 0.5, seed: 12)
        var gt = [Double](repeating: 0, count: m * q)
        for j in 0..<m {
            let thetaJ = fit(masks.members(row: j))
            for k in 0..<q { gt[j * q + k] = f(thetaJ, k) }
        }
        let r = try LDS.evaluate(masks: masks, groundTruth: gt, scores: scores, queries: q)
        XCTAssertEqual(r.undefinedQueries, 0)
        XCTAssertGreaterThanOrEqual(r.mean, 0.9, "per query \(r.perQuery)")
        // The sign matters: the opposite convention is strongly negative.
        XCTAssertLessThan(try LDS.evaluate(masks: masks, groundTruth: gt, scores: scores.map { -$0 }, queries: q).mean, -0.9)
        // The curvature matters (so this test can catch a wrong one): with I in place of
        // (H + λI)⁻¹ the ill-conditioned features drop the LDS to about 0.5 (0.97 above).
        var plain = [Float](repeating: 0, count: q * n)
        for i in 0..<n {
            let residual = (0..<d).reduce(0.0) { $0 + x[i * d + $1] * theta[$1] } - t[i]
            for k in 0..<q { plain[k * n + i] = Float((0..<d).reduce(0.0) { $0 + 2 * residual * x[i * d + $1] * gradF[$1, k] }) }
        }
        XCTAssertLessThan(try LDS.evaluate(masks: masks, groundTruth: gt, scores: plain, queries: q).mean, 0.8)
    }

    func testShapeMismatchIsAClearError() {
        let masks = SubsetMasks(drawing: 4, population: 10, fraction: 0.5, seed: 1)
        XCTAssertThrowsError(try LDS.evaluate(masks: masks, groundTruth: [Double](repeating: 0, count: 8), scores: [Float](repeating: 0, count: 22), queries: 2)) {
            XCTAssertTrue("\($0)".contains("N=10"), "\($0)")
        }
        XCTAssertThrowsError(try LDS.evaluate(masks: masks, groundTruth: [Double](repeating: 0, count: 7), scores: [Float](repeating: 0, count: 20), queries: 2)) {
            XCTAssertTrue("\($0)".contains("M=4"), "\($0)")
        }
    }

    func testResultJSONRoundTripWithUndefinedQueries() throws {
        let r = LDS.summarize([0.5, .nan, 0.7], subsets: 10)
        XCTAssertEqual(r.mean, 0.6, accuracy: 1e-15)
        XCTAssertEqual(r.standardError, (0.02).squareRoot() / 2.0.squareRoot(), accuracy: 1e-15)
        XCTAssertEqual(r.undefinedQueries, 1)
        let json = try JSONEncoder().encode(r)
        XCTAssertTrue(String(decoding: json, as: UTF8.self).contains("null"))
        XCTAssertEqual(try JSONDecoder().decode(LDSResult.self, from: json), r)
        let empty = LDS.summarize([.nan], subsets: 3)
        XCTAssertTrue(empty.mean.isNaN && empty.standardError.isNaN)
        XCTAssertEqual(try JSONDecoder().decode(LDSResult.self, from: JSONEncoder().encode(empty)), empty)
    }

    func testAverageScoresAndGroundTruthFromJobs() throws {
        XCTAssertEqual(LDS.averageScores([[1, 2, 3], [3, 4, 5]]), [2, 3, 4])
        XCTAssertEqual(LDS.averageScores([[1.5, -2]]), [1.5, -2])
        // M = 2, R = 2, Q = 3; job = j·R + r.
        let jobs: [Int: [Float]] = [0: [1, 2, 3], 1: [3, 4, 5], 2: [10, 10, 10], 3: [0, 0, 1]]
        XCTAssertEqual(try LDS.groundTruth(jobs: jobs, subsets: 2, repeats: 2, queries: 3).values, [2, 3, 4, 5, 5, 5.5])
        // A diverged retraining (non-finite losses) is left out of its subset's mean …
        var diverging = jobs; diverging[1] = [.nan, 4, .infinity]
        let kept = try LDS.groundTruth(jobs: diverging, subsets: 2, repeats: 2, queries: 3)
        XCTAssertEqual(kept.values, [1, 2, 3, 5, 5, 5.5])
        XCTAssertEqual(kept.diverged, [1])
        // … and a subset whose every retraining diverged is refused with one line.
        diverging[0] = [1, .nan, 3]
        XCTAssertThrowsError(try LDS.groundTruth(jobs: diverging, subsets: 2, repeats: 2, queries: 3)) {
            XCTAssertTrue("\($0)".contains("all 2 retrainings of subset 0 diverged"), "\($0)")
        }
        var partial = jobs; partial[2] = nil
        XCTAssertThrowsError(try LDS.groundTruth(jobs: partial, subsets: 2, repeats: 2, queries: 3)) {
            XCTAssertTrue("\($0)".contains("job 2"), "\($0)")
        }
        XCTAssertThrowsError(try LDS.groundTruth(jobs: jobs, subsets: 2, repeats: 2, queries: 4))
    }

    // MARK: Journal

    private func journalPath() -> String { TestSupport.temporaryDirectory("journal") + "/groundtruth/journal" }
    private func fileSize(_ path: String) -> Int { (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? -1 }
    private func rewrite(_ path: String, _ edit: (inout [UInt8]) -> Void) {
        var b = [UInt8](FileManager.default.contents(atPath: path)!)
        edit(&b)
        _ = FileManager.default.createFile(atPath: path, contents: Data(b))
    }
    private let header = #"{"M":4,"Q":3,"R":2,"masks":"abc","setting":"def"}"#
    private let values: [Int: [Float]] = [0: [1, 2, 3], 5: [-1.5, .infinity, 0], 3: [7, 8, 9]]

    private func writeThree(_ path: String) throws {
        let j = try Journal.open(path: path, header: header)
        XCTAssertTrue(j.completed.isEmpty)
        for job in [0, 5, 3] { try j.append(job: job, values: values[job]!) }
        j.close()
    }

    func testJournalRoundTrip() throws {
        let path = journalPath()
        try writeThree(path)
        let recordSize = 20 + 4 * 3
        let headerSize = 16 + header.utf8.count + 4
        XCTAssertEqual(fileSize(path), headerSize + 3 * recordSize)
        let j = try Journal.open(path: path, header: header)
        XCTAssertEqual(j.completed, values)
        XCTAssertTrue(j.warnings.isEmpty)
        // A job is recorded once.
        XCTAssertThrowsError(try j.append(job: 5, values: [0, 0, 0]))
        try j.append(job: 1, values: [4, 4, 4])
        j.close()
        XCTAssertEqual(try Journal.open(path: path, header: header).completed[1], [4, 4, 4])
    }

    func testJournalTornTailIsCutAndRecovered() throws {
        let path = journalPath()
        try writeThree(path)
        let full = fileSize(path)
        rewrite(path) { $0.removeLast(5) }   // crash in the middle of the last append
        var j = try Journal.open(path: path, header: header)
        XCTAssertEqual(j.completed, [0: values[0]!, 5: values[5]!])
        XCTAssertEqual(j.warnings.count, 1)
        XCTAssertTrue(j.warnings[0].contains("incomplete last record"), j.warnings[0])
        XCTAssertEqual(fileSize(path), full - 32)
        try j.append(job: 3, values: values[3]!)   // the rerun job
        j.close()
        XCTAssertEqual(fileSize(path), full)

        // Zero fill after a crash, and the first 7 bytes of a record, are torn tails too.
        rewrite(path) { $0 += [UInt8](repeating: 0, count: 100) }
        j = try Journal.open(path: path, header: header)
        XCTAssertEqual(j.completed, values)
        XCTAssertEqual(j.warnings.count, 1)
        j.close()
        rewrite(path) { $0 += Journal.encodeRecord(job: 9, values: [1, 2, 3]).prefix(7) }
        j = try Journal.open(path: path, header: header)
        XCTAssertEqual(j.completed, values)
        j.close()
        XCTAssertEqual(fileSize(path), full)
    }

    func testJournalCorruptedMiddleIsReported() throws {
        let path = journalPath()
        try writeThree(path)
        let headerSize = 16 + header.utf8.count + 4
        rewrite(path) { $0[headerSize + 32 + 18] ^= 0x40 }   // a value byte of the second record
        XCTAssertThrowsError(try Journal.open(path: path, header: header)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains(path) && message.contains("corrupted") && message.contains("byte \(headerSize + 32)"), message)
        }
        // Nothing was truncated.
        XCTAssertEqual(fileSize(path), headerSize + 3 * 32)
    }

    func testJournalHeaderMismatchIsRefused() throws {
        let path = journalPath()
        try writeThree(path)
        let other = #"{"M":4,"Q":3,"R":2,"masks":"xyz","setting":"def"}"#
        XCTAssertThrowsError(try Journal.open(path: path, header: other)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains(path) && message.contains(self.header) && message.contains(other)
                          && message.contains("--workdir") && message.contains("groundtruth/"), message)
        }
        // Not a journal at all.
        let junk = journalPath()
        try FileManager.default.createDirectory(atPath: (junk as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: junk, contents: Data("hello".utf8))
        XCTAssertThrowsError(try Journal.open(path: junk, header: header)) { XCTAssertTrue("\($0)".contains("not a valid"), "\($0)") }
    }

    func testJournalIsExclusive() throws {
        let path = journalPath()
        let j = try Journal.open(path: path, header: header)
        XCTAssertThrowsError(try Journal.open(path: path, header: header)) { XCTAssertTrue("\($0)".contains("in use"), "\($0)") }
        j.close()
        XCTAssertNoThrow(try Journal.open(path: path, header: header))
    }

    // MARK: Work queue

    func testWorkQueueSingleRankRunsEveryJobOnceInOrder() throws {
        var seen: [Int] = [], progress: [Int] = []
        try WorkQueue.run(jobs: [4, 2, 9, 0], comm: SingleProcessCommunicator(),
                          work: { [Float($0), Float($0 * $0)] },
                          onResult: { job, v in XCTAssertEqual(v, [Float(job), Float(job * job)]); seen.append(job) },
                          progress: { done, total in XCTAssertEqual(total, 4); progress.append(done) })
        XCTAssertEqual(seen, [4, 2, 9, 0])
        XCTAssertEqual(progress, [1, 2, 3, 4])
        XCTAssertThrowsError(try WorkQueue.run(jobs: [1, 2, 3], comm: SingleProcessCommunicator(),
                                               work: { if $0 == 2 { throw AstraError("boom") }; return [] },
                                               onResult: { _, _ in })) {
            XCTAssertEqual("\($0)", "job 2 failed on rank 0: boom")
        }
    }

    /// Three in-process "ranks" over a thread-safe fake communicator: every job exactly
    /// once despite out-of-order completion, every rank works, rank 0 touches its
    /// communicator from one thread only, and `onResult` runs on the calling thread.
    func testWorkQueueThreeRanks() throws {
        let cluster = FakeCluster(size: 3)
        let jobs = Array(0..<40).map { $0 * 3 }
        let log = Log()
        let outcomes = try cluster.run { comm in
            var results: [Int: [Float]] = [:], done: [Int] = []
            let caller = pthread_self()
            try WorkQueue.run(jobs: comm.rank == 0 ? jobs : [], comm: comm, work: { job in
                usleep(UInt32((job * 7919) % 5) * 400)   // uneven durations: out-of-order completion
                log.add(rank: comm.rank, job: job)
                return [Float(job), Float(job) / 2]
            }, onResult: { job, v in
                XCTAssertEqual(pthread_equal(caller, pthread_self()), 1, "onResult on another thread")
                XCTAssertNil(results[job]); results[job] = v
            }, progress: { d, total in done.append(d); XCTAssertEqual(total, jobs.count) })
            if comm.rank == 0 {
                XCTAssertEqual(Set(results.keys), Set(jobs))
                for (job, v) in results { XCTAssertEqual(v, [Float(job), Float(job) / 2]) }
                XCTAssertEqual(done, Array(1...jobs.count))
            } else {
                XCTAssertTrue(results.isEmpty)
            }
        }
        XCTAssertTrue(outcomes.allSatisfy { $0 == nil }, "\(outcomes)")
        XCTAssertEqual(log.jobs.sorted(), jobs, "each job worked exactly once")
        for r in 0..<3 { XCTAssertGreaterThan(log.count(rank: r), 0, "rank \(r) did no work") }
        XCTAssertEqual(cluster.threadViolations(rank: 0), 0)
        XCTAssertTrue(cluster.mailboxesEmpty)
    }

    /// A failing job on a worker, or a failing `onResult`, stops every rank cleanly with the
    /// same message; the other results are still delivered.
    func testWorkQueueFailuresStopEveryRank() throws {
        for failure in ["worker", "onResult"] {
            let cluster = FakeCluster(size: 3)
            let jobs = Array(0..<30)
            let outcomes = try cluster.run { comm in
                var delivered = 0
                try WorkQueue.run(jobs: jobs, comm: comm, work: { job in
                    usleep(300)
                    // Job 3 is in rank 2's first pair (the coordinator feeds workers 2 jobs each first).
                    if failure == "worker" && job == 3 { XCTAssertEqual(comm.rank, 2); throw AstraError("diverged") }
                    return [1]
                }, onResult: { job, _ in
                    delivered += 1
                    if failure == "onResult" && job == 5 { throw AstraError("disk full") }
                })
            }
            XCTAssertEqual(outcomes.count, 3)
            let first = outcomes[0] ?? ""
            XCTAssertTrue(outcomes.allSatisfy { $0 == first }, "\(failure): \(outcomes)")
            if failure == "worker" {
                XCTAssertEqual(first, "job 3 failed on rank 2: diverged")
            } else {
                XCTAssertEqual(first, "disk full")
            }
            XCTAssertTrue(cluster.mailboxesEmpty)
        }
    }
}

// MARK: test doubles

/// Which rank worked which job (thread-safe).
private final class Log: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [(rank: Int, job: Int)] = []
    func add(rank: Int, job: Int) { lock.lock(); entries.append((rank, job)); lock.unlock() }
    var jobs: [Int] { lock.lock(); defer { lock.unlock() }; return entries.map(\.job) }
    func count(rank: Int) -> Int { lock.lock(); defer { lock.unlock() }; return entries.filter { $0.rank == rank }.count }
}

/// In-process ranks on threads, with FIFO mailboxes (MPI's pairwise ordering) and a record
/// of which thread touches each rank's communicator.
private final class FakeCluster: @unchecked Sendable {
    let size: Int
    let cond = NSCondition()
    var boxes: [[(source: Int, tag: Int, bytes: [UInt8])]]
    var threads: [pthread_t?]
    var violations: [Int]

    init(size: Int) {
        self.size = size
        boxes = Array(repeating: [], count: size)
        threads = Array(repeating: nil, count: size)
        violations = Array(repeating: 0, count: size)
    }

    func threadViolations(rank: Int) -> Int { cond.lock(); defer { cond.unlock() }; return violations[rank] }
    var mailboxesEmpty: Bool { cond.lock(); defer { cond.unlock() }; return boxes.allSatisfy(\.isEmpty) }

    /// Runs `body` on every rank (rank 0 on the calling thread) and returns each rank's
    /// error message (nil = returned normally). Fails the test if a rank hangs for 30 s.
    func run(_ body: @escaping @Sendable (FakeComm) throws -> Void) throws -> [String?] {
        let results = ResultBox(size)
        let group = DispatchGroup()
        for r in 1..<size {
            group.enter()
            let t = Thread { [self] in
                do { try body(FakeComm(self, r)) } catch { results.set(r, "\(error)") }
                group.leave()
            }
            t.start()
        }
        do { try body(FakeComm(self, 0)) } catch { results.set(0, "\(error)") }
        if group.wait(timeout: .now() + 30) == .timedOut { XCTFail("a worker rank hung"); throw AstraError("hang") }
        return results.values
    }

    func touch(_ rank: Int) {   // caller holds cond
        let me = pthread_self()
        if let t = threads[rank] { if pthread_equal(t, me) == 0 { violations[rank] += 1 } } else { threads[rank] = me }
    }
}

private final class ResultBox: @unchecked Sendable {
    let lock = NSLock()
    var values: [String?]
    init(_ n: Int) { values = Array(repeating: nil, count: n) }
    func set(_ r: Int, _ v: String) { lock.lock(); values[r] = v; lock.unlock() }
}

private final class FakeComm: Communicator, @unchecked Sendable {
    let cluster: FakeCluster
    let rank: Int
    var size: Int { cluster.size }
    init(_ cluster: FakeCluster, _ rank: Int) { self.cluster = cluster; self.rank = rank }

    func send(_ bytes: [UInt8], to dest: Int, tag: Int) {
        cluster.cond.lock(); cluster.touch(rank)
        cluster.boxes[dest].append((rank, tag, bytes))
        cluster.cond.broadcast(); cluster.cond.unlock()
    }
    private func matches(_ m: (source: Int, tag: Int, bytes: [UInt8]), _ from: Int?, _ tag: Int?) -> Bool {
        (from == nil || m.source == from) && (tag == nil || m.tag == tag)
    }
    func receive(from: Int?, tag: Int?) -> (bytes: [UInt8], source: Int, tag: Int) {
        cluster.cond.lock(); cluster.touch(rank)
        defer { cluster.cond.unlock() }
        while true {
            if let i = cluster.boxes[rank].firstIndex(where: { matches($0, from, tag) }) {
                let m = cluster.boxes[rank].remove(at: i)
                return (m.bytes, m.source, m.tag)
            }
            cluster.cond.wait()
        }
    }
    func probe(from: Int?, tag: Int?) -> (source: Int, tag: Int)? {
        cluster.cond.lock(); cluster.touch(rank)
        defer { cluster.cond.unlock() }
        return cluster.boxes[rank].first(where: { matches($0, from, tag) }).map { ($0.source, $0.tag) }
    }
    func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) {
        let tag = -77
        if rank == root {
            for r in 0..<size where r != root { send(Array(UnsafeRawBufferPointer(buffer)), to: r, tag: tag) }
        } else {
            let m = receive(from: root, tag: tag)
            precondition(m.bytes.count == buffer.count)
            buffer.copyBytes(from: m.bytes)
        }
    }
    func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) { fatalError("unused") }
    func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) { fatalError("unused") }
    func allreduceMax(_ buffer: UnsafeMutableBufferPointer<Double>) { fatalError("unused") }
    func gatherv(_ bytes: [UInt8], root: Int) -> [[UInt8]]? { fatalError("unused") }
    func barrier() { fatalError("unused") }
    func split(color: Int, key: Int) -> Communicator { fatalError("unused") }
    func abort(_ code: Int32) -> Never { fatalError("abort \(code)") }
}
