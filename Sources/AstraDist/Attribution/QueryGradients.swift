/// Gradients `∇f_q` of the measurement (spec §1) for a set of queries, as a block of Q
/// vectors. Each is rank one per layer, `δ_q ā_qᵀ`, written without forming a Jacobian.
extension Network {
    /// - Returns: the measurements `f_q` and the block (Q·P values, block layout).
    /// Complexity: one forward and backward pass over the queries plus Q·P writes.
    public func measurementGradients(queries: Dataset) -> (values: [Double], block: [T]) {
        let q = queries.count, c = shape.outputCount, tw = queries.targetWidth
        let ws = Workspace<T>(shape: shape, capacity: max(q, 1))
        var x = [T](repeating: 0, count: max(q, 1) * queries.featureCount), y = [T](repeating: 0, count: max(q, 1) * tw)
        var block = [T](repeating: 0, count: q * shape.parameterCount)
        var values = [Double](repeating: 0, count: q)
        guard q > 0 else { return (values, block) }
        x.withUnsafeMutableBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            queries.gather(Array(0..<q)[...], x: xp.baseAddress!, y: yp.baseAddress!)
            forward(xp.baseAddress!, batch: q, workspace: ws)
            for i in 0..<q {
                values[i] = Measurement.valueAndGradient(loss: loss, y: ws.output + i * c, target: yp.baseAddress! + i * tw,
                                                         dy: ws.outputGradient + i * c, outputs: c)
            }
        } }
        backward(batch: q, workspace: ws, gradient: nil)
        block.withUnsafeMutableBufferPointer { bp in
            for l in 0..<shape.layerCount {
                let layer = shape.layer(l), o = layer.outputs, a = layer.augmented
                let base = bp.baseAddress! + shape.blockOffset(l, queries: q)
                for i in 0..<q {
                    let delta = ws.ds[l] + i * o, abar = ws.abar[l] + i * a, out = base + i * layer.parameterCount
                    for r in 0..<o { let d = delta[r]; for k in 0..<a { out[r * a + k] = d * abar[k] } }
                }
            }
        }
        return (values, block)
    }
}
