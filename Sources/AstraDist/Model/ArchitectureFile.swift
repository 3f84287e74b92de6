import Foundation

/// The architecture JSON of `astra-dist import` (docs/formats.md, "Imported weights"):
///
///     {"loss": "cross-entropy" | "mse",
///      "operations": [{"op": "linear", "inputs": 64, "outputs": 32, "name"?: "fc1"}, {"op": "relu"}, …]}
///
/// `operations` is the network's operation list exactly as `NetworkShape` stores it (so
/// every operation kind the network knows can be imported). A layer's tensors are
/// `PREFIX.weight` and `PREFIX.bias`; PREFIX is its `name`, else its position in the list
/// (an `nn.Sequential`'s numbering, where activations count: `0`, `2`, …).
public struct ArchitectureFile: Sendable {
    public var operations: [NetworkOperation]
    public var loss: LossKind
    /// Per operation: the tensor-name prefix of a layer, nil for a parameter-free operation.
    public var prefixes: [String?]

    public var shape: NetworkShape { NetworkShape(operations: operations) }

    private struct NamedOperation: Decodable {
        var operation: NetworkOperation
        var name: String?
        private enum Keys: String, CodingKey { case name }
        init(from decoder: Decoder) throws {
            operation = try NetworkOperation(from: decoder)
            name = try decoder.container(keyedBy: Keys.self).decodeIfPresent(String.self, forKey: .name)
        }
    }
    private struct Contents: Decodable { var loss: LossKind; var operations: [NamedOperation] }

    /// Reads and checks `path` (`flag` names it in errors): one line for the first problem.
    public static func read(_ path: String, flag: String = "--architecture") throws -> ArchitectureFile {
        let fix = "write {\"loss\": \"cross-entropy\" or \"mse\", \"operations\": [{\"op\": \"linear\", \"inputs\": I, \"outputs\": O}, {\"op\": \"relu\"}, …]} (docs/formats.md)"
        guard let data = FileManager.default.contents(atPath: path) else { throw AstraError("\(flag) \(path) is missing or unreadable; \(fix)") }
        let c: Contents
        do { c = try JSONDecoder().decode(Contents.self, from: data) } catch let e as DecodingError {
            throw AstraError("\(flag) \(path): \(describe(e)); \(fix)")
        }
        let ops = c.operations.map(\.operation)
        guard !ops.isEmpty else { throw AstraError("\(flag) \(path) lists no operations; \(fix)") }
        if let problem = NetworkShape.problem(with: ops) { throw AstraError("\(flag) \(path): \(problem); fix the widths") }
        let prefixes: [String?] = c.operations.enumerated().map { k, n in
            if case .layer = n.operation { return n.name ?? "\(k)" } else { return nil }
        }
        let named = prefixes.compactMap { $0 }
        if let twice = named.first(where: { p in named.filter { $0 == p }.count > 1 }) {
            throw AstraError("\(flag) \(path): two layers are named '\(twice)'; give each layer its own name")
        }
        return ArchitectureFile(operations: ops, loss: c.loss, prefixes: prefixes)
    }

    static func describe(_ e: DecodingError) -> String {
        func at(_ path: [CodingKey]) -> String {
            path.isEmpty ? "" : " at " + path.map { $0.intValue.map { "[\($0)]" } ?? "." + $0.stringValue }.joined().drop { $0 == "." }
        }
        switch e {
        case .dataCorrupted(let c): return c.debugDescription + at(c.codingPath)
        case .keyNotFound(let k, let c): return "key '\(k.stringValue)' is missing" + at(c.codingPath)
        case .typeMismatch(_, let c), .valueNotFound(_, let c): return c.debugDescription + at(c.codingPath)
        @unknown default: return "\(e)"
        }
    }
}
