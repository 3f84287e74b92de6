import Foundation

/// A list of dampings for the direct methods of the EK-FAC family (identity, kfac, ekfac):
/// `(P + λI)⁻¹ v` is a diagonal scaling in the eigenbasis, so the factors are loaded and the
/// query gradients rotated once, and only the division by `Λ + λ` changes per λ.
public enum DampingSweep {
    /// Whether `method` with `options` shares one rotation over a list of dampings: the direct
    /// methods without an objective trace (a trace costs a GGN product per λ anyway, and the
    /// iterative and exact solvers depend on λ throughout, so they run once per λ).
    public static func sharesRotation(_ method: SolverMethod, _ options: SolverOptions) -> Bool {
        [.identity, .kfac, .ekfac].contains(method) && options.traceEvery == 0
    }

    /// Calls `body(i, x_i, report_i)` with `x_i = (P + λ_i I)⁻¹ v` for each `dampings[i]`, in
    /// order, from one rotation of `v`; each `x_i` is bit-identical to
    /// `IHVPSolver.solve(v, …)` at `λ_i` alone (the same rotation, then the same scaling).
    /// Preconditions: `sharesRotation(method, …)`; `ekfac` given for kfac and ekfac.
    /// Complexity: one rotation (`QueryGradients.eigenBlock`) plus Q·P per λ; Q·P extra memory.
    public static func solve<T: BLASScalar>(_ v: QueryGradients<T>, ekfac: EKFAC?, method: SolverMethod, dampings: [Double],
                                            body: (Int, SolvedBlock<T>, SolverReport) throws -> Void) throws {
        precondition([.identity, .kfac, .ekfac].contains(method), "DampingSweep: \(method.rawValue) is not a direct eigenbasis method")
        guard !method.usesEigenbasis || ekfac != nil else { throw AstraError("solver \(method.rawValue) needs EK-FAC factors: run `fit` first") }
        let basis = method.usesEigenbasis ? ekfac : nil
        let start = Date()
        let rhs = basis.map { v.eigenBlock($0) } ?? v.parameterBlock()
        for (i, damping) in dampings.enumerated() {
            var x = rhs
            if let basis {
                x.withUnsafeMutableBufferPointer { basis.scaleInEigenbasis($0.baseAddress!, queries: v.queries, damping: damping, kfac: method == .kfac, power: -1) }
            }
            let report = SolverReport(method: method, iterations: 0, learningRate: nil, backoffs: nil, lambdaMax: nil, trace: [], finalObjective: 0,
                                      evaluationExamples: 0, seconds: Date().timeIntervalSince(start), evaluationSeconds: 0, queries: v.queries)
            try body(i, SolvedBlock(values: x, queries: v.queries, eigenbasis: basis), report)
        }
    }
}
