import Foundation

/// Query iHVPs `x = (G + λI)⁻¹ v` (spec §5) by any `SolverMethod`, with the objective
/// `h(x) = ½ xᵀ(G_E + λI)x − xᵀv` on a fixed evaluation batch E reported for every method.
public enum IHVPSolver {
    /// Solves for the block `v` of Q right-hand sides, G the GGN of `network` on `train`.
    ///
    /// Data-parallel and collective: every rank passes the same `v`, `network` and `train`
    /// (all N examples); each computes its slice of every mini-batch (batch positions drawn
    /// from `CounterRandom(seed, .ggnBatch, iteration)`, never keyed by rank) and one
    /// allreduce sums each GGN product, so the result is the same (to floating-point
    /// reordering) on any rank count and identical on every rank.
    ///
    /// kfac, ekfac and astra work and answer in the EK-FAC eigenbasis (see `SolvedBlock`);
    /// identity, sni and exact in parameter coordinates.
    /// - `ekfac`: required by kfac, ekfac and astra.
    /// - `progress`: called every `traceEvery` iterations with iteration, objective and time.
    /// - `onIterate`: called with `(k, x_k)` after every iteration (and k = 0) of sni/astra,
    ///   in the coordinates of the result, for studies of the iterate (spec §11); x is valid
    ///   only during the call; an error it throws ends the solve.
    /// - `checkpoint`: sni and astra save their state there every `options.stateEvery`
    ///   iterations and resume from a matching one (`SolverCheckpoint`); other methods ignore it.
    /// - Throws: `AstraError` on bad options, missing factors, a too-large network for exact,
    ///   or divergence (NaN/Inf or an objective above 1e6·(|h_0| + 1)).
    /// Complexity per iteration: about 6·B·Q·P multiply-adds for G̃_B (astra: plus
    /// 2·B·Q·Σ_l O_l² for the rotated tangents); each evaluation adds as much for |E|.
    public static func solve<T: BLASScalar>(_ v: QueryGradients<T>, network: Network<T>, train: Dataset, ekfac: EKFAC?, options: SolverOptions,
                                            comm: Communicator, progress: ((String) -> Void)? = nil, checkpoint: SolverCheckpoint? = nil,
                                            onIterate: ((Int, UnsafeBufferPointer<T>) throws -> Void)? = nil) throws -> (x: SolvedBlock<T>, report: SolverReport) {
        try options.validate()
        guard options.method.solvesIHVP else { throw AstraError("solver: \(options.method.rawValue) is not an iHVP method; score it with `score --method \(options.method.rawValue)`") }
        let start = Date(), shape = network.shape, method = options.method, queries = v.queries
        precondition(v.shape == shape, "IHVPSolver: vectors for \(v.shape), network \(shape)")
        guard train.featureCount == shape.inputCount, train.outputCount == shape.outputCount, train.loss == network.loss else {
            throw AstraError("solver: the training data (D \(train.featureCount), C \(train.outputCount), \(train.loss.rawValue)) does not fit the network \(shape) (\(network.loss.rawValue)); use the model trained on this workspace's data")
        }
        guard train.count > 0 else { throw AstraError("solver: the training set is empty; check the data files") }
        if method.usesEigenbasis {
            guard let ekfac else { throw AstraError("solver \(method.rawValue) needs EK-FAC factors: run `fit` first") }
            guard ekfac.shape == shape else {
                throw AstraError("solver \(method.rawValue): the EK-FAC factors are for network \(ekfac.shape), not \(shape); refit with `fit`")
            }
        }
        let basis = method.usesEigenbasis ? ekfac : nil
        func report(_ iterations: Int, _ lr: Double?, _ lambdaMax: Double?, _ objective: SolverObjective<T>?, backoffs: Int? = nil) -> SolverReport {
            SolverReport(method: method, iterations: iterations, learningRate: lr, backoffs: backoffs, lambdaMax: lambdaMax, trace: objective?.trace ?? [],
                         finalObjective: objective?.trace.last?.objective ?? 0, evaluationExamples: objective?.evaluationSet.count ?? 0,
                         seconds: Date().timeIntervalSince(start), evaluationSeconds: objective?.seconds ?? 0, queries: queries)
        }
        guard queries > 0 else { return (SolvedBlock(values: [], queries: 0, eigenbasis: basis), report(0, nil, nil, nil)) }

        let rhs = basis.map { v.eigenBlock($0) } ?? v.parameterBlock()
        /// identity: x = v; kfac, ekfac: x = (P + λI)⁻¹ v, a diagonal scaling in the eigenbasis.
        func solveDirectly(_ x: inout [T]) {
            guard method == .kfac || method == .ekfac else { return }
            x.withUnsafeMutableBufferPointer {
                ekfac!.scaleInEigenbasis($0.baseAddress!, queries: queries, damping: options.damping, kfac: method == .kfac, power: -1)
            }
        }
        // Direct methods without a trace: no objective, and x takes over rhs's storage.
        if !method.isIterative && method != .exact && options.traceEvery == 0 {
            var x = consume rhs
            solveDirectly(&x)
            return (SolvedBlock(values: x, queries: queries, eigenbasis: basis), report(0, nil, nil, nil))
        }
        let op = DistributedGGN(network: network, data: train, queries: queries, batchSize: options.batchSize,
                                largestSet: min(options.evaluationBatch, train.count), eigenbasis: basis, comm: comm)
        let objective = SolverObjective(operator: op, v: rhs, queries: queries, damping: options.damping, evaluationBatch: options.evaluationBatch,
                                        checkBatch: options.checkBatch,
                                        label: method.rawValue, hint: "raise --damping", progress: progress, start: start)
        var x: [T]
        switch method {
        case .identity, .kfac, .ekfac:
            x = rhs
            solveDirectly(&x)
        case .exact:
            x = try ExactSolver.solve(rhs, queries: queries, network: network, train: train, damping: options.damping,
                                      limit: options.exactLimit, comm: comm, progress: progress)
        case .tracin, .trak:
            preconditionFailure("refused above")
        case .source, .astraSource:
            throw AstraError("solver: \(method.rawValue) is scored segment by segment (SourceScoring), not by one solve")
        case .sni, .astra:
            let out = try NeumannSolvers.solve(rhs, queries: queries, network: network, train: train, ekfac: basis, options: options,
                                               op: op, objective: objective, comm: comm, checkpoint: checkpoint, onIterate: onIterate)
            let final = objective.trace.last?.objective ?? .nan
            progress?(String(format: "%@: done, %d iterations, objective %.6e, %d step back-offs, %.2f s", method.rawValue, options.iterations,
                             final, out.backoffs, Date().timeIntervalSince(start)))
            return (SolvedBlock(values: out.x, queries: queries, eigenbasis: basis),
                    report(options.iterations, out.learningRate, out.lambdaMax, objective, backoffs: out.backoffs))
        }
        let solved = SolvedBlock(values: x, queries: queries, eigenbasis: basis)
        // (Direct methods evaluate the objective only on request: on E it costs a GGN product
        // of 6·|E|·Q·P, more than the solve itself.)
        if options.traceEvery == 0 { return (solved, report(0, nil, nil, nil)) }
        try x.withUnsafeBufferPointer { _ = try objective.record(iteration: 0, of: 0, x: $0.baseAddress!) }
        return (solved, report(0, nil, nil, objective))
    }

    /// Explicit vectors in, parameter coordinates out (Q·P values each way).
    public static func solve<T: BLASScalar>(_ v: [T], queries: Int, network: Network<T>, train: Dataset, ekfac: EKFAC?, options: SolverOptions,
                                            comm: Communicator, progress: ((String) -> Void)? = nil, checkpoint: SolverCheckpoint? = nil,
                                            onIterate: ((Int, UnsafeBufferPointer<T>) throws -> Void)? = nil) throws -> (x: [T], report: SolverReport) {
        let (x, report) = try solve(QueryGradients(block: v, queries: queries, shape: network.shape), network: network, train: train, ekfac: ekfac,
                                    options: options, comm: comm, progress: progress, checkpoint: checkpoint, onIterate: onIterate)
        return (x.parameterBlock(), report)
    }
}
