/// Per-value buffers of Q tangents (B×(Q·width_k) for value k ≥ 1) for the forward-mode and
/// transposed walks. `inPlace`: a pointwise operation's output shares its input's buffer
/// unless a residual still needs that input (spatial operations change the width and never
/// run in place)
/// (GGN products: each tangent is needed once); otherwise every value has its own (the
/// R-operator Hessian reads the input tangents of pointwise operations on the way back).
public final class TangentBuffers<T: BLASScalar> {
    /// Per value k (entry 0 is a placeholder: the data has no tangent).
    public let values: [UnsafeMutablePointer<T>]
    private let owned: [UnsafeMutablePointer<T>]

    public init(shape: NetworkShape, batch: Int, queries: Int, inPlace: Bool) {
        var values: [UnsafeMutablePointer<T>] = [], owned: [UnsafeMutablePointer<T>] = []
        // The first value sharing the buffer of the latest value (a run of in-place operations).
        var runStart = 0
        for (k, width) in shape.valueWidths.enumerated() {
            // In place overwrites every value of the run; a skip source among them must survive.
            if k > 1, inPlace, case .pointwise = shape.operations[k - 1], shape.residualsFrom[runStart..<k].allSatisfy(\.isEmpty) {
                values.append(values[k - 1])
            } else {
                let p = UnsafeMutablePointer<T>.allocate(capacity: k == 0 ? 1 : batch * queries * width)
                values.append(p); owned.append(p); runStart = k
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
            case .residual(let from):
                addResidual(t.values[k], t.values[from], into: t.values[k + 1], count: batch * queries * shape.valueWidths[k])
            case .batchNorm(let n):
                BatchNorm2d.affine(t.values[k], scale: frozenScale(k), shift: nil, into: t.values[k + 1], rows: batch * queries * n.pixels)
            }
        }
    }

    /// The frozen per-channel scale of the batch norm at operation k (its tangent and transpose).
    func frozenScale(_ k: Int) -> [T] {
        guard case .batchNorm(let n) = shape.operations[k] else { preconditionFailure("frozenScale: operation \(k) is no batch norm") }
        let o = shape.normalizationOffset(shape.normalizationIndex[k]!)
        return normalization.withUnsafeBufferPointer { s in n.frozenCoefficients(state: s.baseAddress! + o, running: s.baseAddress! + shape.affineCount + o).scale }
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
            case .residual:
                // Linear (no second-derivative term): the input's share; value j's comes below.
                t.values[k].update(from: t.values[k + 1], count: batch * queries * shape.valueWidths[k])
            case .batchNorm(let n):
                // Frozen: linear, diagonal, so its own transpose and no second-derivative term.
                BatchNorm2d.affine(t.values[k + 1], scale: frozenScale(k), shift: nil, into: t.values[k], rows: batch * queries * n.pixels)
            }
            // Value k's cotangent is complete but for the skips that add it: add their outputs'.
            for r in shape.residualsFrom[k] {
                addResidual(t.values[k], t.values[r + 1], into: t.values[k], count: batch * queries * shape.valueWidths[k])
            }
        }
    }
}
