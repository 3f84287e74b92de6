/// Per-query step back-off of the iterative solvers (`SolverOptions.backoffWindow`).
///
/// Every W iterations each query's objective on the fixed check set C is compared with its
/// best checked value. If it has risen by more than `tolerance` times the progress made so far
/// (by default 1: the query is worse than where it started, EK-FAC-IF for astra), the
/// iterate is oscillating (mini-batch noise amplified by momentum): the query returns to its
/// best iterate, its momentum is cleared and its step halved on top of the decay schedule.
/// A new best becomes the restart point. C is fixed, so a rise is a change of the iterate,
/// not of the batch. Why this rule (docs/solver-defaults.md): free mini-batch objectives
/// (each from its own batch) backed off in 60% of the windows on MNIST; smaller tolerances
/// also fire on heavy-ball ringing and on C's sampling error, and an early halving slows a
/// query for the rest of the solve (Fashion-MNIST: 13% worse objective at tolerance ¼).
///
/// Decisions use values every rank of a query group holds identically, so all ranks take
/// the same ones; the queries are independent, so they do not depend on the query grouping.
/// Across rank counts the check values are equal only to reordering (tier 2 of docs/design.md,
/// "The same on any number of ranks"), so every comparison has a relative `margin`: an
/// objective that equals its threshold in exact arithmetic (no progress yet, a converged
/// query) is decided the same way on any rank count (tier 3).
/// Memory: one snapshot of the iterate per chain (Q·P values) while enabled.
struct StepBackoff<T: BLASScalar> {
    let window: Int
    /// A rise counts once it exceeds this fraction of the progress so far, `h_C(x_0) − h_C(best)`.
    let tolerance: Double
    /// Relative margin of the comparisons, in units of `|h_C(x_0)| + |h_C(best)|`: ten times the
    /// ~1e-6 by which reordering moves the check values between rank counts (measured on
    /// digits, DistributedScoreTests), far below a rise that matters.
    static var margin: Double { 1e-5 }
    /// Back-offs taken so far, over all queries and chains.
    private(set) var count = 0
    /// Per chain and query: the step factor.
    private(set) var scale: [[Double]]
    /// Per chain and query: h_C at x_0, and at the restart point (the best checked iterate).
    /// Empty for a chain until its first check.
    private(set) var initial: [[Double]]
    private(set) var reference: [[Double]]
    /// Per chain: the restart points (Q·P values; empty when off).
    private(set) var restart: [[T]]

    /// `start`: the chains' first iterates, the restart points until the first check.
    init(window: Int, tolerance: Double, chains: Int, queries: Int, start: [[T]]) {
        self.window = window; self.tolerance = tolerance
        scale = [[Double]](repeating: [Double](repeating: 1, count: queries), count: chains)
        initial = []; reference = []
        restart = window > 0 ? start : []
    }

    /// A saved back-off (`SolverState`), exactly as it was: the fields above, in order.
    init(window: Int, tolerance: Double, count: Int, scale: [[Double]], initial: [[Double]], reference: [[Double]], restart: [[T]]) {
        self.window = window; self.tolerance = tolerance; self.count = count
        self.scale = scale; self.initial = initial; self.reference = reference; self.restart = restart
    }

    /// The factor (a power of ½) on query q's scheduled step.
    func stepScale(chain c: Int, query q: Int) -> Double { scale[c][q] }

    /// Whether the iterate after `done` iterations is checked.
    func checks(after done: Int) -> Bool { window > 0 && done % window == 0 }

    /// Checks in a solve of `iterations` (x_0 and every W-th iterate; 0 when off).
    static func checkCount(iterations: Int, window: Int) -> Int { window > 0 ? iterations / window + 1 : 0 }

    /// Takes chain c's objectives on C at the current iterate (Q values), backs off the
    /// queries whose objective rose beyond the tolerance and moves the restart point of those
    /// at a new best. The first call (at x_0) only records the start.
    mutating func check(_ objectives: [Double], chain c: Int, x: inout [T], momentum m: inout [T], shape: NetworkShape) {
        if reference.count <= c { initial.append(objectives); reference.append(objectives); return }
        let queries = objectives.count
        for q in 0..<queries {
            let best = reference[c][q], progress = initial[c][q] - best
            let slack = Self.margin * (abs(initial[c][q]) + abs(best))
            let rose = !(objectives[q] <= best + tolerance * progress + slack)
            if rose { scale[c][q] *= 0.5; count += 1 }
            guard rose || objectives[q] < best - slack else { continue }
            if !rose { reference[c][q] = objectives[q] }
            // Copy the query's blocks: restart → x after a rise (momentum cleared), x → restart
            // after a new best.
            x.withUnsafeMutableBufferPointer { xb in m.withUnsafeMutableBufferPointer { mb in restart[c].withUnsafeMutableBufferPointer { rb in
                for l in 0..<shape.layerCount {
                    let n = shape.layer(l).parameterCount, base = shape.blockOffset(l, queries: queries) + q * n
                    if rose {
                        (xb.baseAddress! + base).update(from: rb.baseAddress! + base, count: n)
                        (mb.baseAddress! + base).update(repeating: 0, count: n)
                    } else {
                        (rb.baseAddress! + base).update(from: xb.baseAddress! + base, count: n)
                    }
                }
            } } }
        }
    }
}
