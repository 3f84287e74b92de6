/// Carrying a block from one EK-FAC eigenbasis to another (SOURCE's segments each have their
/// own): per layer `Y' = Q_S'ᵀ (Q_S Y Q_Aᵀ) Q_A' = R_S Y R_Aᵀ` with the small rotations
/// `R_S = Q_S'ᵀ Q_S` (O×O) and `R_A = Q_A'ᵀ Q_A` ((I+1)×(I+1)), so one change costs one
/// rotation of the block, not two (back to parameters and into the new basis).
extension EKFAC {
    /// Rewrites `y`, a block of Q vectors in this eigenbasis, in the eigenbasis of `target`.
    /// May run in place (`out == y`). Precondition: `target` has the same shape.
    /// Complexity: Q·Σ_l O(I+1)(O+I+1) multiply-adds in GEMMs, plus Σ_l (O³ + (I+1)³) for R.
    public func changeBasis<T: BLASScalar>(_ y: UnsafePointer<T>, queries: Int, to target: EKFAC, into out: UnsafeMutablePointer<T>) {
        precondition(target.shape == shape, "EKFAC.changeBasis: factors for \(target.shape), not \(shape)")
        let temp = UnsafeMutablePointer<T>.allocate(capacity: max(1, queries * (layers.map(\.parameterCount).max() ?? 1)))
        defer { temp.deallocate() }
        for (l, (from, to)) in zip(layers, target.layers).enumerated() {
            let o = from.outputs, k = from.inputs + 1, base = queries * shape.offset(l)
            // Rotations in Double (eigenvectors are kept in float64), applied in T.
            let rS = to.qS.multiplied(by: from.qS, transposeSelf: true).data.map { T($0) }
            let rA = to.qA.multiplied(by: from.qA, transposeSelf: true).data.map { T($0) }
            rS.withUnsafeBufferPointer { s in rA.withUnsafeBufferPointer { a in
                // Y R_Aᵀ for all queries at once ((Q·O)×(I+1)), then R_S per query.
                T.gemm(transA: false, transB: true, m: queries * o, n: k, k: k, alpha: 1, a: y + base, lda: k, b: a.baseAddress!, ldb: k,
                       beta: 0, c: temp, ldc: k)
                for q in 0..<queries {
                    T.gemm(transA: false, transB: false, m: o, n: k, k: o, alpha: 1, a: s.baseAddress!, lda: o, b: temp + q * o * k, ldb: k,
                           beta: 0, c: out + base + q * o * k, ldc: k)
                }
            } }
        }
    }
}
