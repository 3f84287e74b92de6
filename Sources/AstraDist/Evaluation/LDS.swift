import Foundation

/// The Linear Datamodeling Score of one set of scores (spec §9).
///
/// JSON: every non-finite double (an undefined query, or the mean and standard error when
/// too few queries are defined) is written as `null` and read back as NaN, because JSON
/// has no NaN and `JSONEncoder` refuses it by default.
public struct LDSResult: Codable, Equatable, Sendable {
    /// Q values, `LDS_q = Spearman_j(GT[:,q], Γ[:,q])`; NaN where undefined (GT or Γ
    /// constant over the subsets, or non-finite).
    public var perQuery: [Double]
    /// Mean of the defined `perQuery` values (NaN if none is defined).
    public var mean: Double
    /// `sd / √Q'` with `sd` the sample standard deviation (divisor Q'−1) of the Q' defined
    /// values (NaN if Q' < 2).
    public var standardError: Double
    /// M: subsets the correlations run over.
    public var subsets: Int
    /// Q − Q': queries left out of `mean` because their correlation is undefined.
    public var undefinedQueries: Int

    public init(perQuery: [Double], mean: Double, standardError: Double, subsets: Int, undefinedQueries: Int) {
        self.perQuery = perQuery; self.mean = mean; self.standardError = standardError
        self.subsets = subsets; self.undefinedQueries = undefinedQueries
    }

    /// NaN-aware equality (NaN equals NaN), so a decoded result compares equal to its source.
    public static func == (a: LDSResult, b: LDSResult) -> Bool {
        func same(_ x: Double, _ y: Double) -> Bool { x == y || (x.isNaN && y.isNaN) }
        return a.perQuery.count == b.perQuery.count && zip(a.perQuery, b.perQuery).allSatisfy(same)
            && same(a.mean, b.mean) && same(a.standardError, b.standardError)
            && a.subsets == b.subsets && a.undefinedQueries == b.undefinedQueries
    }

    private enum CodingKeys: String, CodingKey { case perQuery, mean, standardError, subsets, undefinedQueries }
    private static func finite(_ x: Double) -> Double? { x.isFinite ? x : nil }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(perQuery.map(Self.finite), forKey: .perQuery)
        try c.encode(Self.finite(mean), forKey: .mean)
        try c.encode(Self.finite(standardError), forKey: .standardError)
        try c.encode(subsets, forKey: .subsets)
        try c.encode(undefinedQueries, forKey: .undefinedQueries)
    }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        perQuery = try c.decode([Double?].self, forKey: .perQuery).map { $0 ?? .nan }
        mean = try c.decodeIfPresent(Double.self, forKey: .mean) ?? .nan
        standardError = try c.decodeIfPresent(Double.self, forKey: .standardError) ?? .nan
        subsets = try c.decode(Int.self, forKey: .subsets)
        undefinedQueries = try c.decode(Int.self, forKey: .undefinedQueries)
    }
}

/// Linear Datamodeling Score (spec §9). Shapes: M subsets, N training examples, Q queries;
/// masks M×N (uint8), ground truth GT M×Q (double), scores τ Q×N (float, row q = query q,
/// sign convention of spec §2: positive = the example helps).
public enum LDS {
    /// Predictions `Γ[j,q] = −Σ_{m∈S_j} τ(m,q)`, M×Q row-major, as one DGEMM
    /// `Γ = −masks · τᵀ` in double (so sums over thousands of examples keep their digits).
    ///
    /// The minus sign: with spec §2's convention a larger score sum means a lower loss-like
    /// `f_q`, so `−Σ τ` rises with the measured `f_q` and correlates positively with GT.
    /// - Precondition: `scores.count == Q · N`.
    /// - Complexity: O(M·N·Q) flops, O((M+Q)·N) memory for the double copies.
    public static func predictions(masks: SubsetMasks, scores: [Float], queries q: Int) -> [Double] {
        let m = masks.count, n = masks.population
        precondition(scores.count == q * n, "LDS: \(scores.count) scores for Q=\(q) × N=\(n)")
        var gamma = [Double](repeating: 0, count: m * q)
        guard m > 0, q > 0, n > 0 else { return gamma }
        let a = masks.bits.map { Double($0 != 0 ? 1 : 0) }
        let b = scores.map(Double.init)
        a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in gamma.withUnsafeMutableBufferPointer { cp in
            // (M×N) · (Q×N)ᵀ → M×Q
            Double.gemm(transA: false, transB: true, m: m, n: q, k: n, alpha: -1,
                        a: ap.baseAddress!, lda: n, b: bp.baseAddress!, ldb: n, beta: 0, c: cp.baseAddress!, ldc: q)
        } } }
        return gamma
    }

    /// The LDS of `scores` against `groundTruth` on `masks`.
    ///
    /// Throws an `AstraError` if the shapes disagree (scores or ground truth made for a
    /// different training set, query set or subset count); the message names both sizes.
    public static func evaluate(masks: SubsetMasks, groundTruth: [Double], scores: [Float], queries q: Int) throws -> LDSResult {
        let m = masks.count, n = masks.population
        guard q > 0, scores.count == q * n else {
            throw AstraError("scores hold \(scores.count) values but the subset masks need Q=\(q) queries × N=\(n) training examples; compute scores and masks for the same training and query sets")
        }
        guard groundTruth.count == m * q else {
            throw AstraError("ground truth holds \(groundTruth.count) values but M=\(m) subsets × Q=\(q) queries are needed; recompute the ground truth for these masks and queries")
        }
        return evaluate(groundTruth: groundTruth, predictions: predictions(masks: masks, scores: scores, queries: q), subsets: m, queries: q)
    }

    /// LDS from ground truth and predictions, both M×Q row-major.
    /// A query whose column holds a non-finite value or is constant is undefined (NaN).
    /// - Complexity: O(Q · M log M).
    public static func evaluate(groundTruth: [Double], predictions: [Double], subsets m: Int, queries q: Int) -> LDSResult {
        precondition(groundTruth.count == m * q && predictions.count == m * q, "LDS: GT and Γ must both be M×Q = \(m)×\(q)")
        var perQuery = [Double](repeating: .nan, count: q)
        var gt = [Double](repeating: 0, count: m), pr = [Double](repeating: 0, count: m)
        for k in 0..<q {
            for j in 0..<m { gt[j] = groundTruth[j * q + k]; pr[j] = predictions[j * q + k] }
            if gt.allSatisfy(\.isFinite) && pr.allSatisfy(\.isFinite) { perQuery[k] = spearman(gt, pr) }
        }
        return summarize(perQuery, subsets: m)
    }

    /// Mean and standard error over the defined (non-NaN) entries of `perQuery`.
    public static func summarize(_ perQuery: [Double], subsets m: Int) -> LDSResult {
        let defined = perQuery.filter { !$0.isNaN }
        let c = Double(defined.count)
        let mean = defined.isEmpty ? .nan : defined.reduce(0, +) / c
        var se = Double.nan
        if defined.count >= 2 {
            let ss = defined.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }
            se = (ss / (c - 1)).squareRoot() / c.squareRoot()
        }
        return LDSResult(perQuery: perQuery, mean: mean, standardError: se, subsets: m,
                         undefinedQueries: perQuery.count - defined.count)
    }

    /// Element-wise mean of E score matrices of equal shape (an ensemble over model seeds,
    /// spec §8), accumulated in double. Works for any shape, typically Q×N.
    /// - Precondition: at least one matrix, all of the same length.
    /// - Complexity: O(E·Q·N).
    public static func averageScores(_ runs: [[Float]]) -> [Float] {
        precondition(!runs.isEmpty, "LDS.averageScores: no score matrices")
        let count = runs[0].count
        precondition(runs.allSatisfy { $0.count == count }, "LDS.averageScores: score matrices differ in size")
        var sum = [Double](repeating: 0, count: count)
        sum.withUnsafeMutableBufferPointer { s in
            for run in runs { run.withUnsafeBufferPointer { r in for i in 0..<count { s[i] += Double(r[i]) } } }
        }
        let e = Double(runs.count)
        return sum.map { Float($0 / e) }
    }

    /// Ground truth GT (M×Q row-major) from finished retraining jobs, with the job
    /// numbering `job = j·R + r` (subset j, repeat r): `GT[j,q]` is the mean over r of the
    /// job's `f_q`, in double. A job with a non-finite value is a diverged retraining (the
    /// recipe's step too large for that subset): it is left out of its subset's mean and
    /// listed in `diverged`.
    ///
    /// Throws an `AstraError` if a job is missing or holds other than Q values, or if every
    /// repeat of a subset diverged (that subset has no target).
    public static func groundTruth(jobs: [Int: [Float]], subsets m: Int, repeats r: Int, queries q: Int) throws -> (values: [Double], diverged: [Int]) {
        precondition(m >= 0 && r > 0 && q >= 0)
        var gt = [Double](repeating: 0, count: m * q)
        var missing: [Int] = [], diverged: [Int] = []
        for j in 0..<m {
            var finite = 0
            for rep in 0..<r {
                let id = j * r + rep
                guard let v = jobs[id] else { missing.append(id); continue }
                guard v.count == q else {
                    throw AstraError("ground-truth job \(id) holds \(v.count) values but there are Q=\(q) queries; delete groundtruth/ (or use a new --workdir) and rerun groundtruth")
                }
                guard v.allSatisfy(\.isFinite) else { diverged.append(id); continue }
                finite += 1
                for k in 0..<q { gt[j * q + k] += Double(v[k]) }
            }
            guard missing.isEmpty else { continue }
            guard finite > 0 else {
                throw AstraError("ground truth: all \(r) retrainings of subset \(j) diverged (non-finite query losses): the training recipe is unstable on subsets; lower the learning rate or the epochs (a new --workdir)")
            }
            for k in 0..<q { gt[j * q + k] /= Double(finite) }
        }
        guard missing.isEmpty else {
            throw AstraError("ground truth is incomplete: \(missing.count) of \(m * r) retraining jobs are missing (first: job \(missing[0])); rerun groundtruth with the same --workdir to finish them")
        }
        return (gt, diverged)
    }
}
