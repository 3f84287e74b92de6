import Foundation

/// Data-parallel GGN products for one solve: every rank computes its contiguous slice of a
/// batch and one allreduce of Q·P values sums the slices (`GGNProduct`). Batches are drawn
/// from `CounterRandom(seed, .ggnBatch, iteration)`, never keyed by rank, so the products,
/// and hence the iterates, do not depend on the rank count (to summation order).
final class DistributedGGN<T: BLASScalar> {
    let product: GGNProduct<T>
    let comm: Communicator
    /// N, positions `0..<N` of the training set.
    let population: Int
    /// B; 0 = every example each time.
    let batchSize: Int
    /// This rank's positions of the full batch (batch size 0).
    private let fullSlice: [Int]

    /// `largestSet`: the largest fixed set (e.g. the evaluation batch) `apply(_:positions:)` will see.
    init(network: Network<T>, data: Dataset, queries: Int, batchSize: Int, largestSet: Int, eigenbasis: EKFAC? = nil, comm: Communicator) {
        self.comm = comm; population = data.count; self.batchSize = batchSize
        fullSlice = Array(blockRange(count: data.count, rank: comm.rank, size: comm.size))
        let per = { (n: Int) in (n + comm.size - 1) / comm.size }
        let widest = max(per(batchSize == 0 ? data.count : batchSize), per(largestSet))
        product = GGNProduct(network: network, data: data, queries: queries, maxBatch: GGNProduct<T>.chunkExamples(network.shape, widest: widest),
                             eigenbasis: eigenbasis)
    }

    /// `out = G̃_B v` with B the batch of `(seed, iteration)` (or the whole set). Collective.
    func apply(_ v: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, seed: UInt64, iteration: Int) {
        if batchSize == 0 {
            product.apply(v, indices: fullSlice[...], into: out, comm: comm, totalBatch: population)
        } else {
            let batch = GGNProduct<T>.sampleBatch(seed: seed, iteration: iteration, size: batchSize, population: population)
            let slice = blockRange(count: batchSize, rank: comm.rank, size: comm.size)
            product.apply(v, indices: batch[slice], into: out, comm: comm, totalBatch: batchSize)
        }
    }

    /// `out = G_S v` over a fixed set S: this rank passes `slice` (its part), `total` = |S|. Collective.
    func apply(_ v: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, slice: ArraySlice<Int>, total: Int) {
        product.apply(v, indices: slice, into: out, comm: comm, totalBatch: total)
    }
}

/// Per-query dot products of two blocks of Q vectors (layout of `NetworkShape`), in Double.
func perQueryDots<T: BLASScalar>(_ a: UnsafePointer<T>, _ b: UnsafePointer<T>, shape: NetworkShape, queries: Int) -> [Double] {
    var dots = [Double](repeating: 0, count: queries)
    for l in 0..<shape.layerCount {
        let n = shape.layer(l).parameterCount, base = shape.blockOffset(l, queries: queries)
        for q in 0..<queries {
            let pa = a + base + q * n, pb = b + base + q * n
            var s = 0.0
            for k in 0..<n { s += pa[k].asDouble * pb[k].asDouble }
            dots[q] += s
        }
    }
    return dots
}

/// The solver objective `h(x) = ½ xᵀ(G_E + λI)x − xᵀv` per query on a fixed evaluation
/// batch E (spec §5), the trace of its mean over queries, progress messages and divergence
/// detection. E is drawn once from a fixed key (never from the solver seed), so every
/// method and seed is judged on the same examples; at |E| = N it is the exact objective.
/// `xᵀG_E x` needs only the forward tangents (`GGNProduct.quadraticForms`): half a GGN
/// product over E and an allreduce of Q values per evaluation.
final class SolverObjective<T: BLASScalar> {
    let operator_: DistributedGGN<T>
    let shape: NetworkShape
    let queries: Int
    let damping: Double
    /// The right-hand sides v (Q·P values).
    let v: [T]
    /// E (sorted positions) and this rank's slice of it.
    let evaluationSet: [Int]
    private let slice: ArraySlice<Int>
    /// C ⊆ E, the smaller fixed set of the step back-off checks, and this rank's slice.
    let checkSet: [Int]
    private let checkSlice: ArraySlice<Int>

    let label: String
    let progress: ((String) -> Void)?
    private(set) var start: Date
    /// Text of the divergence hint ("lower --lr-scale (now 0.5) or raise --damping").
    var hint: String
    private(set) var trace: [TracePoint] = []
    /// Seconds spent in `record`.
    private(set) var seconds = 0.0
    private var initial: Double?

    /// The key of E: fixed, so E does not change with the solver seed.
    static var evaluationKey: UInt64 { 0x4556_414C_4241_5443 }

    /// E: all of `0..<population` if `count ≥ population`, else `count` positions drawn
    /// without replacement from the fixed key, sorted.
    static func evaluationSet(count: Int, population: Int) -> [Int] {
        if count >= population { return Array(0..<population) }
        var rng = CounterRandom(seed: evaluationKey, purpose: .ggnBatch, index: UInt64.max)
        return Array(rng.permutation(population).prefix(count)).sorted()
    }

    /// `checkBatch`: |C| ≤ |E|, the first examples of E's draw (so C ⊆ E).
    init(operator op: DistributedGGN<T>, v: [T], queries: Int, damping: Double, evaluationBatch: Int, checkBatch: Int,
         label: String, hint: String, progress: ((String) -> Void)?, start: Date) {
        operator_ = op; shape = op.product.network.shape; self.queries = queries; self.damping = damping; self.v = v
        evaluationSet = Self.evaluationSet(count: evaluationBatch, population: op.population)
        slice = evaluationSet[blockRange(count: evaluationSet.count, rank: op.comm.rank, size: op.comm.size)]
        checkSet = Self.evaluationSet(count: checkBatch, population: op.population)
        checkSlice = checkSet[blockRange(count: checkSet.count, rank: op.comm.rank, size: op.comm.size)]
        self.label = label; self.hint = hint; self.progress = progress; self.start = start
    }

    /// `h(x)` of every query (Q values) on E, or with `onCheckSet` on C. Collective.
    func perQuery(_ x: UnsafePointer<T>, onCheckSet: Bool = false) -> [Double] {
        let xgx = operator_.product.quadraticForms(x, indices: onCheckSet ? checkSlice : slice, comm: operator_.comm,
                                                   totalBatch: onCheckSet ? checkSet.count : evaluationSet.count)
        return v.withUnsafeBufferPointer { vp in
            let xx = perQueryDots(x, x, shape: shape, queries: queries)
            let xv = perQueryDots(x, vp.baseAddress!, shape: shape, queries: queries)
            return (0..<queries).map { 0.5 * xgx[$0] + 0.5 * damping * xx[$0] - xv[$0] }
        }
    }

    /// Mean of `h` over queries. Collective.
    func mean(_ x: UnsafePointer<T>) -> Double {
        let h = perQuery(x)
        return h.reduce(0, +) / Double(max(queries, 1))
    }

    var elapsed: Double { Date().timeIntervalSince(start) }

    /// Evaluates `h(x_k)`, appends it to the trace, reports progress and throws if the
    /// solve diverged: NaN/Inf in x or h, or h above `1e6·(|h_0| + 1)`. The decision is
    /// taken collectively, so every rank throws together. Returns the mean objective.
    @discardableResult
    func record(iteration k: Int, of total: Int, x: UnsafePointer<T>) throws -> Double {
        let begin = Date()
        defer { seconds += Date().timeIntervalSince(begin) }
        var local = true
        for i in 0..<v.count where !x[i].isFinite { local = false; break }
        // Agreed before the collective product, so no rank skips it alone.
        let finite = !operator_.comm.any(!local)
        let h = finite ? mean(x) : .nan
        let h0 = initial ?? h
        if initial == nil { initial = h }
        let bad = !h.isFinite || h > 1e6 * (abs(h0) + 1)
        if operator_.comm.any(bad) {
            throw AstraError("\(label) diverged at iteration \(k) (objective \(String(format: "%.4g", h)), started at \(String(format: "%.4g", h0))); \(hint)")
        }
        let t = elapsed
        trace.append(TracePoint(iteration: k, objective: h, seconds: t))
        progress?(String(format: "%@: iteration %d/%d, objective %.6e, %.2f s", label, k, total, h, t))
        return h
    }

    /// Continues a saved solve (`SolverState`): its trace so far, whose first point is the
    /// divergence reference h_0, and its clock, so seconds go on from the last point.
    func resume(trace saved: [TracePoint]) {
        trace = saved
        initial = saved.first?.objective
        start = Date().addingTimeInterval(-(saved.last?.seconds ?? 0))
    }

    /// Whether iteration k is a trace point (0, every `every`, and the last).
    static func isTracePoint(_ k: Int, every: Int, last: Int) -> Bool {
        k == 0 || k == last || (every > 0 && k % every == 0)
    }
}
