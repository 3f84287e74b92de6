/// Per-value buffers of Q tangents (B×(Q·width_k) for value k ≥ 1) for the forward-mode and
/// transposed walks. `inPlace`: a pointwise operation's output shares its input's buffer
/// (spatial operations change the width and never run in place)
/// (GGN products: each tangent is needed once); otherwise every value has its own (the
/// R-operator Hessian reads the input tangents of pointwise operations on the way back).
public final class TangentBuffers<T: BLASScalar> {
    /// Per value k (entry 0 is a placeholder: the data has no tangent).
    public let values: [UnsafeMutablePointer<T>]
    private let owned: [UnsafeMutablePointer<T>]

    public init(shape: NetworkShape, batch: Int, queries: Int, inPlace: Bool) {
        var values: [UnsafeMutablePointer<T>] = [], owned: [UnsafeMutablePointer<T>] = []
        for (k, width) in shape.valueWidths.enumerated() {
            if k > 1, inPlace, case .pointwise = shape.operations[k - 1] {
                values.append(values[k - 1])
            } else {
                let p = UnsafeMutablePointer<T>.allocate(capacity: k == 0 ? 1 : batch * queries * width)
                values.append(p); owned.append(p)
            }
        }
        self.values = values; self.owned = owned
    }
    deinit { owned.forEach { $0.deallocate() } }
    public var output: UnsafeMutablePointer<T> { values[values.count - 1] }
}

extension Network {
    /// Forward-mode tangents of Q directions after `forward` filled `ws`: value by value,
    /// `layer(l, layer, input tangent (nil for the data), output tangent)` computes a layer's
    /// (so the caller chooses coordinates, e.g. the EK-FAC eigenbasis), pointwise operations
    /// multiply by their derivative. The output tangent ends in `t.output`.
    public func forwardTangents(batch: Int, queries: Int, workspace ws: Workspace<T>, tangents t: TangentBuffers<T>,
                                layer body: (Int, NetworkLayer, UnsafePointer<T>?, UnsafeMutablePointer<T>) -> Void) {
        for (k, op) in shape.operations.enumerated() {
            switch op {
            case .layer(let layer):
                body(shape.layerIndex[k]!, layer, k == 0 ? nil : UnsafePointer(t.values[k]), t.values[k + 1])
            case .pointwise(let f):
                f.tangent(t.values[k], pre: ws.values[k], into: t.values[k + 1], batch: batch, queries: queries, width: shape.valueWidths[k])
            case .spatial(let f):
                f.tangent(t.values[k], pre: ws.values[k], into: t.values[k + 1], batch: batch, queries: queries, width: shape.valueWidths[k])
            }
        }
    }

    /// The transposed walk: from cotangents of the output in `t.output`, back value by value;
    /// `layer(l, layer, output cotangent, input cotangent (nil for the first layer))` takes a
    /// layer's block gradient and writes its input cotangent. With `secondOrder` (the
    /// R-operator of the backward pass, `t` holding the forward tangents of `forwardTangents`
    /// with `inPlace` false and `ws` the loss gradients of `backward`), pointwise operations
    /// add their second-derivative term `f''(v) ∘ t ∘ g`.
    public func transposeTangents(batch: Int, queries: Int, workspace ws: Workspace<T>, tangents t: TangentBuffers<T>, secondOrder: Bool = false,
                                  layer body: (Int, NetworkLayer, UnsafePointer<T>, UnsafeMutablePointer<T>?) -> Void) {
        for k in shape.operations.indices.reversed() {
            switch shape.operations[k] {
            case .layer(let layer):
                body(shape.layerIndex[k]!, layer, UnsafePointer(t.values[k + 1]), k == 0 ? nil : t.values[k])
            case .pointwise(let f):
                let width = shape.valueWidths[k]
                if secondOrder {
                    f.hessianTranspose(t.values[k + 1], pre: ws.values[k], outputGradient: ws.gradients[k + 1], tangent: t.values[k],
                                       into: t.values[k], batch: batch, queries: queries, width: width)
                } else {
                    f.tangent(t.values[k + 1], pre: ws.values[k], into: t.values[k], batch: batch, queries: queries, width: width)
                }
            case .spatial(let f):
                // Piecewise linear: the R-operator is the transpose (no second-derivative term).
                f.transpose(t.values[k + 1], pre: ws.values[k], into: t.values[k], batch: batch, queries: queries, width: shape.valueWidths[k])
            }
        }
    }
}
