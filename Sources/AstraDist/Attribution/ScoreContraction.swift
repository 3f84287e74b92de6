/// Scores a block of preconditioned query vectors against training examples (spec §6):
/// `τ(m, q) = Σ_l ⟨X_q,l, Ds_m āᵀ_m⟩ = Σ_l Ds_mᵀ X_q,l ā_m`, with `Ds_m` the gradient of the
/// true training loss. Per batch and layer: one GEMM `M = X_l Āᵀ` ((Q·O)×B), then a
/// Hadamard reduction with `Ds` over O. No per-example gradient is formed.
///
/// A block in the EK-FAC eigenbasis (`X = Q_S Y Q_Aᵀ`) is scored without rotating it back:
/// `Dsᵀ X ā = (Ds Q_S)ᵀ Y (Q_Aᵀ ā)`, so each batch's `Ā` and `Ds` are rotated once for all
/// queries (B·Σ_l ((I+1)² + O²) multiply-adds per batch).
public final class ScoreContraction<T: BLASScalar> {
    public let network: Network<T>
    public let queries: Int
    let batchSize: Int
    let ws: Workspace<T>
    let x: UnsafeMutablePointer<T>, y: UnsafeMutablePointer<T>, m: UnsafeMutablePointer<T>, dsT: UnsafeMutablePointer<T>
    /// Eigenbasis scoring: the rotated `Ā` and `Ds` of one layer.
    let abarE: UnsafeMutablePointer<T>, dsE: UnsafeMutablePointer<T>
    /// Values of the GEMM result kept per query chunk (about 1 MiB of floats: within L2).
    static var cacheValues: Int { 256 * 1024 }

    public init(network: Network<T>, queries: Int, featureCount: Int, targetWidth: Int, batchSize: Int = 256) {
        self.network = network; self.queries = queries; self.batchSize = batchSize
        ws = Workspace(shape: network.shape, capacity: batchSize)
        let widest = network.shape.layers.map(\.outputs).max()!
        x = .allocate(capacity: batchSize * featureCount); y = .allocate(capacity: batchSize * targetWidth)
        m = .allocate(capacity: max(Self.cacheValues, widest * batchSize)); dsT = .allocate(capacity: widest * batchSize)
        abarE = .allocate(capacity: batchSize * (network.shape.layers.map(\.augmented).max()!)); dsE = .allocate(capacity: widest * batchSize)
    }
    deinit { x.deallocate(); y.deallocate(); m.deallocate(); dsT.deallocate(); abarE.deallocate(); dsE.deallocate() }

    /// `τ` for the training rows `rows` (positions in `train`): Q × rows.count, row-major,
    /// accumulated over layers in T.
    /// Complexity: 2·Q·P·|rows| flops in GEMMs plus Q·O·|rows| per layer.
    public func scores(_ solved: SolvedBlock<T>, train: Dataset, rows: Range<Int>) -> [Float] {
        precondition(solved.queries == queries && solved.values.count == queries * network.shape.parameterCount,
                     "ScoreContraction: a block of \(solved.queries) vectors for \(queries) queries")
        let shape = network.shape, qn = queries, block = solved.values
        let n = rows.count
        var out = [Float](repeating: 0, count: qn * n)
        var tau = [T](repeating: 0, count: qn * batchSize)
        let all = Array(rows)
        var start = 0
        while start < n {
            let b = min(batchSize, n - start)
            train.gather(all[start..<(start + b)], x: x, y: y)
            network.lossBackward(x, y, batch: b, workspace: ws)
            for k in 0..<(qn * b) { tau[k] = 0 }
            block.withUnsafeBufferPointer { bp in tau.withUnsafeMutableBufferPointer { tp in
                for l in 0..<shape.layerCount {
                    let layer = shape.layer(l), o = layer.outputs, a = layer.augmented
                    var abar = UnsafePointer(ws.abar[l]), ds = UnsafePointer(ws.ds[l])
                    if let e = solved.eigenbasis {
                        e.layers[l].withEigenvectors(T.self) { qA, qS in
                            layer.rotateInputs(abar: abar, eigenvectorsA: qA, batch: b, into: abarE)
                            layer.rotateOutputs(ds, eigenvectorsS: qS, rows: b, inverse: false, into: dsE)
                        }
                        abar = UnsafePointer(abarE); ds = UnsafePointer(dsE)
                    }
                    // Dsᵀ (O×B) so the reduction below runs over contiguous rows.
                    for i in 0..<b { for r in 0..<o { dsT[r * b + i] = ds[i * o + r] } }
                    // Queries in chunks whose M = X_chunk Āᵀ ((chunk·O)×B) stays in cache for the reduction.
                    let chunk = max(1, min(qn, Self.cacheValues / max(o * b, 1)))
                    var q0 = 0
                    while q0 < qn {
                        let qc = min(chunk, qn - q0)
                        T.gemm(transA: false, transB: true, m: qc * o, n: b, k: a, alpha: 1,
                               a: bp.baseAddress! + shape.blockOffset(l, queries: qn) + q0 * layer.parameterCount, lda: a,
                               b: abar, ldb: a, beta: 0, c: m, ldc: b)
                        for q in 0..<qc {
                            let t = tp.baseAddress! + (q0 + q) * b
                            for r in 0..<o {
                                let row = m + (q * o + r) * b, d = dsT + r * b
                                for i in 0..<b { t[i] += row[i] * d[i] }
                            }
                        }
                        q0 += qc
                    }
                }
            } }
            for q in 0..<qn { for i in 0..<b { out[q * n + start + i] = Float(tau[q * b + i].asDouble) } }
            start += b
        }
        return out
    }
}
