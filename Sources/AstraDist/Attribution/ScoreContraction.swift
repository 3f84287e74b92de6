/// Scores a block of preconditioned query vectors against training examples (spec §6):
/// `τ(m, q) = Σ_l ⟨X_q,l, DW̄_m,l⟩`, with `DW̄_m,l` layer l's gradient of the true training
/// loss, contracted by each layer from its rows and `Ds` (`Layer.accumulateScores`; a linear
/// layer: one GEMM `M = X_l Āᵀ` ((Q·O)×B), then a Hadamard reduction with `Ds` over O). No
/// per-example gradient is formed.
///
/// A block in the EK-FAC eigenbasis (`X = Q_S Y Q_Aᵀ`) is scored without rotating it back:
/// `Dsᵀ X ā = (Ds Q_S)ᵀ Y (Q_Aᵀ ā)`, so each batch's `Ā` and `Ds` are rotated once for all
/// queries (B·Σ_l ((I+1)² + O²) multiply-adds per batch).
public final class ScoreContraction<T: BLASScalar> {
    public let network: Network<T>
    public let queries: Int
    let batchSize: Int
    let ws: Workspace<T>
    let x: UnsafeMutablePointer<T>, y: UnsafeMutablePointer<T>, scratch: UnsafeMutablePointer<T>
    /// Eigenbasis scoring: the rotated `Ā` and `Ds` of one layer.
    let abarE: UnsafeMutablePointer<T>, dsE: UnsafeMutablePointer<T>

    public init(network: Network<T>, queries: Int, featureCount: Int, targetWidth: Int, batchSize: Int = 256) {
        self.network = network; self.queries = queries; self.batchSize = batchSize
        ws = Workspace(shape: network.shape, capacity: batchSize)
        let layers = network.shape.layers
        x = .allocate(capacity: batchSize * featureCount); y = .allocate(capacity: batchSize * targetWidth)
        scratch = .allocate(capacity: layers.map { $0.scoreScratchCount(batch: batchSize) }.max()!)
        abarE = .allocate(capacity: batchSize * layers.map { $0.positions * $0.inputFactorDimension }.max()!)
        dsE = .allocate(capacity: batchSize * layers.map(\.outputWidth).max()!)
    }
    deinit { x.deallocate(); y.deallocate(); scratch.deallocate(); abarE.deallocate(); dsE.deallocate() }

    /// `τ` for the training rows `rows` (positions in `train`): Q × rows.count, row-major,
    /// accumulated over layers in T.
    /// Complexity: 2·Q·P·|rows| flops in GEMMs plus Q·O·|rows| per layer.
    public func scores(_ solved: SolvedBlock<T>, train: Dataset, rows: Range<Int>) -> [Float] {
        precondition(solved.queries == queries && solved.values.count == queries * network.shape.parameterCount,
                     "ScoreContraction: a block of \(solved.queries) vectors for \(queries) queries")
        let shape = network.shape, qn = queries
        // A convolution has T rows per example: rotating them into the eigenbasis would cost
        // N·T·K² (8 M multiply-adds per example for the CNN's second layer, ten times its
        // forward pass), so a block for a convolutional network goes back to parameter
        // coordinates once (Q·Σ_l O·K·(O + K)) and is scored there.
        var solved = solved
        if solved.eigenbasis != nil, shape.layers.contains(where: { $0.positions > 1 }) {
            solved = SolvedBlock(values: solved.parameterBlock(), queries: qn, eigenbasis: nil)
        }
        let block = solved.values
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
                for (l, layer) in shape.layers.enumerated() {
                    var abar = UnsafePointer(ws.abar[l]), ds = UnsafePointer(ws.ds[l])
                    if let e = solved.eigenbasis {
                        e.layers[l].withEigenvectors(T.self) { qA, qS in
                            layer.rotateInputs(abar: abar, eigenvectorsA: qA, batch: b * layer.positions, into: abarE)
                            layer.rotateOutputs(ds, eigenvectorsS: qS, rows: b * layer.positions, inverse: false, into: dsE)
                        }
                        abar = UnsafePointer(abarE); ds = UnsafePointer(dsE)
                    }
                    layer.accumulateScores(block: bp.baseAddress! + shape.blockOffset(l, queries: qn), rows: abar, ds: ds, batch: b, queries: qn,
                                           scratch: scratch, into: tp.baseAddress!)
                }
            } }
            for q in 0..<qn { for i in 0..<b { out[q * n + start + i] = Float(tau[q * b + i].asDouble) } }
            start += b
        }
        return out
    }
}
