/// The span of the EK-FAC eigenvectors `Q_S[:,i] ⊗ Q_A[:,j]` (every layer) whose corrected
/// eigenvalue `Λ[i,j]` is at least `threshold`, and the orthogonal projection onto it
/// (spec §11, ASTRA §6). In eigen-coordinates the projection is a mask; an iterate in
/// parameter coordinates is rotated into the eigenbasis for it.
public struct EigenSubspace: Sendable {
    public let factors: EKFAC
    public let threshold: Double
    /// Per eigen-coordinate of one vector (P values, the eigenbasis layout): kept or not.
    public let kept: [Bool]
    /// The subspace's dimension (kept coordinates).
    public let dimension: Int

    /// Precondition: `threshold` is finite (0 keeps every direction, since Λ ≥ 0).
    public init(_ factors: EKFAC, threshold: Double) {
        precondition(threshold.isFinite, "EigenSubspace: threshold must be finite")
        self.factors = factors; self.threshold = threshold
        kept = factors.diagonal().map { $0 >= threshold }
        dimension = kept.filter { $0 }.count
    }

    /// Πx for every vector of the block, in the block's own coordinates.
    /// It is computed as x − (the removed component), so where nothing is removed the result is
    /// x bit for bit (the full subspace reproduces the unprojected iterate exactly).
    /// Precondition: a block in eigen-coordinates is in the eigenbasis of `factors`.
    public func project(_ x: SolvedBlock<Float>) -> SolvedBlock<Float> {
        let p = factors.shape.parameterCount, q = x.queries
        precondition(x.values.count == q * p, "EigenSubspace.project: \(x.values.count) values for \(q) vectors of \(p)")
        // The eigenbasis layout is per layer (Q·O)×(I+1): coordinate k of vector j of layer l
        // sits at Q·offset(l) + j·P_l + k, with mask entry offset(l) + k.
        var removedIndices: [Int] = []
        for l in 0..<factors.shape.layerCount {
            let o = factors.shape.offset(l), n = factors.layers[l].parameterCount
            for k in 0..<n where !kept[o + k] { for j in 0..<q { removedIndices.append(q * o + j * n + k) } }
        }
        var out = x
        if x.eigenbasis != nil {
            for i in removedIndices { out.values[i] = 0 }
            return out
        }
        let coordinates = x.values.withUnsafeBufferPointer { xp in
            [Float](unsafeUninitializedCapacity: q * p) { buf, count in
                factors.toEigenbasis(xp.baseAddress!, queries: q, into: buf.baseAddress!); count = q * p
            }
        }
        var removed = [Float](repeating: 0, count: q * p)
        for i in removedIndices { removed[i] = coordinates[i] }
        removed.withUnsafeMutableBufferPointer { factors.fromEigenbasis(UnsafePointer($0.baseAddress!), queries: q, into: $0.baseAddress!) }
        for i in out.values.indices { out.values[i] -= removed[i] }
        return out
    }
}
