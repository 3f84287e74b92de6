/// The right-hand sides `v_q` of a block solve: Q vectors of P values, either explicit
/// (any vectors) or the measurement gradients `∇f_q`, kept per layer as their factors, the
/// rows `ā_q` and output gradients `δ_q` (`Layer.exampleGradient` forms `Σ_t δ_q,t ā_q,tᵀ`;
/// rank one, `δ_q ā_qᵀ`, for a linear layer), until a basis is chosen.
public struct QueryGradients<T: BLASScalar>: Sendable {
    public let shape: NetworkShape
    /// Q.
    public let queries: Int
    /// The measurements `f_q` (empty for explicit vectors).
    public let values: [Double]
    private enum Storage: Sendable {
        /// Q·P values, block layout of `NetworkShape`.
        case explicit([T])
        /// Per layer δ (Q·positions×O) and ā (Q·positions×K), row-major.
        case rankOne(deltas: [[T]], inputs: [[T]])
    }
    private let storage: Storage

    /// Explicit vectors. Precondition: `block.count == queries·P`.
    public init(block: [T], queries: Int, shape: NetworkShape) {
        precondition(block.count == queries * shape.parameterCount, "QueryGradients: \(block.count) values for \(queries) vectors of \(shape.parameterCount)")
        self.shape = shape; self.queries = queries; values = []; storage = .explicit(block)
    }

    init(rankOneDeltas deltas: [[T]], inputs: [[T]], values: [Double], shape: NetworkShape) {
        self.shape = shape; queries = values.count; self.values = values; storage = .rankOne(deltas: deltas, inputs: inputs)
    }

    /// The block in parameter coordinates (Q·P values).
    /// Complexity: Q·P writes for rank-one storage.
    public func parameterBlock() -> [T] {
        switch storage {
        case .explicit(let block): return block
        case .rankOne(let deltas, let inputs):
            return [T](unsafeUninitializedCapacity: queries * shape.parameterCount) { bp, count in
                for l in 0..<shape.layerCount {
                    Self.exampleGradients(deltas[l], inputs[l], layer: shape.layer(l), queries: queries,
                                          into: bp.baseAddress! + shape.blockOffset(l, queries: queries))
                }
                count = queries * shape.parameterCount
            }
        }
    }

    /// The block in the eigenbasis of `ekfac` (entry `[q,i,j]` the coefficient of
    /// `Q_S[:,i] ⊗ Q_A[:,j]`): the rows and δ are rotated (`Q_Sᵀ(Σ_t δ_t ā_tᵀ)Q_A =
    /// Σ_t (Q_Sᵀ δ_t)(Q_Aᵀ ā_t)ᵀ`), for a linear layer two GEMMs of Q rows per layer plus Q·P
    /// writes, against Q·Σ_l O(I+1)(O+I+1) multiply-adds to rotate explicit vectors.
    public func eigenBlock(_ ekfac: EKFAC) -> [T] {
        precondition(ekfac.shape == shape, "QueryGradients.eigenBlock: factors for \(ekfac.shape), vectors for \(shape)")
        switch storage {
        case .explicit(var block):
            block.withUnsafeMutableBufferPointer { ekfac.toEigenbasis(UnsafePointer($0.baseAddress!), queries: queries, into: $0.baseAddress!) }
            return block
        case .rankOne(let deltas, let inputs):
            // Every value is written below: no zero fill of the Q·P buffer.
            return [T](unsafeUninitializedCapacity: queries * shape.parameterCount) { bp, count in
                for l in 0..<shape.layerCount {
                    let layer = shape.layer(l), rows = queries * layer.positions
                    var u = [T](repeating: 0, count: rows * layer.outputFactorDimension), w = [T](repeating: 0, count: rows * layer.inputFactorDimension)
                    ekfac.layers[l].withEigenvectors(T.self) { qA, qS in
                        layer.rotateOutputs(deltas[l], eigenvectorsS: qS, rows: rows, inverse: false, into: &u)
                        layer.rotateInputs(abar: inputs[l], eigenvectorsA: qA, batch: rows, into: &w)
                    }
                    Self.exampleGradients(u, w, layer: layer, queries: queries, into: bp.baseAddress! + shape.blockOffset(l, queries: queries))
                }
                count = queries * shape.parameterCount
            }
        }
    }

    /// `out[q]` = query q's gradient of `layer` (O×K) from its δ and rows.
    private static func exampleGradients(_ d: [T], _ a: [T], layer: NetworkLayer, queries: Int, into out: UnsafeMutablePointer<T>) {
        d.withUnsafeBufferPointer { dp in a.withUnsafeBufferPointer { ap in
            for q in 0..<queries { layer.exampleGradient(ds: dp.baseAddress!, rows: ap.baseAddress!, example: q, into: out + q * layer.parameterCount) }
        } }
    }
}

extension Network {
    /// The measurements `f_q` (spec §1) and their gradients for a set of queries, kept as
    /// their per-layer factors `δ_q`, `ā_q` (no Jacobian is formed).
    ///
    /// `untargeted`: the queries' targets are not used (`Measurement.untargeted`):
    /// classification measures the margin of the model's predicted class, regression the
    /// outputs g themselves.
    /// Complexity: one forward and backward pass over the queries.
    public func measurementGradients(queries: Dataset, untargeted: Bool = false) -> QueryGradients<T> {
        let q = queries.count, c = shape.outputCount, tw = queries.targetWidth
        var values = [Double](repeating: 0, count: q)
        guard q > 0 else {
            return QueryGradients(rankOneDeltas: shape.layers.map { _ in [] }, inputs: shape.layers.map { _ in [] }, values: values, shape: shape)
        }
        let ws = Workspace<T>(shape: shape, capacity: q)
        var x = [T](repeating: 0, count: q * queries.featureCount), y = [T](repeating: 0, count: q * tw)
        x.withUnsafeMutableBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            queries.gather(Array(0..<q)[...], x: xp.baseAddress!, y: yp.baseAddress!)
            forward(xp.baseAddress!, batch: q, workspace: ws)
            for i in 0..<q {
                values[i] = untargeted
                    ? Measurement.untargeted(loss: loss, y: ws.output + i * c, dy: ws.outputGradient + i * c, outputs: c)
                    : Measurement.valueAndGradient(loss: loss, y: ws.output + i * c, target: yp.baseAddress! + i * tw,
                                                   dy: ws.outputGradient + i * c, outputs: c)
            }
        } }
        backward(batch: q, workspace: ws, gradient: nil)
        let layers = shape.layers
        return QueryGradients(rankOneDeltas: layers.indices.map { Array(UnsafeBufferPointer(start: ws.ds[$0], count: q * layers[$0].outputWidth)) },
                              inputs: layers.indices.map { Array(UnsafeBufferPointer(start: ws.abar[$0], count: q * layers[$0].positions * layers[$0].inputFactorDimension)) },
                              values: values, shape: shape)
    }
}
