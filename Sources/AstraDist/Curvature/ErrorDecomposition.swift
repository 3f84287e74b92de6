/// Spec §12's error decomposition along `M_0 = H → … → M_4 = K-FAC`: with `e_k` the relative
/// error to H and `LDS_k` the LDS with `(M_k + λI)⁻¹`, step k's shares
/// `ΔES_k % = 100 (e_k − e_{k−1}) / e_last` and `ΔLDS_k % = 100 (LDS_{k−1} − LDS_k) / (LDS_0 − LDS_last)`.
/// When `|LDS_0 − LDS_last|` is under two standard errors the LDS shares are meaningless and
/// left nil: read the absolute steps instead.
public struct ErrorDecomposition: Codable, Sendable, Equatable {
    public struct Step: Codable, Sendable, Equatable {
        public var from: String
        public var to: String
        /// `e_k − e_{k−1}`.
        public var errorChange: Double
        /// `LDS_{k−1} − LDS_k` (positive: the step loses LDS).
        public var ldsLoss: Double
        public var errorSharePercent: Double?
        public var ldsSharePercent: Double?
    }
    public var steps: [Step]
    /// `LDS_0 − LDS_last`.
    public var totalLDSLoss: Double
    /// Its standard error (`√(se_0² + se_last²)`, over queries).
    public var totalLDSStandardError: Double
    /// Whether `|totalLDSLoss|` ≥ two standard errors (the LDS shares are reported).
    public var ldsSharesMeaningful: Bool

    /// Precondition: equal lengths ≥ 2.
    public init(names: [String], errors e: [Double], lds: [Double], standardErrors se: [Double]) {
        precondition(names.count == e.count && e.count == lds.count && lds.count == se.count && e.count >= 2, "ErrorDecomposition: inconsistent inputs")
        let last = e.count - 1
        totalLDSLoss = lds[0] - lds[last]
        totalLDSStandardError = (se[0] * se[0] + se[last] * se[last]).squareRoot()
        ldsSharesMeaningful = abs(totalLDSLoss) >= 2 * totalLDSStandardError && totalLDSLoss != 0
        let meaningful = ldsSharesMeaningful, total = totalLDSLoss
        steps = (1...last).map { k in
            Step(from: names[k - 1], to: names[k], errorChange: e[k] - e[k - 1], ldsLoss: lds[k - 1] - lds[k],
                 errorSharePercent: e[last] != 0 ? 100 * (e[k] - e[k - 1]) / e[last] : nil,
                 ldsSharePercent: meaningful ? 100 * (lds[k - 1] - lds[k]) / total : nil)
        }
    }
}
