/// Shape letters used throughout (llm.c style), declared once:
///   N training examples, B batch, D input features, C outputs, L layers (parameterised
///   operations), I / O a layer's input / output width, K = I+1 its row width, P parameters,
///   Q query vectors.
///
/// A network is a sequence of operations (`NetworkOperation`); value k is the input of
/// operation k (value 0 the data, the last value the output). Parameters of layer l are
/// `W̄_l`, O×K row-major (bias in the last column), and all layers are concatenated into one
/// flat vector of P values. A *block* of Q vectors stores, per layer, Q consecutive O×K
/// matrices, i.e. one (Q·O)×K row-major matrix, and the layers one after another.
public struct NetworkShape: Codable, Equatable, Sendable, CustomStringConvertible {
    /// The operations, input to output.
    public let operations: [NetworkOperation]
    /// The parameterised operations in order (layer l).
    public let layers: [NetworkLayer]
    /// Per operation: its layer index, or nil for a parameter-free one.
    let layerIndex: [Int?]
    /// Per value (operations.count + 1): width per example.
    let valueWidths: [Int]
    /// Per layer and one past the last: start in a parameter vector.
    private let offsets: [Int]
    /// The batch-norm operations in order (normalisation j).
    public let normalizations: [BatchNorm2d]
    /// Per operation: its normalisation index, or nil.
    let normalizationIndex: [Int?]
    /// Per normalisation and one past the last: start of its [γ, β] (2C) in
    /// `Network.normalization`; its running [mean, var] start `affineCount` later.
    private let normalizationOffsets: [Int]
    /// Per value: the residual operations that add it (the skips to close on the way back).
    let residualsFrom: [[Int]]

    /// Why `operations` do not form a network (nil if they do): `init(operations:)`'s
    /// precondition, for callers reading them from a file.
    public static func problem(with operations: [NetworkOperation]) -> String? {
        guard case .layer(let first)? = operations.first else { return "the first operation must be a layer" }
        var widths = [first.inputWidth]
        for (k, op) in operations.enumerated() {
            let width = widths[k]
            switch op {
            case .layer(let layer):
                if layer.inputWidth != width { return "operation \(k) takes \(layer.inputWidth) inputs after a value of width \(width)" }
                widths.append(layer.outputWidth)
            case .spatial(let f):
                if let w = f.requiredInputWidth, w != width { return "operation \(k) takes \(w) inputs after a value of width \(width)" }
                widths.append(f.outputWidth(input: width))
            case .batchNorm(let n):
                if n.inputWidth != width { return "operation \(k) (batchnorm2d) takes \(n.inputWidth) inputs after a value of width \(width)" }
                widths.append(width)
            case .residual(let from):
                guard from >= 1, from < k else { return "operation \(k) (residual) adds the input of operation \(from), which must be an earlier operation other than the first (1 ≤ from < \(k))" }
                if widths[from] != width { return "operation \(k) (residual) adds the input of operation \(from) (width \(widths[from])) to a value of width \(width)" }
                widths.append(width)
            case .pointwise: widths.append(width)
            }
        }
        return nil
    }

    /// A network from its operations. Precondition: `problem(with:)` is nil (the first
    /// operation is a layer and each layer's or spatial operation's input width is the width
    /// of the value before it).
    public init(operations: [NetworkOperation]) {
        precondition(!operations.isEmpty, "NetworkShape: no operations")
        if let problem = Self.problem(with: operations) { preconditionFailure("NetworkShape: \(problem)") }
        guard case .layer(let first) = operations[0] else { preconditionFailure("NetworkShape: the first operation must be a layer") }
        var widths = [first.inputWidth], layers: [NetworkLayer] = [], index: [Int?] = [], norms: [BatchNorm2d] = [], normIndex: [Int?] = []
        var skips = [[Int]](repeating: [], count: operations.count + 1)
        for (k, op) in operations.enumerated() {
            index.append(nil); normIndex.append(nil)
            switch op {
            case .layer(let layer):
                index[k] = layers.count; layers.append(layer); widths.append(layer.outputWidth)
            case .pointwise:
                widths.append(widths.last!)
            case .spatial(let f):
                widths.append(f.outputWidth(input: widths.last!))
            case .batchNorm(let n):
                normIndex[k] = norms.count; norms.append(n); widths.append(widths.last!)
            case .residual(let from):
                skips[from].append(k); widths.append(widths.last!)
            }
        }
        self.operations = operations; self.layers = layers; layerIndex = index; valueWidths = widths
        normalizations = norms; normalizationIndex = normIndex; residualsFrom = skips
        var offsets = [0]
        for layer in layers { offsets.append(offsets.last! + layer.parameterCount) }
        self.offsets = offsets
        var normOffsets = [0]
        for n in norms { normOffsets.append(normOffsets.last! + 2 * n.channels) }
        normalizationOffsets = normOffsets
    }

    /// The MLP `widths[0] → … → widths[L]`: linear layers with `activation` between them and
    /// none after the last.
    public init(widths: [Int], activation: Pointwise = .relu) {
        precondition(widths.count >= 2 && widths.allSatisfy { $0 > 0 }, "NetworkShape: need at least input and output widths")
        var ops: [NetworkOperation] = []
        for l in 0..<(widths.count - 1) {
            if l > 0 { ops.append(.pointwise(activation)) }
            ops.append(.linear(inputs: widths[l], outputs: widths[l + 1]))
        }
        self.init(operations: ops)
    }

    public var layerCount: Int { layers.count }
    public var inputCount: Int { valueWidths[0] }
    public var outputCount: Int { valueWidths[valueWidths.count - 1] }
    /// `[D, O_0, …, O_{L−1}]`: the input width and each layer's output width (an MLP's widths).
    public var widths: [Int] { [inputCount] + layers.map(\.outputWidth) }
    /// The elementwise operation of an MLP (the first one), nil if there is none.
    public var activation: Pointwise? {
        for op in operations { if case .pointwise(let p) = op { return p } }
        return nil
    }
    public func layer(_ l: Int) -> NetworkLayer { layers[l] }
    /// Start of layer l in a single parameter vector (l = L gives P).
    public func offset(_ l: Int) -> Int { offsets[l] }
    public var parameterCount: Int { offsets[layers.count] }
    /// Start of normalisation j's [γ, β] in `Network.normalization` (j = count gives `affineCount`).
    public func normalizationOffset(_ j: Int) -> Int { normalizationOffsets[j] }
    /// Trained normalisation values (every [γ, β]), 2·ΣC; the running statistics follow them.
    public var affineCount: Int { normalizationOffsets[normalizations.count] }
    /// Length of `Network.normalization`: [γ, β] of every normalisation, then their running
    /// [mean, var], 4·ΣC (0 without batch norm).
    public var normalizationCount: Int { 2 * affineCount }
    public var description: String {
        widths.map(String.init).joined(separator: "-") + (activation.map { $0 == .relu ? "" : " (\($0.rawValue))" } ?? "")
    }

    public static func == (a: NetworkShape, b: NetworkShape) -> Bool { a.operations == b.operations }

    // Stored as `widths` (read by every version) and `operations`; files without
    // `operations` are MLPs with ReLU.
    private enum Keys: String, CodingKey { case widths, operations }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        if let ops = try c.decodeIfPresent([NetworkOperation].self, forKey: .operations) {
            if let problem = Self.problem(with: ops) {
                throw DecodingError.dataCorruptedError(forKey: .operations, in: c, debugDescription: problem)
            }
            self.init(operations: ops)
        } else {
            self.init(widths: try c.decode([Int].self, forKey: .widths))
        }
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(widths, forKey: .widths); try c.encode(operations, forKey: .operations)
    }
}

extension NetworkShape {
    /// Start of layer l in a block of Q vectors (layer-major: layer l holds Q·P_l values).
    public func blockOffset(_ l: Int, queries: Int) -> Int { queries * offset(l) }
}
