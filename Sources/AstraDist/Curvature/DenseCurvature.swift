/// Exact dense curvature of small networks (references for tests and the curvature ladder,
/// spec §12). P×P matrices in the parameter order of `NetworkShape`; memory P² doubles.
public enum DenseCurvature {
    /// `G = (1/N) Σ_n J_nᵀ H_L,n J_n` from explicit per-example Jacobians `J_n` (C×P, one
    /// backward pass per output unit), `H_L = 2I` (mse) or `diag(p) − ppᵀ` (cross-entropy).
    /// Independent of the tangent machinery, so it checks `GGNProduct` and the factors.
    /// Complexity: N·C·P² multiply-adds (one DGEMM per batch) plus N·C backward passes.
    public static func denseGGN(network: Network<Double>, data: Dataset) -> Matrix<Double> {
        let shape = network.shape, p = shape.parameterCount, c = shape.outputCount, n = data.count
        var g = Matrix<Double>(rows: p, cols: p)
        guard n > 0 else { return g }
        // Batch so that the stacked Jacobian (B·C)×P stays near 4 M doubles.
        let bs = max(1, min(n, 256, (1 << 22) / max(1, c * p)))
        let ws = Workspace<Double>(shape: shape, capacity: bs)
        var x = [Double](repeating: 0, count: bs * data.featureCount), y = [Double](repeating: 0, count: bs * data.targetWidth)
        var jac = [Double](repeating: 0, count: bs * c * p), hjac = jac, prob = [Double](repeating: 0, count: c)
        let all = Array(0..<n)
        var start = 0
        while start < n {
            let b = min(bs, n - start)
            x.withUnsafeMutableBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
                data.gather(all[start..<(start + b)], x: xp.baseAddress!, y: yp.baseAddress!)
                network.forward(xp.baseAddress!, batch: b, workspace: ws)
            } }
            // Row (b·C + k) of the stacked Jacobian: ∂y_k/∂θ of example b, per layer its example gradient.
            for k in 0..<c {
                for i in 0..<(b * c) { ws.outputGradient[i] = i % c == k ? 1 : 0 }
                network.backward(batch: b, workspace: ws, gradient: nil)
                for e in 0..<b {
                    let row = (e * c + k) * p
                    jac.withUnsafeMutableBufferPointer { jp in
                        for (l, layer) in shape.layers.enumerated() {
                            layer.exampleGradient(ds: ws.ds[l], rows: ws.abar[l], example: e, into: jp.baseAddress! + row + shape.offset(l))
                        }
                    }
                }
            }
            // H_L J per example.
            for e in 0..<b {
                let rows = e * c * p
                switch network.loss {
                case .mse:
                    for i in 0..<(c * p) { hjac[rows + i] = 2 * jac[rows + i] }
                case .crossEntropy:
                    prob.withUnsafeMutableBufferPointer { LossKind.softmax(ws.output + e * c, into: $0.baseAddress!, outputs: c) }
                    for col in 0..<p {
                        var pj = 0.0
                        for k in 0..<c { pj += prob[k] * jac[rows + k * p + col] }
                        for k in 0..<c { hjac[rows + k * p + col] = prob[k] * (jac[rows + k * p + col] - pj) }
                    }
                }
            }
            jac.withUnsafeBufferPointer { jp in hjac.withUnsafeBufferPointer { hp in g.data.withUnsafeMutableBufferPointer { gp in
                Double.gemm(transA: true, transB: false, m: p, n: p, k: b * c, alpha: 1, a: jp.baseAddress!, lda: p,
                            b: hp.baseAddress!, ldb: p, beta: 1, c: gp.baseAddress!, ldc: p)
            } } }
            start += b
        }
        for i in g.data.indices { g.data[i] /= Double(n) }
        return symmetrized(g)
    }

    /// The exact Hessian of the mean training loss `J(θ) = (1/N) Σ L_n` (no weight decay).
    ///
    /// Computed with the R-operator (Pearlmutter): forward tangents, then the backward pass
    /// differentiated along each direction, which adds to the GGN term the second-order
    /// terms `Dsᵀ dā` and `dWᵀ Ds` that couple layers, and each pointwise operation's
    /// `f''(v) ∘ dv ∘ g` (`Pointwise.hessianTranspose`). ReLU is piecewise linear, so its second
    /// derivative is zero wherever it exists: this is the exact Hessian at every θ where no
    /// pre-activation is exactly 0 (everywhere but a measure-zero set), with no
    /// finite-difference error and no risk of a step crossing a ReLU kink. Symmetrised.
    /// Complexity: about 8·N·P² multiply-adds, in GEMMs over blocks of directions.
    public static func denseHessian(network: Network<Double>, data: Dataset) -> Matrix<Double> {
        let shape = network.shape, p = shape.parameterCount
        let q = max(1, min(p, 64))
        var h = Matrix<Double>(rows: p, cols: p)
        var directions = [Double](repeating: 0, count: q * p), columns = directions
        var k0 = 0
        while k0 < p {
            let width = min(q, p - k0)
            for i in directions.indices { directions[i] = 0 }
            for j in 0..<width { directions[blockIndex(shape, queries: width, query: j, parameter: k0 + j)] = 1 }
            directions.withUnsafeBufferPointer { d in columns.withUnsafeMutableBufferPointer { out in
                hessianProduct(network: network, data: data, directions: d.baseAddress!, queries: width, into: out.baseAddress!)
            } }
            for j in 0..<width { for i in 0..<p { h[i, k0 + j] = columns[blockIndex(shape, queries: width, query: j, parameter: i)] } }
            k0 += width
        }
        return symmetrized(h)
    }

    /// Position of parameter `k` of vector `query` in a block of `queries` vectors.
    public static func blockIndex(_ shape: NetworkShape, queries: Int, query: Int, parameter k: Int) -> Int {
        var l = 0
        while shape.offset(l + 1) <= k { l += 1 }
        let off = shape.offset(l), size = shape.layer(l).parameterCount
        return queries * off + query * size + (k - off)
    }

    /// Exact Hessian-vector products of the mean training loss for a block of Q directions
    /// (layout of `NetworkShape`), by the R-operator over all of `data` in batches.
    public static func hessianProduct<T: BLASScalar>(network: Network<T>, data: Dataset, directions v: UnsafePointer<T>, queries q: Int,
                                                     into out: UnsafeMutablePointer<T>) {
        let shape = network.shape, n = data.count, c = shape.outputCount, tw = data.targetWidth
        out.initialize(repeating: 0, count: q * shape.parameterCount)
        guard n > 0 else { return }
        let bs = max(1, min(n, 128))
        let ws = Workspace<T>(shape: shape, capacity: bs)
        let x = UnsafeMutablePointer<T>.allocate(capacity: bs * data.featureCount), y = UnsafeMutablePointer<T>.allocate(capacity: bs * tw)
        // Per value: its forward tangent (B×Q×width), then on the way back the R-operator of its gradient.
        let t = TangentBuffers<T>(shape: shape, batch: bs, queries: q, inPlace: false)
        defer { x.deallocate(); y.deallocate() }
        let all = Array(0..<n)
        var start = 0
        network.parameters.withUnsafeBufferPointer { wp in
            let w = wp.baseAddress!
            while start < n {
                let b = min(bs, n - start)
                data.gather(all[start..<(start + b)], x: x, y: y)
                network.lossBackward(x, y, batch: b, workspace: ws)  // Ds_l of every layer
                network.forwardTangents(batch: b, queries: q, workspace: ws, tangents: t) { l, layer, da, ds in
                    layer.tangent(abar: ws.abar[l], da: da, directions: v + q * shape.offset(l), weights: w + shape.offset(l), ds: ds, batch: b, queries: q)
                }
                network.loss.applyOutputHessian(y: ws.output, dy: t.output, batch: b, queries: q, outputs: c)
                network.transposeTangents(batch: b, queries: q, workspace: ws, tangents: t, secondOrder: true) { l, layer, rds, rda in
                    let block = out + q * shape.offset(l)
                    // R(∇W̄_l) = R(Ds_l) ā_lᵀ + Ds_l dā_lᵀ
                    layer.blockGradient(ds: rds, abar: ws.abar[l], beta: 1, out: block, batch: b, queries: q)
                    guard let rda else { return }
                    // rda holds dA_l (the input tangent) until it is overwritten with R(Da_l) = R(Ds_l) W_l + Ds_l dW_l.
                    layer.directionalWeightGradient(ds: ws.ds[l], tangentInput: rda, out: block, batch: b, queries: q)
                    layer.blockBackwardInput(ds: rds, weights: w + shape.offset(l), da: rda, batch: b, queries: q)
                    layer.directionalBackwardInput(ds: ws.ds[l], directions: v + q * shape.offset(l), da: rda, batch: b, queries: q)
                }
                start += b
            }
        }
        let scale = 1 / T(n)
        for k in 0..<(q * shape.parameterCount) { out[k] *= scale }
    }

    /// The block-diagonal part of `g` (one block per layer), zero elsewhere.
    public static func blockDiagonal(_ g: Matrix<Double>, shape: NetworkShape) -> Matrix<Double> {
        precondition(g.rows == shape.parameterCount && g.cols == shape.parameterCount, "blockDiagonal: matrix is not P×P")
        var out = Matrix<Double>(rows: g.rows, cols: g.cols)
        for l in 0..<shape.layerCount {
            let r = shape.offset(l)..<shape.offset(l + 1)
            for i in r { for j in r { out[i, j] = g[i, j] } }
        }
        return out
    }

    /// Gradient of the mean training loss `(1/N) Σ ∇L_n` (no weight decay), P values,
    /// accumulated in Double over batches of 256.
    public static func meanGradient<T: BLASScalar>(network: Network<T>, data: Dataset) -> [T] {
        let shape = network.shape, p = shape.parameterCount, n = data.count, bs = max(1, min(n, 256))
        var total = [Double](repeating: 0, count: p)
        guard n > 0 else { return [T](repeating: 0, count: p) }
        let ws = Workspace<T>(shape: shape, capacity: bs)
        let x = UnsafeMutablePointer<T>.allocate(capacity: bs * data.featureCount), y = UnsafeMutablePointer<T>.allocate(capacity: bs * data.targetWidth)
        let g = UnsafeMutablePointer<T>.allocate(capacity: p)
        defer { x.deallocate(); y.deallocate(); g.deallocate() }
        let all = Array(0..<n)
        var start = 0
        while start < n {
            let b = min(bs, n - start)
            data.gather(all[start..<(start + b)], x: x, y: y)
            network.lossAndGradient(x, y, batch: b, workspace: ws, gradient: g)  // batch mean
            for k in 0..<p { total[k] += g[k].asDouble * Double(b) }
            start += b
        }
        return total.map { T($0 / Double(n)) }
    }
}
