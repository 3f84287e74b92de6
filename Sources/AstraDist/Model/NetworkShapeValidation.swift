extension NetworkShape {
    /// A shape whose widths came from a file or an option: at least two widths, each
    /// positive, and a parameter count P that neither overflows nor exceeds physical memory
    /// as float32 weights. `source` names where the widths came from (a file, or
    /// "--hidden"), and starts the error line.
    /// Unlike `init(widths:)`, which traps on a shape no code should build, this throws.
    public static func validated(widths: [Int], source: String, fix: String) throws -> NetworkShape {
        guard widths.count >= 2 else {
            throw AstraError("\(source): network widths \(widths) need at least an input and an output width; \(fix)")
        }
        if let bad = widths.firstIndex(where: { $0 <= 0 }) {
            throw AstraError("\(source): network width \(widths[bad]) at position \(bad) of \(widths) is not positive; \(fix)")
        }
        // P = Σ (I+1)·O, each term and the sum overflow-checked.
        let total = MemoryBudget.sum((0..<(widths.count - 1)).map { l in
            widths[l] == Int.max ? nil : MemoryBudget.product([widths[l] + 1, widths[l + 1]])
        })
        let text = widths.map(String.init).joined(separator: "-")
        try MemoryBudget.check(count: total, elementSize: MemoryLayout<Float>.stride,
                               what: "\(source): the weights of a \(text) network", fix: fix)
        return NetworkShape(widths: widths)
    }

    /// The shape a file records: its operation list when it has one (checked with `problem(with:)`,
    /// its parameters within memory, its widths the recorded `widths`), else the MLP with ReLU of
    /// `widths` (`validated(widths:)`). Errors start with `source` and end with `fix`; `problem`
    /// prefixes an inconsistent operation list's reason.
    public static func validated(operations: [NetworkOperation]?, widths: [Int], source: String, fix: String, problem prefix: String = "") throws -> NetworkShape {
        guard let operations else { return try validated(widths: widths, source: source, fix: fix) }
        if let problem = problem(with: operations) { throw AstraError("\(source): \(prefix)\(problem); \(fix)") }
        let shape = NetworkShape(operations: operations)
        try MemoryBudget.check(count: shape.parameterCount, elementSize: MemoryLayout<Float>.stride, what: "\(source): the weights of its \(shape.layerCount)-layer network", fix: fix)
        guard shape.widths == widths else { throw AstraError("\(source): operations do not match widths; \(fix)") }
        return shape
    }
}
