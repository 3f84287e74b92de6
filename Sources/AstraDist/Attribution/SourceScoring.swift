import Foundation

/// One SOURCE segment ready to score: the averaged weights θ̄_ℓ, the EK-FAC fitted there,
/// and the segment's dynamics (η̄_ℓK_ℓ, wd).
public struct SourceSegment<T: BLASScalar>: Sendable {
    public let network: Network<T>
    public let ekfac: EKFAC
    public let dynamics: SegmentDynamics
    public init(network: Network<T>, ekfac: EKFAC, dynamics: SegmentDynamics) {
        precondition(ekfac.shape == network.shape, "SourceSegment: factors for \(ekfac.shape), network \(network.shape)")
        self.network = network; self.ekfac = ekfac; self.dynamics = dynamics
    }
}

/// SOURCE and ASTRA-SOURCE scores (spec §7):
/// `τ(m, q) = ∇f_q(θ_T)ᵀ Σ_ℓ (S_L ⋯ S_ℓ+1) r_ℓ ḡ_ℓ(m)`, computed from the left: the query
/// vector `u` starts as `∇f_q(θ_T)` and is carried backwards through the segments
/// (`u ← S_ℓ u`, all S_ℓ symmetric), and at each segment `x_ℓ = r_ℓ u` is contracted with the
/// training gradients at θ̄_ℓ by `ScoreContraction` (no per-example gradient is formed).
/// - `source`: `S_ℓ` and `r_ℓ` are functions of the segment's EK-FAC eigenvalues
///   (`SegmentDynamics`), applied in its eigenbasis; `u` moves between segment eigenbases by
///   `EKFAC.changeBasis` (one rotation per segment boundary).
/// - `astra-source`: `r_ℓ` is replaced by `(Ḡ_ℓ + (wd + λ_ℓ)I)⁻¹`, λ_ℓ = 1/(η̄_ℓK_ℓ), solved by
///   `IHVPSolver` with method astra (its defaults, step rule and back-off; data-parallel GGN
///   products at θ̄_ℓ; the segment's EK-FAC as preconditioner, damped alike); S_ℓ stays EK-FAC.
///   The weight decay is in the damping because it is in the segment curvature (above).
public enum SourceScoring {
    /// Scores of the queries `v` (gradients at θ_T) against the training rows `rows`,
    /// Q × rows.count row-major, summed over segments (`segments` in training order).
    ///
    /// Collective over `comm` for astra-source (every rank passes the same `v`, segments and
    /// `train`); source does no communication. `checkpoint(ℓ)` gives segment ℓ's solver
    /// state (astra-source; ℓ from 0). `seconds` accumulates "solve" and "contraction", and
    /// for astra-source each segment's ASTRA solve as "solve segment ℓ" (ℓ from 1), each also
    /// in thread CPU seconds (`Stopwatch`).
    /// Precondition: `method.isSource`, at least one segment, `v` for the segments' shape.
    public static func scores<T: BLASScalar>(_ v: QueryGradients<T>, segments: [SourceSegment<T>], method: SolverMethod, options: SolverOptions,
                                             train: Dataset, rows: Range<Int>, comm: Communicator, seconds: inout [String: Double],
                                             progress: ((String) -> Void)? = nil,
                                             checkpoint: (Int) -> SolverCheckpoint? = { _ in nil }) throws -> (scores: [Float], reports: [SolverReport]) {
        precondition(method.isSource && !segments.isEmpty, "SourceScoring: \(method.rawValue) with \(segments.count) segments")
        let q = v.queries, shape = v.shape
        var total = [Float](repeating: 0, count: q * rows.count), reports: [SolverReport] = []
        guard q > 0 else { return (total, reports) }
        func contract(_ x: SolvedBlock<T>, _ segment: SourceSegment<T>) {
            let t = Stopwatch()
            let tau = ScoreContraction(network: segment.network, queries: q, featureCount: train.featureCount, targetWidth: train.targetWidth)
                .scores(x, train: train, rows: rows)
            for k in total.indices { total[k] += tau[k] }
            t.add(to: &seconds, "contraction")
        }
        // u in the eigenbasis of the current segment (source) or in parameters (astra-source).
        var last = segments.count - 1
        var u = method == .source ? v.eigenBlock(segments[last].ekfac) : v.parameterBlock()
        while last >= 0 {
            let segment = segments[last], e = segment.ekfac, d = segment.dynamics
            var t = Stopwatch()
            if method == .source {
                var x = u
                x.withUnsafeMutableBufferPointer { e.scaleInEigenbasis($0.baseAddress!, queries: q, by: d.response) }
                t.add(to: &seconds, "solve")
                contract(SolvedBlock(values: x, queries: q, eigenbasis: e), segment)
            } else {
                var o = options
                o.method = .astra; o.damping = d.weightDecay + d.damping; o.segments = nil
                progress?(String(format: "segment %d/%d: astra at damping %.4g (wd %.3g + λ %.4g)", last + 1, segments.count, o.damping, d.weightDecay, d.damping))
                let (x, report) = try IHVPSolver.solve(QueryGradients(block: u, queries: q, shape: shape), network: segment.network, train: train,
                                                       ekfac: e, options: o, comm: comm, progress: progress, checkpoint: checkpoint(last))
                reports.append(report)
                t.add(to: &seconds, "solve"); t.add(to: &seconds, "solve segment \(last + 1)")
                contract(x, segment)
            }
            guard last > 0 else { break }
            // u ← S_ℓ u, then into the previous segment's basis.
            t = Stopwatch()
            u.withUnsafeMutableBufferPointer { p in
                if method == .source {
                    e.scaleInEigenbasis(p.baseAddress!, queries: q, by: d.propagator)
                    e.changeBasis(UnsafePointer(p.baseAddress!), queries: q, to: segments[last - 1].ekfac, into: p.baseAddress!)
                } else {
                    e.toEigenbasis(UnsafePointer(p.baseAddress!), queries: q, into: p.baseAddress!)
                    e.scaleInEigenbasis(p.baseAddress!, queries: q, by: d.propagator)
                    e.fromEigenbasis(UnsafePointer(p.baseAddress!), queries: q, into: p.baseAddress!)
                }
            }
            t.add(to: &seconds, "solve")
            last -= 1
        }
        return (total, reports)
    }

    /// SOURCE's implied IF damping: the K_ℓ-weighted mean of λ_ℓ = 1/(η̄_ℓK_ℓ) (spec §7).
    /// Precondition: `steps.count == times.count`, positive steps.
    public static func impliedDamping(steps: [Int], times: [Double]) -> Double {
        precondition(steps.count == times.count && !steps.isEmpty, "impliedDamping: \(steps.count) step counts, \(times.count) times")
        let k = steps.reduce(0, +)
        return zip(steps, times).reduce(0.0) { $0 + Double($1.0) / $1.1 } / Double(k)
    }
}
