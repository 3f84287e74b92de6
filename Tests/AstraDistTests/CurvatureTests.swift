import AstraDist
import Foundation
import XCTest

/// Curvature layer (spec §3, §4, §12) against exact dense computations in double precision.
final class CurvatureTests: XCTestCase {
    // MARK: Fixtures

    /// Synthetic data from the counter-based generator: regression `t = sin(z) + noise`, or
    /// classification by the arg-max of a random linear map `z`. Global indices start at 1000
    /// so positions and global indices differ.
    static func makeData(_ task: Dataset.Task, n: Int, d: Int, c: Int, seed: UInt64 = 11) -> Dataset {
        TestSupport.synthetic(task: task, n: n, d: d, c: c, seed: seed, firstGlobalIndex: 1000)
    }

    /// A briefly trained network (curvature at a trained point, not only at initialisation).
    static func trained(_ widths: [Int], _ data: Dataset, epochs: Int = 15) -> Network<Double> {
        let recipe = TrainingRecipe(learningRate: 0.05, momentum: 0.9, weightDecay: 0, batchSize: 8, epochs: epochs)
        return Trainer<Double>(shape: NetworkShape(widths: widths), recipe: recipe).train(on: data, seed: 5)
    }

    static func randomVector(_ count: Int, seed: UInt64) -> [Double] {
        var rng = CounterRandom(seed: seed, purpose: .test, index: 77)
        return (0..<count).map { _ in rng.nextNormal() }
    }

    /// Block layout (Q vectors) → Q parameter-ordered vectors.
    static func vectors(fromBlock block: [Double], shape: NetworkShape, queries q: Int) -> [[Double]] {
        (0..<q).map { j in (0..<shape.parameterCount).map { block[DenseCurvature.blockIndex(shape, queries: q, query: j, parameter: $0)] } }
    }

    static func maxAbs(_ a: [Double]) -> Double { a.map(abs).max() ?? 0 }
    static func maxDiff(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).map { abs($0 - $1) }.max() ?? 0 }
    static func matVec(_ m: Matrix<Double>, _ v: [Double]) -> [Double] {
        (0..<m.rows).map { i in (0..<m.cols).reduce(0.0) { $0 + m[i, $1] * v[$1] } }
    }
    static func subMatrix(_ m: Matrix<Double>, _ r: Range<Int>) -> Matrix<Double> {
        var out = Matrix<Double>(rows: r.count, cols: r.count)
        for i in r { for j in r { out[i - r.lowerBound, j - r.lowerBound] = m[i, j] } }
        return out
    }

    static let single = SingleProcessCommunicator()

    // MARK: (a) K-FAC is exact for one linear layer with MSE

    func testSingleLinearLayerKroneckerEqualsDenseGGN() {
        let data = Self.makeData(.regression, n: 23, d: 3, c: 2)
        let net = Self.trained([3, 2], data)
        let factors = KroneckerFactors.compute(network: net, data: data, shard: 0..<data.count, comm: Self.single, mode: .exact, seed: 1, batchSize: 7)
        let kron = kroneckerProduct(factors.s[0], factors.a[0])
        let g = DenseCurvature.denseGGN(network: net, data: data)
        XCTAssertEqual(kron.rows, 8)
        XCTAssertLessThan(Self.maxDiff(kron.data, g.data), 1e-12, "S ⊗ A must equal the GGN of a linear layer under MSE")
        XCTAssertGreaterThan(Self.maxAbs(g.data), 0.1)
        // And S = H_L = 2I exactly, so EK-FAC's Λ equals K-FAC's λ_S λ_Aᵀ.
        XCTAssertLessThan(Self.maxDiff(factors.s[0].data, [2, 0, 0, 2]), 1e-14)
        let ekfac = try! FitRunner.fit(network: net, data: data, shard: 0..<data.count, comm: Self.single, mode: .exact, seed: 1, batchSize: 5)
        XCTAssertLessThan(Self.maxDiff(ekfac.layers[0].lambda.data, ekfac.layers[0].kfacLambda.data), 1e-12)
        // For a linear model the Hessian is the GGN, for both losses.
        XCTAssertLessThan(Self.maxDiff(DenseCurvature.denseHessian(network: net, data: data).data, g.data), 1e-12)
        let cls = Self.makeData(.classification, n: 19, d: 3, c: 3)
        let cnet = Self.trained([3, 3], cls)
        XCTAssertLessThan(Self.maxDiff(DenseCurvature.denseHessian(network: cnet, data: cls).data,
                                       DenseCurvature.denseGGN(network: cnet, data: cls).data), 1e-12)
    }

    // MARK: (b) EK-FAC eigenvalues are the GGN diagonal in the Kronecker eigenbasis

    func checkEigenvalueCorrection(_ task: Dataset.Task, outputs c: Int) throws {
        let data = Self.makeData(task, n: 37, d: 4, c: c)
        let net = Self.trained([4, 6, 5, c], data)
        let ekfac = try FitRunner.fit(network: net, data: data, shard: 0..<data.count, comm: Self.single, mode: .exact, seed: 3, batchSize: 10)
        let g = DenseCurvature.denseGGN(network: net, data: data)
        XCTAssertEqual(ekfac.exampleCount, 37)
        for l in 0..<net.shape.layerCount {
            let f = ekfac.layers[l], block = Self.subMatrix(g, net.shape.offset(l)..<net.shape.offset(l + 1))
            let k = kroneckerProduct(f.qS, f.qA)  // column i·(I+1)+j = Q_S[:,i] ⊗ Q_A[:,j]
            let rotated = k.multiplied(by: block, transposeSelf: true).multiplied(by: k)
            let diag = (0..<k.cols).map { rotated[$0, $0] }
            let scale = max(1, Self.maxAbs(diag))
            XCTAssertLessThan(Self.maxDiff(f.lambda.data, diag) / scale, 1e-10, "\(task) layer \(l): Λ ≠ diag((Q_S⊗Q_A)ᵀ G_ll (Q_S⊗Q_A))")
            XCTAssertGreaterThan(Self.maxAbs(diag), 1e-3)
        }
    }

    func testEigenvalueCorrectionMSE() throws { try checkEigenvalueCorrection(.regression, outputs: 2) }
    func testEigenvalueCorrectionCrossEntropy() throws { try checkEigenvalueCorrection(.classification, outputs: 3) }

    // MARK: (c) Sampled Fisher is an unbiased estimate of the exact one

    /// Each sampled S is the exact S plus zero-mean noise (E[g gᵀ] = H_L for both losses).
    /// Over K = 2000 seeds, every entry's mean must lie within 5 standard errors (sample
    /// standard deviation over the K runs / √K) of the exact value, plus 1e−12 for entries
    /// that are exactly zero in every run (dead units). Per entry a 5σ excursion has
    /// probability ≈ 6e−7 (CLT over 2000 i.i.d. runs of 29 examples each; the sample sd is
    /// accurate to ~2% at this K); over the ≤ 30 entries checked the chance of a spurious
    /// failure is below 2e−5, and the draws are a fixed function of the seeds, so the outcome
    /// is the same on every run. 5 SE is ~3% of a diagonal entry here, so a wrong scale
    /// (e.g. 1.5ε instead of √2ε, +12%) or a wrong exact mode fails.
    func checkSampledApproachesExact(_ task: Dataset.Task, outputs c: Int) {
        let data = Self.makeData(task, n: 29, d: 3, c: c)
        let net = Self.trained([3, 5, c], data)
        let exact = KroneckerFactors.compute(network: net, data: data, shard: 0..<data.count, comm: Self.single, mode: .exact, seed: 0, batchSize: 8)
        let runs = 2000
        let samples = (0..<runs).map {
            KroneckerFactors.compute(network: net, data: data, shard: 0..<data.count, comm: Self.single, mode: .sampled, seed: UInt64(100 + $0), batchSize: 8)
        }
        for l in 0..<net.shape.layerCount {
            XCTAssertLessThan(Self.maxDiff(samples[0].a[l].data, exact.a[l].data), 1e-14, "A does not depend on the Fisher mode")
            XCTAssertGreaterThan(Self.maxDiff(samples[0].s[l].data, exact.s[l].data), 1e-4, "a single sampled S must differ from the exact S")
            for k in exact.s[l].data.indices {
                let xs = samples.map { $0.s[l].data[k] }
                let mean = xs.reduce(0, +) / Double(runs)
                let sd = (xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(runs - 1)).squareRoot()
                XCTAssertLessThanOrEqual(abs(mean - exact.s[l].data[k]), 5 * sd / Double(runs).squareRoot() + 1e-12,
                                         "\(task) layer \(l) S entry \(k): mean of \(runs) sampled runs is not near exact")
            }
        }
    }

    func testSampledApproachesExactMSE() { checkSampledApproachesExact(.regression, outputs: 2) }
    func testSampledApproachesExactCrossEntropy() { checkSampledApproachesExact(.classification, outputs: 3) }

    // MARK: (d) GGN-vector products

    func checkGGNProduct(_ task: Dataset.Task, outputs c: Int) throws {
        let data = Self.makeData(task, n: 31, d: 4, c: c)
        let net = Self.trained([4, 6, 5, c], data)
        let shape = net.shape, q = 3
        let v = Self.randomVector(q * shape.parameterCount, seed: 9)
        let indices = GGNProduct<Double>.sampleBatch(seed: 4, iteration: 2, size: 17, population: data.count)
        XCTAssertLessThan(Set(indices).count, indices.count, "this batch should contain a repeat (with replacement)")
        // maxBatch 5 < 17 exercises chunked accumulation.
        let ggn = GGNProduct(network: net, data: data, queries: q, maxBatch: 5)
        let out = ggn.apply(v, indices: indices[...])
        let dense = DenseCurvature.denseGGN(network: net, data: data.subset(indices))
        let expected = Self.vectors(fromBlock: v, shape: shape, queries: q).map { Self.matVec(dense, $0) }
        let got = Self.vectors(fromBlock: out, shape: shape, queries: q)
        for j in 0..<q {
            XCTAssertLessThan(Self.maxDiff(got[j], expected[j]) / max(1, Self.maxAbs(expected[j])), 1e-10, "\(task): G̃_B v ≠ dense GGN · v (vector \(j))")
        }
        // Slices of one batch (as ranks would pass them), summed, give the same product;
        // the second call reuses the workspaces.
        let halves = [indices[0..<6], indices[6..<17]].map { ggn.apply(v, indices: $0, totalBatch: 17) }
        XCTAssertLessThan(Self.maxDiff(zip(halves[0], halves[1]).map { $0 + $1 }, out), 1e-12)
        XCTAssertEqual(GGNProduct<Double>.sampleBatch(seed: 4, iteration: 2, size: 17, population: data.count), indices)
        XCTAssertNotEqual(GGNProduct<Double>.sampleBatch(seed: 4, iteration: 3, size: 17, population: data.count), indices)

        // In the EK-FAC eigenbasis the product is Rᵀ G̃_B R y (R the block rotation): with
        // y = Rᵀ v it must equal Rᵀ(G̃_B v).
        let ekfac = try FitRunner.fit(network: net, data: data, shard: 0..<data.count, comm: SingleProcessCommunicator(), mode: .exact, seed: 1, batchSize: 8)
        func rotated(_ block: [Double]) -> [Double] {
            var r = block
            r.withUnsafeMutableBufferPointer { ekfac.toEigenbasis(UnsafePointer($0.baseAddress!), queries: q, into: $0.baseAddress!) }
            return r
        }
        let inEigenbasis = GGNProduct(network: net, data: data, queries: q, maxBatch: 5, eigenbasis: ekfac).apply(rotated(v), indices: indices[...])
        XCTAssertLessThan(Self.maxDiff(inEigenbasis, rotated(out)) / max(1, Self.maxAbs(out)), 1e-10, "\(task): eigenbasis product ≠ Rᵀ G̃_B R y")

        // The forward-only quadratic forms vᵀG̃_B v equal v · (G̃_B v), in either coordinates
        // and summed over slices (as ranks pass them).
        let dots = (0..<q).map { j in zip(Self.vectors(fromBlock: v, shape: shape, queries: q)[j], expected[j]).reduce(0) { $0 + $1.0 * $1.1 } }
        XCTAssertTrue(dots.allSatisfy { $0 > 1e-3 }, "\(task): the test needs non-trivial forms \(dots)")
        let forms = v.withUnsafeBufferPointer { ggn.quadraticForms($0.baseAddress!, indices: indices[...], comm: nil, totalBatch: 17) }
        let eigen = GGNProduct(network: net, data: data, queries: q, maxBatch: 5, eigenbasis: ekfac)
        let formsInEigenbasis = rotated(v).withUnsafeBufferPointer { y in
            [indices[0..<6], indices[6..<17]].map { eigen.quadraticForms(y.baseAddress!, indices: $0, comm: nil, totalBatch: 17) }
        }
        for j in 0..<q {
            XCTAssertEqual(forms[j], dots[j], accuracy: 1e-10 * dots[j], "\(task): vᵀG̃_B v (vector \(j))")
            XCTAssertEqual(formsInEigenbasis[0][j] + formsInEigenbasis[1][j], dots[j], accuracy: 1e-10 * dots[j], "\(task): yᵀRᵀG̃_B R y, sliced (vector \(j))")
        }
    }

    func testGGNProductMSE() throws { try checkGGNProduct(.regression, outputs: 2) }
    func testGGNProductCrossEntropy() throws { try checkGGNProduct(.classification, outputs: 3) }

    // MARK: Exact Hessian

    /// The R-operator Hessian against central differences of the exact gradient. With h = 1e−5
    /// truncation is O(h²) ≈ 1e−10 and rounding ≈ 1e−16/h ≈ 1e−11; a step crossing a ReLU kink
    /// would show as an O(1/N) error in a column, and does not happen for this fixed network.
    func checkHessian(_ task: Dataset.Task, outputs c: Int) {
        let data = Self.makeData(task, n: 21, d: 3, c: c)
        let net = Self.trained([3, 5, 4, c], data)
        let h = DenseCurvature.denseHessian(network: net, data: data), p = net.shape.parameterCount
        let step = 1e-5
        var fd = Matrix<Double>(rows: p, cols: p)
        for k in 0..<p {
            var plus = net, minus = net
            plus.parameters[k] += step; minus.parameters[k] -= step
            let gp = DenseCurvature.meanGradient(network: plus, data: data), gm = DenseCurvature.meanGradient(network: minus, data: data)
            for i in 0..<p { fd[i, k] = (gp[i] - gm[i]) / (2 * step) }
        }
        let scale = Self.maxAbs(h.data)
        XCTAssertLessThan(Self.maxDiff(h.data, fd.data) / scale, 1e-7, "\(task): R-op Hessian ≠ finite differences")
        XCTAssertEqual(h, h.transposed)
        // The second-order terms are really there: H differs from G.
        let g = DenseCurvature.denseGGN(network: net, data: data)
        XCTAssertGreaterThan(Self.maxDiff(h.data, g.data) / scale, 1e-3, "\(task): H should differ from the GGN for a deep net")
        // Block diagonal keeps exactly the layer blocks.
        let bd = DenseCurvature.blockDiagonal(g, shape: net.shape)
        XCTAssertEqual(bd[0, 1], g[0, 1])
        XCTAssertEqual(bd[0, p - 1], 0)
        XCTAssertEqual(bd[p - 1, p - 2], g[p - 1, p - 2])
    }

    func testHessianMSE() { checkHessian(.regression, outputs: 2) }
    func testHessianCrossEntropy() { checkHessian(.classification, outputs: 3) }

    // MARK: (e) Sharding changes only the summation order

    func testShardsSumToWhole() {
        for (task, c) in [(Dataset.Task.regression, 2), (.classification, 3)] {
            let data = Self.makeData(task, n: 40, d: 4, c: c)
            let net = Self.trained([4, 6, c], data)
            let whole = KroneckerFactors.shardSums(network: net, data: data, shard: 0..<40, mode: .sampled, seed: 8, batchSize: 16)
            for ranks in [2, 3] {
                var sum = KroneckerFactors.shardSums(network: net, data: data, shard: blockRange(count: 40, rank: 0, size: ranks), mode: .sampled, seed: 8, batchSize: 16)
                for r in 1..<ranks {
                    sum.add(KroneckerFactors.shardSums(network: net, data: data, shard: blockRange(count: 40, rank: r, size: ranks), mode: .sampled, seed: 8, batchSize: 16))
                }
                XCTAssertEqual(sum.exampleCount, 40)
                for l in 0..<2 {
                    XCTAssertLessThan(Self.maxDiff(sum.a[l].data, whole.a[l].data) / Self.maxAbs(whole.a[l].data), 1e-13)
                    XCTAssertLessThan(Self.maxDiff(sum.s[l].data, whole.s[l].data) / Self.maxAbs(whole.s[l].data), 1e-13)
                }
            }
            // Pseudo-labels follow the global index, not the position: shuffled rows, same factors.
            var rng = CounterRandom(seed: 3, purpose: .test)
            let shuffled = data.subset(rng.permutation(40))
            let again = KroneckerFactors.shardSums(network: net, data: shuffled, shard: 0..<40, mode: .sampled, seed: 8, batchSize: 16)
            XCTAssertLessThan(Self.maxDiff(again.s[0].data, whole.s[0].data) / Self.maxAbs(whole.s[0].data), 1e-13)
            // The correction pass, too.
            let bases = try! whole.reduced(over: Self.single).eigendecomposed(comm: Self.single)
            let lambdaWhole = EigenvalueCorrection.shardSums(network: net, data: data, shard: 0..<40, bases: bases, mode: .sampled, seed: 8, batchSize: 16)
            var lambdaSum = EigenvalueCorrection.shardSums(network: net, data: data, shard: 0..<13, bases: bases, mode: .sampled, seed: 8, batchSize: 16)
            lambdaSum.add(EigenvalueCorrection.shardSums(network: net, data: data, shard: 13..<40, bases: bases, mode: .sampled, seed: 8, batchSize: 16))
            for l in 0..<2 {
                XCTAssertLessThan(Self.maxDiff(lambdaSum.lambda[l].data, lambdaWhole.lambda[l].data) / Self.maxAbs(lambdaWhole.lambda[l].data), 1e-13)
            }
        }
    }

    /// The whole distributed fit on 3 simulated ranks (threads with an in-process
    /// communicator) against 1 rank: same preconditioner action, identical on every rank.
    func testFitOnSimulatedRanks() throws {
        let data = Self.makeData(.classification, n: 45, d: 4, c: 3)
        let net = Self.trained([4, 6, 5, 3], data)
        let reference = try FitRunner.fit(network: net, data: data, shard: 0..<45, comm: Self.single, mode: .sampled, seed: 2, batchSize: 8)
        let ranks = 3
        let fits = SimulatedCluster.run(ranks: ranks) { comm in
            try FitRunner.fit(network: net, data: data, shard: blockRange(count: 45, rank: comm.rank, size: comm.size), comm: comm, mode: .sampled, seed: 2, batchSize: 8)
        }
        let v = Self.randomVector(2 * net.shape.parameterCount, seed: 5)
        let expected = reference.apply(v, queries: 2, damping: 1e-3)
        for r in 0..<ranks {
            let fit = try XCTUnwrap(fits[r])
            XCTAssertEqual(fit.exampleCount, 45)
            let got = fit.apply(v, queries: 2, damping: 1e-3)
            XCTAssertLessThan(Self.maxDiff(got, expected) / Self.maxAbs(expected), 1e-8, "rank \(r): 3-rank fit differs from 1-rank fit")
            XCTAssertEqual(got, fits[0]!.apply(v, queries: 2, damping: 1e-3), "every rank must hold the same factors")
            for l in 0..<3 { XCTAssertLessThan(Self.maxDiff(fit.layers[l].lambdaA, reference.layers[l].lambdaA), 1e-12) }
        }
        // The GGN product over rank slices of one batch, too.
        let batch = GGNProduct<Double>.sampleBatch(seed: 1, iteration: 0, size: 20, population: 45)
        let w = Self.randomVector(2 * net.shape.parameterCount, seed: 6)
        let single = GGNProduct(network: net, data: data, queries: 2, maxBatch: 8).apply(w, indices: batch[...])
        let sliced = SimulatedCluster.run(ranks: ranks) { comm in
            GGNProduct(network: net, data: data, queries: 2, maxBatch: 8)
                .apply(w, indices: batch[blockRange(count: 20, rank: comm.rank, size: comm.size)], comm: comm, totalBatch: 20)
        }
        for r in 0..<ranks { XCTAssertLessThan(Self.maxDiff(try XCTUnwrap(sliced[r]), single) / Self.maxAbs(single), 1e-12) }
    }

    func testLongestProcessingTime() {
        // Costs 64, 27, 8, 1 on 2 ranks: 64 → r0, 27 → r1, 8 → r1, 1 → r1.
        XCTAssertEqual(KroneckerFactors.longestProcessingTime(costs: [27, 8, 1, 64], ranks: 2), [1, 1, 1, 0])
        XCTAssertEqual(KroneckerFactors.longestProcessingTime(costs: [5, 5, 5], ranks: 3), [0, 1, 2])
        XCTAssertEqual(KroneckerFactors.longestProcessingTime(costs: [5, 5, 5], ranks: 1), [0, 0, 0])
    }

    // MARK: (f) Applying (P + λI)⁻¹

    func testApplyMatchesDenseSolve() throws {
        let data = Self.makeData(.classification, n: 33, d: 4, c: 3)
        let net = Self.trained([4, 6, 3], data)
        let ekfac = try FitRunner.fit(network: net, data: data, shard: 0..<33, comm: Self.single, mode: .sampled, seed: 4, batchSize: 8)
        let shape = net.shape, p = shape.parameterCount, q = 3, damping = 1e-3
        let v = Self.randomVector(q * p, seed: 12)
        let columns = Self.vectors(fromBlock: v, shape: shape, queries: q)
        var rhs = Matrix<Double>(rows: p, cols: q)
        for j in 0..<q { for i in 0..<p { rhs[i, j] = columns[j][i] } }
        for kfac in [false, true] {
            // Explicit block-diagonal (Q_S ⊗ Q_A) diag(vec Λ) (Q_S ⊗ Q_A)ᵀ + λI, built here.
            var m = Matrix<Double>(rows: p, cols: p)
            for (l, f) in ekfac.layers.enumerated() {
                let k = kroneckerProduct(f.qS, f.qA), n = f.parameterCount, o = shape.offset(l)
                var e = [Double](repeating: 0, count: n)
                for i in 0..<f.outputs { for j in 0..<(f.inputs + 1) { e[i * (f.inputs + 1) + j] = kfac ? f.lambdaS[i] * f.lambdaA[j] : f.lambda[i, j] } }
                for r in 0..<n { for c in 0..<n { m[o + r, o + c] = (0..<n).reduce(0.0) { $0 + k[r, $1] * e[$1] * k[c, $1] } } }
            }
            XCTAssertLessThan(Self.maxDiff(ekfac.denseMatrix(kfac: kfac).data, m.data), 1e-12)
            for i in 0..<p { m[i, i] += damping }
            let solved = try XCTUnwrap(solveSPD(m, rhs))
            let out = ekfac.apply(v, queries: q, damping: damping, kfac: kfac)
            let got = Self.vectors(fromBlock: out, shape: shape, queries: q)
            for j in 0..<q {
                let expected = (0..<p).map { solved[$0, j] }
                XCTAssertLessThan(Self.maxDiff(got[j], expected) / Self.maxAbs(expected), 1e-9, "kfac \(kfac): apply ≠ dense solve (vector \(j))")
            }
            // Float production path agrees to single precision.
            let outFloat = ekfac.apply(v.map { Float($0) }, queries: q, damping: damping, kfac: kfac).map { Double($0) }
            XCTAssertLessThan(Self.maxDiff(outFloat, out) / Self.maxAbs(out), 1e-3)
        }
        // Eigenbasis rotations are inverse to each other, and the operator is diagonal there.
        var y = [Double](repeating: 0, count: q * p), back = y
        v.withUnsafeBufferPointer { vp in y.withUnsafeMutableBufferPointer { ekfac.toEigenbasis(vp.baseAddress!, queries: q, into: $0.baseAddress!) } }
        y.withUnsafeBufferPointer { yp in back.withUnsafeMutableBufferPointer { ekfac.fromEigenbasis(yp.baseAddress!, queries: q, into: $0.baseAddress!) } }
        XCTAssertLessThan(Self.maxDiff(back, v), 1e-12)
        let k0 = kroneckerProduct(ekfac.layers[0].qS, ekfac.layers[0].qA), n0 = ekfac.layers[0].parameterCount
        let first = Array(v[0..<n0]), rotated = (0..<n0).map { c in (0..<n0).reduce(0.0) { $0 + k0[$1, c] * first[$1] } }
        XCTAssertLessThan(Self.maxDiff(Array(y[0..<n0]), rotated), 1e-12, "toEigenbasis must give (Q_S ⊗ Q_A)ᵀ v")
        XCTAssertEqual(ekfac.diagonal(damping: 0.5).count, p)
        XCTAssertEqual(ekfac.diagonal(damping: 0.5)[1], ekfac.layers[0].lambda.data[1] + 0.5)
    }

    // MARK: (g) Files

    func testWriteReadRoundTripAndCorruption() throws {
        let data = Self.makeData(.regression, n: 20, d: 3, c: 2)
        let net = Self.trained([3, 4, 2], data)
        let ekfac = try FitRunner.fit(network: net, data: data, shard: 0..<20, comm: Self.single, mode: .exact, seed: 4, batchSize: 8)
        let dir = NSTemporaryDirectory() + "astra-curv-\(getpid())-\(UInt64(Date().timeIntervalSince1970 * 1e6))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try ekfac.write(to: dir, meta: ["model": "abc123", "config": "def456"])
        let back = try EKFAC.read(from: dir, expecting: net.shape)
        XCTAssertEqual(back.meta, ["model": "abc123", "config": "def456"])
        XCTAssertEqual(back.exampleCount, 20)
        XCTAssertEqual(back.mode, .exact)
        for (a, b) in zip(ekfac.layers, back.layers) {
            XCTAssertEqual(a.qA, b.qA); XCTAssertEqual(a.qS, b.qS); XCTAssertEqual(a.lambda, b.lambda)
            XCTAssertEqual(a.lambdaA, b.lambdaA); XCTAssertEqual(a.lambdaS, b.lambdaS)
        }
        let npy = try NPY.read(dir + "/layer-1-Lambda.npy")
        XCTAssertEqual(npy.shape, [2, 5])
        XCTAssertEqual(npy.dtype, .float64)

        func expectError(_ fragment: String, expecting shape: NetworkShape? = nil, _ line: UInt = #line) {
            XCTAssertThrowsError(try EKFAC.read(from: dir, expecting: shape), line: line) { error in
                let message = "\(error)"
                XCTAssertTrue(message.contains(fragment), "message should name \(fragment): \(message)", line: line)
                XCTAssertTrue(message.contains("astra-dist fit"), "message should say to re-run fit: \(message)", line: line)
            }
        }
        expectError("factors.json", expecting: NetworkShape(widths: [3, 5, 2]))
        // A flipped byte in an eigenvector file.
        let qa = dir + "/layer-0-QA.npy"
        var bytes = [UInt8](FileManager.default.contents(atPath: qa)!)
        bytes[bytes.count - 3] ^= 0x40
        try AtomicFile.write(bytes, to: qa)
        expectError("layer-0-QA.npy")
        // A truncated eigenvalue file.
        try ekfac.write(to: dir)
        let lam = dir + "/layer-1-Lambda.npy"
        let full = [UInt8](FileManager.default.contents(atPath: lam)!)
        try AtomicFile.write(Array(full[0..<(full.count - 8)]), to: lam)
        expectError("layer-1-Lambda.npy")
        // A missing file and a garbled manifest.
        try FileManager.default.removeItem(atPath: lam)
        expectError("layer-1-Lambda.npy")
        try AtomicFile.write("{ not json", to: dir + "/factors.json")
        expectError("factors.json")
    }
}

// MARK: - Simulated ranks

/// Runs `body` on `ranks` threads, each with a `ThreadCommunicator` of one shared hub
/// (allreduce, broadcast and barrier only). Test-only: the real cluster is MPI.
enum SimulatedCluster {
    final class Results<R>: @unchecked Sendable {
        var values: [R?]
        let lock = NSLock()
        init(_ n: Int) { values = Array(repeating: nil, count: n) }
    }

    static func run<R>(ranks: Int, _ body: @escaping @Sendable (Communicator) throws -> R) -> [R?] {
        let hub = ThreadHub(size: ranks), results = Results<R>(ranks), done = DispatchSemaphore(value: 0)
        for r in 0..<ranks {
            let thread = Thread {
                let value = try? body(ThreadCommunicator(hub: hub, rank: r))
                results.lock.lock(); results.values[r] = value; results.lock.unlock()
                done.signal()
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        for _ in 0..<ranks { done.wait() }
        return results.values
    }
}

/// Meeting point of the simulated ranks: the last rank to arrive performs the collective on
/// every rank's buffer (in rank order, so the sums are deterministic) and releases the rest.
final class ThreadHub: @unchecked Sendable {
    let size: Int
    private let condition = NSCondition()
    private var buffers: [UnsafeMutableRawBufferPointer?]
    private var arrived = 0
    private var generation = 0
    init(size: Int) { self.size = size; buffers = Array(repeating: nil, count: size) }

    func collective(rank: Int, _ buffer: UnsafeMutableRawBufferPointer, _ operation: ([UnsafeMutableRawBufferPointer]) -> Void) {
        condition.lock()
        let mine = generation
        buffers[rank] = buffer
        arrived += 1
        if arrived == size {
            operation(buffers.map { $0! })
            arrived = 0
            generation += 1
            condition.broadcast()
        } else {
            while generation == mine { condition.wait() }
        }
        condition.unlock()
    }
}

final class ThreadCommunicator: Communicator, @unchecked Sendable {
    let hub: ThreadHub
    let rank: Int
    var size: Int { hub.size }
    init(hub: ThreadHub, rank: Int) { self.hub = hub; self.rank = rank }

    private func reduce<E: BinaryFloatingPoint>(_ buffer: UnsafeMutableBufferPointer<E>, _ combine: @escaping (E, E) -> E) {
        hub.collective(rank: rank, UnsafeMutableRawBufferPointer(buffer)) { all in
            let views = all.map { $0.bindMemory(to: E.self) }
            for i in 0..<buffer.count {
                var acc = views[0][i]
                for v in views.dropFirst() { acc = combine(acc, v[i]) }
                for v in views { v[i] = acc }
            }
        }
    }
    func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) { reduce(buffer, +) }
    func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) { reduce(buffer, +) }
    func allreduceMax(_ buffer: UnsafeMutableBufferPointer<Double>) { reduce(buffer) { Swift.max($0, $1) } }
    func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) {
        hub.collective(rank: rank, buffer) { all in
            for (r, b) in all.enumerated() where r != root { b.copyMemory(from: UnsafeRawBufferPointer(all[root])) }
        }
    }
    func barrier() { hub.collective(rank: rank, UnsafeMutableRawBufferPointer(start: nil, count: 0)) { _ in } }
    func gatherv(_ bytes: [UInt8], root: Int) -> [[UInt8]]? { fatalError("ThreadCommunicator: gatherv not simulated") }
    func send(_ bytes: [UInt8], to rank: Int, tag: Int) { fatalError("ThreadCommunicator: send not simulated") }
    func receive(from rank: Int?, tag: Int?) -> (bytes: [UInt8], source: Int, tag: Int) { fatalError("ThreadCommunicator: receive not simulated") }
    func probe(from rank: Int?, tag: Int?) -> (source: Int, tag: Int)? { fatalError("ThreadCommunicator: probe not simulated") }
    func split(color: Int, key: Int) -> Communicator { fatalError("ThreadCommunicator: split not simulated") }
    func abort(_ code: Int32) -> Never { fatalError("ThreadCommunicator: abort(\(code))") }
}
