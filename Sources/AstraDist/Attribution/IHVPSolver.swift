import Foundation

/// Query iHVPs `x = (G + λI)⁻¹ v` (spec §5) by any `SolverMethod`, with the objective
/// `h(x) = ½ xᵀ(G_E + λI)x − xᵀv` on a fixed evaluation batch E reported for every method.
public enum IHVPSolver {
    /// Solves for a block `v` of Q vectors (Q·P values, `NetworkShape` block layout), G the
    /// GGN of `network` on `train`.
    ///
    /// Data-parallel and collective: every rank passes the same `v`, `network` and `train`
    /// (all N examples); each computes its slice of every mini-batch (batch positions drawn
    /// from `CounterRandom(seed, .ggnBatch, iteration)`, never keyed by rank) and one
    /// allreduce sums each GGN product, so the result is the same (to floating-point
    /// reordering) on any rank count and identical on every rank.
    ///
    /// - `ekfac`: required by kfac, ekfac and astra.
    /// - `progress`: called every `traceEvery` iterations with iteration, objective and time.
    /// - `onIterate`: called with `(k, x_k)` after every iteration (and k = 0) of sni/astra,
    ///   for studies of the iterate (spec §11); x is valid only during the call.
    /// - Throws: `AstraError` on bad options, missing factors, a too-large network for exact,
    ///   or divergence (NaN/Inf or an objective above 1e6·(|h_0| + 1)).
    /// Complexity per iteration: about 6·B·Q·P multiply-adds for G̃_B plus, for astra, the two
    /// EK-FAC rotations Q·Σ_l 2·O(I+1)(O+I+1); each evaluation adds 6·|E|·Q·P.
    public static func solve<T: BLASScalar>(_ v: [T], queries: Int, network: Network<T>, train: Dataset, ekfac: EKFAC?, options: SolverOptions,
                                            comm: Communicator, progress: ((String) -> Void)? = nil,
                                            onIterate: ((Int, UnsafeBufferPointer<T>) -> Void)? = nil) throws -> (x: [T], report: SolverReport) {
        try options.validate()
        let start = Date(), shape = network.shape, method = options.method
        precondition(v.count == queries * shape.parameterCount, "IHVPSolver: \(v.count) values for \(queries) vectors of \(shape.parameterCount)")
        guard train.featureCount == shape.inputCount, train.outputCount == shape.outputCount, train.loss == network.loss else {
            throw AstraError("solver: the training data (D \(train.featureCount), C \(train.outputCount), \(train.loss.rawValue)) does not fit the network \(shape) (\(network.loss.rawValue)); use the model trained on this workspace's data")
        }
        guard train.count > 0 else { throw AstraError("solver: the training set is empty; check the data files") }
        if [.kfac, .ekfac, .astra].contains(method) {
            guard let ekfac else { throw AstraError("solver \(method.rawValue) needs EK-FAC factors: run `fit` first") }
            guard ekfac.shape == shape else {
                throw AstraError("solver \(method.rawValue): the EK-FAC factors are for network \(ekfac.shape), not \(shape); refit with `fit`")
            }
        }
        func report(_ iterations: Int, _ lr: Double?, _ lambdaMax: Double?, _ trace: [TracePoint], _ final: Double, _ e: Int) -> SolverReport {
            SolverReport(method: method, iterations: iterations, learningRate: lr, lambdaMax: lambdaMax, trace: trace, finalObjective: final,
                         evaluationExamples: e, seconds: Date().timeIntervalSince(start))
        }
        guard queries > 0 else { return ([], report(0, nil, nil, [], 0, 0)) }

        let op = DistributedGGN(network: network, data: train, queries: queries, batchSize: options.batchSize,
                                largestSet: min(options.evaluationBatch, train.count), comm: comm)
        let objective = SolverObjective(operator: op, v: v, queries: queries, damping: options.damping, evaluationBatch: options.evaluationBatch,
                                        label: method.rawValue, hint: "raise --damping", progress: progress, start: start)
        var x: [T]
        switch method {
        case .identity:
            x = v
        case .kfac, .ekfac:
            x = v
            v.withUnsafeBufferPointer { vp in x.withUnsafeMutableBufferPointer {
                ekfac!.apply(vp.baseAddress!, queries: queries, damping: options.damping, kfac: method == .kfac, into: $0.baseAddress!)
            } }
        case .exact:
            x = try ExactSolver.solve(v, queries: queries, network: network, train: train, damping: options.damping,
                                      limit: options.exactLimit, comm: comm, progress: progress)
        case .sni, .astra:
            let out = try NeumannSolvers.solve(v, queries: queries, network: network, train: train, ekfac: ekfac, options: options,
                                               op: op, objective: objective, comm: comm, onIterate: onIterate)
            let final = objective.trace.last?.objective ?? .nan
            progress?(String(format: "%@: done, %d iterations, objective %.6e, %.2f s", method.rawValue, options.iterations, final,
                             Date().timeIntervalSince(start)))
            return (out.x, report(options.iterations, out.learningRate, out.lambdaMax, objective.trace, final, objective.evaluationSet.count))
        }
        // Direct methods with traceEvery 0 skip the objective: on the evaluation batch it costs
        // a GGN product (6·|E|·Q·P), more than the solve itself.
        if options.traceEvery == 0 { return (x, report(0, nil, nil, [], 0, 0)) }
        let final = try x.withUnsafeBufferPointer { try objective.record(iteration: 0, of: 0, x: $0.baseAddress!) }
        return (x, report(0, nil, nil, objective.trace, final, objective.evaluationSet.count))
    }
}
