/// Shape letters used throughout (llm.c style), declared once:
///   N training examples, B batch, D input features, C outputs, L layers,
///   I / O a layer's input / output width, P parameters, Q query vectors.
///
/// Parameters of layer l are `W̄_l`, O×(I+1) row-major (bias in the last column), and all
/// layers are concatenated into one flat vector of P values. A *block* of Q vectors stores,
/// per layer, Q consecutive O×(I+1) matrices, i.e. one (Q·O)×(I+1) row-major matrix, and
/// the layers one after another.
public struct NetworkShape: Codable, Equatable, Sendable, CustomStringConvertible {
    /// `[D, h1, …, C]`.
    public var widths: [Int]

    public init(widths: [Int]) {
        precondition(widths.count >= 2 && widths.allSatisfy { $0 > 0 }, "NetworkShape: need at least input and output widths")
        self.widths = widths
    }
    public var layerCount: Int { widths.count - 1 }
    public var inputCount: Int { widths[0] }
    public var outputCount: Int { widths[widths.count - 1] }
    public func layer(_ l: Int) -> LinearLayer { LinearLayer(inputs: widths[l], outputs: widths[l + 1]) }
    public var layers: [LinearLayer] { (0..<layerCount).map(layer) }
    /// Start of layer l in a single parameter vector (l = L gives P).
    public func offset(_ l: Int) -> Int { (0..<l).reduce(0) { $0 + layer($1).parameterCount } }
    public var parameterCount: Int { offset(layerCount) }
    public var description: String { widths.map(String.init).joined(separator: "-") }
}

extension NetworkShape {
    /// Start of layer l in a block of Q vectors (layer-major: layer l holds Q·P_l values).
    public func blockOffset(_ l: Int, queries: Int) -> Int { queries * offset(l) }
}
