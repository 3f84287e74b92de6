/// The parameterised operations a network can hold, as one concrete `Layer` so the walk and
/// every caller are specialised (an existential `any Layer` would run the element loops of
/// scoring and the factors unspecialised). Adding a layer kind: a case here and its line in
/// each forwarding switch below.
public enum NetworkLayer: Layer, Equatable {
    case linear(LinearLayer)
    case conv2d(Conv2dLayer)

    public var inputWidth: Int { switch self { case .linear(let l): l.inputWidth; case .conv2d(let l): l.inputWidth } }
    public var outputWidth: Int { switch self { case .linear(let l): l.outputWidth; case .conv2d(let l): l.outputWidth } }
    public var positions: Int { switch self { case .linear(let l): l.positions; case .conv2d(let l): l.positions } }
    public var parameterCount: Int { switch self { case .linear(let l): l.parameterCount; case .conv2d(let l): l.parameterCount } }
    @inline(__always) public func makeRows<T: BLASScalar>(input: UnsafePointer<T>, batch: Int, into rows: UnsafeMutablePointer<T>) {
        switch self { case .linear(let l): l.makeRows(input: input, batch: batch, into: rows); case .conv2d(let l): l.makeRows(input: input, batch: batch, into: rows) }
    }
    @inline(__always) public func forward<T: BLASScalar>(abar: UnsafePointer<T>, weights: UnsafePointer<T>, s: UnsafeMutablePointer<T>, batch: Int) {
        switch self { case .linear(let l): l.forward(abar: abar, weights: weights, s: s, batch: batch); case .conv2d(let l): l.forward(abar: abar, weights: weights, s: s, batch: batch) }
    }
    @inline(__always) public func backwardInput<T: BLASScalar>(ds: UnsafePointer<T>, weights: UnsafePointer<T>, da: UnsafeMutablePointer<T>, batch: Int) {
        switch self { case .linear(let l): l.backwardInput(ds: ds, weights: weights, da: da, batch: batch); case .conv2d(let l): l.backwardInput(ds: ds, weights: weights, da: da, batch: batch) }
    }
    @inline(__always) public func weightGradient<T: BLASScalar>(ds: UnsafePointer<T>, abar: UnsafePointer<T>, scale: T, beta: T, gradient: UnsafeMutablePointer<T>, batch: Int) {
        switch self { case .linear(let l): l.weightGradient(ds: ds, abar: abar, scale: scale, beta: beta, gradient: gradient, batch: batch); case .conv2d(let l): l.weightGradient(ds: ds, abar: abar, scale: scale, beta: beta, gradient: gradient, batch: batch) }
    }
    @inline(__always) public func tangent<T: BLASScalar>(abar: UnsafePointer<T>, da: UnsafePointer<T>?, directions: UnsafePointer<T>, weights: UnsafePointer<T>, ds: UnsafeMutablePointer<T>, batch: Int, queries: Int) {
        switch self { case .linear(let l): l.tangent(abar: abar, da: da, directions: directions, weights: weights, ds: ds, batch: batch, queries: queries); case .conv2d(let l): l.tangent(abar: abar, da: da, directions: directions, weights: weights, ds: ds, batch: batch, queries: queries) }
    }
    @inline(__always) public func blockGradient<T: BLASScalar>(ds: UnsafePointer<T>, abar: UnsafePointer<T>, beta: T, out: UnsafeMutablePointer<T>, batch: Int, queries: Int) {
        switch self { case .linear(let l): l.blockGradient(ds: ds, abar: abar, beta: beta, out: out, batch: batch, queries: queries); case .conv2d(let l): l.blockGradient(ds: ds, abar: abar, beta: beta, out: out, batch: batch, queries: queries) }
    }
    @inline(__always) public func rotateInputs<T: BLASScalar>(abar: UnsafePointer<T>, eigenvectorsA qA: UnsafePointer<T>, batch: Int, into out: UnsafeMutablePointer<T>) {
        switch self { case .linear(let l): l.rotateInputs(abar: abar, eigenvectorsA: qA, batch: batch, into: out); case .conv2d(let l): l.rotateInputs(abar: abar, eigenvectorsA: qA, batch: batch, into: out) }
    }
    @inline(__always) public func rotateOutputs<T: BLASScalar>(_ d: UnsafePointer<T>, eigenvectorsS qS: UnsafePointer<T>, rows: Int, inverse: Bool, into out: UnsafeMutablePointer<T>) {
        switch self { case .linear(let l): l.rotateOutputs(d, eigenvectorsS: qS, rows: rows, inverse: inverse, into: out); case .conv2d(let l): l.rotateOutputs(d, eigenvectorsS: qS, rows: rows, inverse: inverse, into: out) }
    }
    public var inputFactorDimension: Int { switch self { case .linear(let l): l.inputFactorDimension; case .conv2d(let l): l.inputFactorDimension } }
    public var outputFactorDimension: Int { switch self { case .linear(let l): l.outputFactorDimension; case .conv2d(let l): l.outputFactorDimension } }
    @inline(__always) public func curvatureScratchCount(batch: Int) -> Int {
        switch self { case .linear(let l): l.curvatureScratchCount(batch: batch); case .conv2d(let l): l.curvatureScratchCount(batch: batch) }
    }
    @inline(__always) public func accumulateInputFactor<T: BLASScalar>(abar: UnsafePointer<T>, batch: Int, scratch: UnsafeMutablePointer<T>, into sum: UnsafeMutablePointer<Double>) {
        switch self { case .linear(let l): l.accumulateInputFactor(abar: abar, batch: batch, scratch: scratch, into: sum); case .conv2d(let l): l.accumulateInputFactor(abar: abar, batch: batch, scratch: scratch, into: sum) }
    }
    @inline(__always) public func accumulateOutputFactor<T: BLASScalar>(ds: UnsafePointer<T>, batch: Int, scratch: UnsafeMutablePointer<T>, into sum: UnsafeMutablePointer<Double>) {
        switch self { case .linear(let l): l.accumulateOutputFactor(ds: ds, batch: batch, scratch: scratch, into: sum); case .conv2d(let l): l.accumulateOutputFactor(ds: ds, batch: batch, scratch: scratch, into: sum) }
    }
    @inline(__always) public func eigenCorrectionStateCount(batch: Int) -> Int {
        switch self { case .linear(let l): l.eigenCorrectionStateCount(batch: batch); case .conv2d(let l): l.eigenCorrectionStateCount(batch: batch) }
    }
    @inline(__always) public func beginEigenCorrection<T: BLASScalar>(rows: UnsafePointer<T>, eigenvectorsA qA: UnsafePointer<T>, batch: Int, state: UnsafeMutablePointer<T>) {
        switch self { case .linear(let l): l.beginEigenCorrection(rows: rows, eigenvectorsA: qA, batch: batch, state: state); case .conv2d(let l): l.beginEigenCorrection(rows: rows, eigenvectorsA: qA, batch: batch, state: state) }
    }
    @inline(__always) public func accumulateEigenCorrectionDraw<T: BLASScalar>(ds: UnsafePointer<T>, rows: UnsafePointer<T>, eigenvectorsS qS: UnsafePointer<T>, eigenvectorsA qA: UnsafePointer<T>, batch: Int, state: UnsafeMutablePointer<T>, scratch: UnsafeMutablePointer<T>, into sum: UnsafeMutablePointer<Double>) {
        switch self { case .linear(let l): l.accumulateEigenCorrectionDraw(ds: ds, rows: rows, eigenvectorsS: qS, eigenvectorsA: qA, batch: batch, state: state, scratch: scratch, into: sum); case .conv2d(let l): l.accumulateEigenCorrectionDraw(ds: ds, rows: rows, eigenvectorsS: qS, eigenvectorsA: qA, batch: batch, state: state, scratch: scratch, into: sum) }
    }
    @inline(__always) public func finishEigenCorrection<T: BLASScalar>(rows: UnsafePointer<T>, eigenvectorsA qA: UnsafePointer<T>, batch: Int, state: UnsafeMutablePointer<T>, scratch: UnsafeMutablePointer<T>, into sum: UnsafeMutablePointer<Double>) {
        switch self { case .linear(let l): l.finishEigenCorrection(rows: rows, eigenvectorsA: qA, batch: batch, state: state, scratch: scratch, into: sum); case .conv2d(let l): l.finishEigenCorrection(rows: rows, eigenvectorsA: qA, batch: batch, state: state, scratch: scratch, into: sum) }
    }
    @inline(__always) public func exampleGradient<T: BLASScalar>(ds: UnsafePointer<T>, rows: UnsafePointer<T>, example e: Int, into out: UnsafeMutablePointer<T>) {
        switch self { case .linear(let l): l.exampleGradient(ds: ds, rows: rows, example: e, into: out); case .conv2d(let l): l.exampleGradient(ds: ds, rows: rows, example: e, into: out) }
    }
    @inline(__always) public func scoreScratchCount(batch: Int) -> Int {
        switch self { case .linear(let l): l.scoreScratchCount(batch: batch); case .conv2d(let l): l.scoreScratchCount(batch: batch) }
    }
    @inline(__always) public func accumulateScores<T: BLASScalar>(block: UnsafePointer<T>, rows: UnsafePointer<T>, ds: UnsafePointer<T>, batch: Int, queries: Int, scratch: UnsafeMutablePointer<T>, into tau: UnsafeMutablePointer<T>) {
        switch self { case .linear(let l): l.accumulateScores(block: block, rows: rows, ds: ds, batch: batch, queries: queries, scratch: scratch, into: tau); case .conv2d(let l): l.accumulateScores(block: block, rows: rows, ds: ds, batch: batch, queries: queries, scratch: scratch, into: tau) }
    }
    @inline(__always) public func directionalBackwardInput<T: BLASScalar>(ds: UnsafePointer<T>, directions: UnsafePointer<T>, da: UnsafeMutablePointer<T>, batch: Int, queries: Int) {
        switch self { case .linear(let l): l.directionalBackwardInput(ds: ds, directions: directions, da: da, batch: batch, queries: queries); case .conv2d(let l): l.directionalBackwardInput(ds: ds, directions: directions, da: da, batch: batch, queries: queries) }
    }
    @inline(__always) public func directionalWeightGradient<T: BLASScalar>(ds: UnsafePointer<T>, tangentInput da: UnsafePointer<T>, out: UnsafeMutablePointer<T>, batch: Int, queries: Int) {
        switch self { case .linear(let l): l.directionalWeightGradient(ds: ds, tangentInput: da, out: out, batch: batch, queries: queries); case .conv2d(let l): l.directionalWeightGradient(ds: ds, tangentInput: da, out: out, batch: batch, queries: queries) }
    }
}

extension NetworkLayer {
    /// Rows O of the parameter matrix (O×K).
    public var outputs: Int { outputFactorDimension }
    /// Columns K of the parameter matrix, the bias last.
    public var augmented: Int { inputFactorDimension }
    /// Columns before the bias, K − 1.
    public var inputs: Int { inputFactorDimension - 1 }
    /// Whether the last column of the parameter matrix is a bias.
    public var hasBias: Bool { switch self { case .linear: true; case .conv2d(let l): l.bias } }
    /// Inputs each output sums over (PyTorch's fan-in for the default initialisation).
    public var fanIn: Int { switch self { case .linear(let l): l.inputs; case .conv2d(let l): l.patch } }
}
