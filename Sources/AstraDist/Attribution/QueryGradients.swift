/// The right-hand sides `v_q` of a block solve: Q vectors of P values, either explicit
/// (any vectors) or the measurement gradients `∇f_q`, which are rank one per layer,
/// `δ_q ā_qᵀ`, and are kept as their factors until a basis is chosen.
public struct QueryGradients<T: BLASScalar>: Sendable {
    public let shape: NetworkShape
    /// Q.
    public let queries: Int
    /// The measurements `f_q` (empty for explicit vectors).
    public let values: [Double]
    private enum Storage: Sendable {
        /// Q·P values, block layout of `NetworkShape`.
        case explicit([T])
        /// Per layer δ (Q×O) and ā (Q×(I+1)), row-major.
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
                    Self.outerProducts(deltas[l], inputs[l], layer: shape.layer(l), queries: queries,
                                       into: bp.baseAddress! + shape.blockOffset(l, queries: queries))
                }
                count = queries * shape.parameterCount
            }
        }
    }

    /// The block in the eigenbasis of `ekfac` (entry `[q,i,j]` the coefficient of
    /// `Q_S[:,i] ⊗ Q_A[:,j]`). Rank one: `(Q_Sᵀ δ_q)(Q_Aᵀ ā_q)ᵀ`, two GEMMs of Q rows per layer
    /// plus Q·P writes, against Q·Σ_l O(I+1)(O+I+1) multiply-adds to rotate explicit vectors.
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
                    let layer = shape.layer(l)
                    var u = [T](repeating: 0, count: queries * layer.outputs), w = [T](repeating: 0, count: queries * layer.augmented)
                    ekfac.layers[l].withEigenvectors(T.self) { qA, qS in
                        layer.rotateOutputs(deltas[l], eigenvectorsS: qS, rows: queries, inverse: false, into: &u)
                        layer.rotateInputs(abar: inputs[l], eigenvectorsA: qA, batch: queries, into: &w)
                    }
                    Self.outerProducts(u, w, layer: layer, queries: queries, into: bp.baseAddress! + shape.blockOffset(l, queries: queries))
                }
                count = queries * shape.parameterCount
            }
        }
    }

    /// `out[q] = d_q a_qᵀ` (O×(I+1)) for every query.
    private static func outerProducts(_ d: [T], _ a: [T], layer: LinearLayer, queries: Int, into out: UnsafeMutablePointer<T>) {
        let o = layer.outputs, k = layer.augmented
        for q in 0..<queries {
            let dst = out + q * layer.parameterCount
            for r in 0..<o { let dr = d[q * o + r]; for c in 0..<k { dst[r * k + c] = dr * a[q * k + c] } }
        }
    }
}

extension Network {
    /// The measurements `f_q` (spec §1) and their gradients for a set of queries, kept as
    /// their per-layer rank-one factors `δ_q`, `ā_q` (no Jacobian is formed).
    /// Complexity: one forward and backward pass over the queries.
    public func measurementGradients(queries: Dataset) -> QueryGradients<T> {
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
                values[i] = Measurement.valueAndGradient(loss: loss, y: ws.output + i * c, target: yp.baseAddress! + i * tw,
                                                         dy: ws.outputGradient + i * c, outputs: c)
            }
        } }
        backward(batch: q, workspace: ws, gradient: nil)
        let layers = shape.layers
        return QueryGradients(rankOneDeltas: layers.indices.map { Array(UnsafeBufferPointer(start: ws.ds[$0], count: q * layers[$0].outputs)) },
                              inputs: layers.indices.map { Array(UnsafeBufferPointer(start: ws.abar[$0], count: q * layers[$0].augmented)) },
                              values: values, shape: shape)
    }
}
