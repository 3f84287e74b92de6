/// Rank statistics for the Linear Datamodeling Score (spec §9).

/// 1-based ranks of `x` in ascending order; tied values share the average of the ranks
/// they occupy (e.g. `[10, 20, 20, 30]` → `[1, 2.5, 2.5, 4]`).
///
/// - Precondition: no value is NaN (ties are found with `==`, which NaN breaks).
/// - Complexity: O(n log n) time, O(n) extra memory.
public func averageRanks(_ x: [Double]) -> [Double] {
    precondition(!x.contains(where: \.isNaN), "averageRanks: NaN has no rank")
    let n = x.count
    // Sorting indices (ties broken by index) keeps the result independent of sort stability.
    let order = (0..<n).sorted { x[$0] < x[$1] || (x[$0] == x[$1] && $0 < $1) }
    var ranks = [Double](repeating: 0, count: n)
    var i = 0
    while i < n {
        var k = i + 1
        while k < n && x[order[k]] == x[order[i]] { k += 1 }
        // Sorted positions i..<k hold ranks i+1 … k; their mean is (i+1+k)/2.
        let r = Double(i + 1 + k) / 2
        for t in i..<k { ranks[order[t]] = r }
        i = k
    }
    return ranks
}

/// Spearman's rank correlation: the Pearson correlation of `averageRanks(x)` and
/// `averageRanks(y)`, accumulated in double and clamped to [−1, 1].
///
/// Returns NaN, never a number, when the correlation is undefined: fewer than two values,
/// any value NaN, or either input constant (all its ranks equal, zero variance). Callers
/// (the LDS) skip and count such cases rather than treating them as zero.
///
/// - Precondition: `x.count == y.count`.
/// - Complexity: O(n log n).
public func spearman(_ x: [Double], _ y: [Double]) -> Double {
    precondition(x.count == y.count, "spearman: \(x.count) and \(y.count) values")
    let n = x.count
    guard n >= 2, !x.contains(where: \.isNaN), !y.contains(where: \.isNaN) else { return .nan }
    let rx = averageRanks(x), ry = averageRanks(y)
    // Average ranks always sum to n(n+1)/2, so both means are exactly (n+1)/2.
    let mean = Double(n + 1) / 2
    var sxy = 0.0, sxx = 0.0, syy = 0.0
    for i in 0..<n {
        let a = rx[i] - mean, b = ry[i] - mean
        sxy += a * b; sxx += a * a; syy += b * b
    }
    guard sxx > 0, syy > 0 else { return .nan }
    return min(1, max(-1, sxy / (sxx * syy).squareRoot()))
}
