import Foundation

/// The random projection `P` (P×k) of TRAK's features `φ = Pᵀ ∇` (spec §8).
///
/// - `kronecker`: per layer `P_l = (R_S,l ⊗ R_A,l)/√k`, its first k columns, with `R_S,l`
///   O×s and `R_A,l` K×a (s = ⌈√k⌉, a = ⌈k/s⌉) of N(0, 1) entries from
///   `CounterRandom(seed, .projection, 2l)` and `(…, 2l + 1)`, the layers summed: `φ = Σ_l P_lᵀ
///   vec(DW̄_l)`. A rank-one layer gradient `δ āᵀ` projects to `(R_Sᵀδ)(R_Aᵀā)ᵀ/√k`
///   flattened, so no per-example gradient is formed: per example Σ_l (O_l·s + K_l·a + k)
///   multiply-adds instead of P·k. Each column has entries of variance 1/k (products of
///   two standard normals over √k), and `E[P Pᵀ] = I`, as for a dense N(0, 1/k) matrix.
///   A function of the seed and the network shape alone, so the same on any rank count.
/// - `dense`: an explicit P×k matrix (row-major): references and tests. It forms every
///   example's gradient (P values) and multiplies (P·k per example).
public enum TRAKProjection: Sendable {
    case kronecker(seed: UInt64, dimension: Int)
    case dense(matrix: [Double], dimension: Int)

    /// k, the projected dimension.
    public var dimension: Int {
        switch self {
        case .kronecker(_, let k), .dense(_, let k): return k
        }
    }

    /// A dense P×k matrix of N(0, 1/k) entries from `CounterRandom(seed, .projection, row)`
    /// (row = parameter index): the reference the Kronecker projection is checked against.
    public static func denseGaussian(seed: UInt64, parameters: Int, dimension k: Int) -> TRAKProjection {
        var m = [Double](repeating: 0, count: parameters * k)
        let scale = 1 / Double(k).squareRoot()
        for r in 0..<parameters {
            var rng = CounterRandom(seed: seed &+ 1, purpose: .projection, index: UInt64(r))
            for c in 0..<k { m[r * k + c] = rng.nextNormal() * scale }
        }
        return .dense(matrix: m, dimension: k)
    }

    /// The Kronecker factor sides `(s, a)` for k: `s = ⌈√k⌉`, `a = ⌈k/s⌉`, so `s·a ≥ k`.
    public static func kroneckerSides(_ k: Int) -> (s: Int, a: Int) {
        var s = Int(Double(k).squareRoot())
        while s * s < k { s += 1 }
        return (s, (k + s - 1) / s)
    }
}

/// Applies a `TRAKProjection` to the per-example gradients of a batch, given the batch's
/// rows `ā` and output gradients `Ds` per layer (a `Workspace` after `backward`).
public final class TRAKProjector<T: BLASScalar> {
    public let shape: NetworkShape
    public let projection: TRAKProjection
    public var dimension: Int { projection.dimension }
    /// kronecker: per layer `R_S` (O×s) and `R_A` (K×a), row-major, in T.
    let outputFactors: [[T]], inputFactors: [[T]]
    let sides: (s: Int, a: Int)

    public init(_ projection: TRAKProjection, shape: NetworkShape) {
        self.projection = projection; self.shape = shape
        let k = projection.dimension
        sides = TRAKProjection.kroneckerSides(k)
        guard case .kronecker(let seed, _) = projection else {
            if case .dense(let m, _) = projection {
                precondition(m.count == shape.parameterCount * k, "TRAKProjector: a dense projection of \(m.count) values for P = \(shape.parameterCount), k = \(k)")
            }
            outputFactors = []; inputFactors = []
            return
        }
        func normals(_ count: Int, _ index: Int) -> [T] {
            var rng = CounterRandom(seed: seed, purpose: .projection, index: UInt64(index))
            return (0..<count).map { _ in T(rng.nextNormal()) }
        }
        let (s, a) = sides
        outputFactors = shape.layers.indices.map { normals(shape.layers[$0].outputFactorDimension * s, 2 * $0) }
        inputFactors = shape.layers.indices.map { normals(shape.layers[$0].inputFactorDimension * a, 2 * $0 + 1) }
    }

    /// `out[b] = Pᵀ ∇_b` (batch × k, Double) for every example b of the batch in `ws`.
    /// Complexity: kronecker Σ_l positions·(O·s + K·a + k) per example; dense P·k.
    public func project(_ ws: Workspace<T>, batch: Int, into out: UnsafeMutablePointer<Double>) {
        let k = dimension
        switch projection {
        case .kronecker:
            var acc = [T](repeating: 0, count: batch * k)
            for (l, layer) in shape.layers.enumerated() { accumulateKronecker(layer: layer, l, ws, batch: batch, into: &acc) }
            let scale = 1 / Double(k).squareRoot()
            for i in 0..<(batch * k) { out[i] = acc[i].asDouble * scale }
        case .dense(let matrix, _):
            let p = shape.parameterCount
            var g = [T](repeating: 0, count: p), gd = [Double](repeating: 0, count: batch * p)
            for b in 0..<batch {
                for (l, layer) in shape.layers.enumerated() {
                    g.withUnsafeMutableBufferPointer { layer.exampleGradient(ds: ws.ds[l], rows: ws.abar[l], example: b, into: $0.baseAddress! + shape.offset(l)) }
                }
                for i in 0..<p { gd[b * p + i] = g[i].asDouble }
            }
            gd.withUnsafeBufferPointer { gp in matrix.withUnsafeBufferPointer { mp in
                Double.gemm(transA: false, transB: false, m: batch, n: k, k: p, alpha: 1, a: gp.baseAddress!, lda: p,
                            b: mp.baseAddress!, ldb: k, beta: 0, c: out, ldc: k)
            } }
        }
    }

    /// `acc[b] += Σ_t first k of vec((R_Sᵀ Ds_{b,t})(R_Aᵀ ā_{b,t})ᵀ)` for layer l: two GEMMs for
    /// the batch, then an outer product per example and position.
    private func accumulateKronecker(layer: NetworkLayer, _ l: Int, _ ws: Workspace<T>, batch: Int, into acc: inout [T]) {
        let (s, a) = sides, k = dimension, rows = batch * layer.positions
        let o = layer.outputFactorDimension, kin = layer.inputFactorDimension
        var u = [T](repeating: 0, count: rows * s), w = [T](repeating: 0, count: rows * a)
        outputFactors[l].withUnsafeBufferPointer { rs in inputFactors[l].withUnsafeBufferPointer { ra in
            // U = Ds R_S (rows×s), W = Ā R_A (rows×a).
            T.gemm(transA: false, transB: false, m: rows, n: s, k: o, alpha: 1, a: ws.ds[l], lda: o, b: rs.baseAddress!, ldb: s, beta: 0, c: &u, ldc: s)
            T.gemm(transA: false, transB: false, m: rows, n: a, k: kin, alpha: 1, a: ws.abar[l], lda: kin, b: ra.baseAddress!, ldb: a, beta: 0, c: &w, ldc: a)
        } }
        acc.withUnsafeMutableBufferPointer { ap in u.withUnsafeBufferPointer { up in w.withUnsafeBufferPointer { wp in
            for r in 0..<rows {
                let target = ap.baseAddress! + (r / layer.positions) * k, ur = up.baseAddress! + r * s, wr = wp.baseAddress! + r * a
                for i in 0..<s {
                    let base = i * a, count = min(a, k - base)
                    if count <= 0 { break }
                    let ui = ur[i], t = target + base
                    for j in 0..<count { t[j] += ui * wr[j] }
                }
            }
        } } }
    }
}
