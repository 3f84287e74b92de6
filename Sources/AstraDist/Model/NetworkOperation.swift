/// One step of a network, in the order data flows: a parameterised layer or a parameter-free
/// elementwise map. Codable as `{"op": "linear", "inputs": I, "outputs": O}` or
/// `{"op": "relu"}` / `{"op": "gelu"}`.
public enum NetworkOperation: Equatable, Sendable, Codable {
    case layer(NetworkLayer)
    case pointwise(Pointwise)

    public static func linear(inputs: Int, outputs: Int) -> NetworkOperation { .layer(.linear(LinearLayer(inputs: inputs, outputs: outputs))) }

    private enum Keys: String, CodingKey { case op, inputs, outputs }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        let op = try c.decode(String.self, forKey: .op)
        if op == "linear" {
            let i = try c.decode(Int.self, forKey: .inputs), o = try c.decode(Int.self, forKey: .outputs)
            guard i > 0, o > 0 else { throw DecodingError.dataCorruptedError(forKey: .inputs, in: c, debugDescription: "linear widths must be positive") }
            self = .linear(inputs: i, outputs: o)
        } else if let p = Pointwise(rawValue: op) {
            self = .pointwise(p)
        } else {
            throw DecodingError.dataCorruptedError(forKey: .op, in: c, debugDescription: "unknown operation '\(op)' (linear, \(Pointwise.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        switch self {
        case .layer(.linear(let l)):
            try c.encode("linear", forKey: .op); try c.encode(l.inputs, forKey: .inputs); try c.encode(l.outputs, forKey: .outputs)
        case .pointwise(let p):
            try c.encode(p.rawValue, forKey: .op)
        }
    }
}
