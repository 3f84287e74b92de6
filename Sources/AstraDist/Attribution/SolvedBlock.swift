/// A block of Q solved vectors `x_q = (G + λI)⁻¹ v_q`, in parameter coordinates or in
/// the EK-FAC eigenbasis. The EK-FAC-based methods (kfac, ekfac, astra) solve and score in
/// the eigenbasis, where their preconditioner is diagonal and a query gradient rotates at
/// the cost of a rank-one update; nothing ever needs to rotate back, since
/// `ScoreContraction` rotates each training batch instead.
public struct SolvedBlock<T: BLASScalar>: Sendable {
    /// Q·P values, block layout of `NetworkShape`.
    public var values: [T]
    public let queries: Int
    /// nil: parameter coordinates; otherwise eigen-coordinates of these factors.
    public let eigenbasis: EKFAC?

    public init(values: [T], queries: Int, eigenbasis: EKFAC?) {
        self.values = values; self.queries = queries; self.eigenbasis = eigenbasis
    }

    /// The vectors in parameter coordinates (rotates back if needed:
    /// Q·Σ_l O(I+1)(O+I+1) multiply-adds).
    public func parameterBlock() -> [T] {
        guard let e = eigenbasis else { return values }
        var out = values
        out.withUnsafeMutableBufferPointer { e.fromEigenbasis(UnsafePointer($0.baseAddress!), queries: queries, into: $0.baseAddress!) }
        return out
    }
}
