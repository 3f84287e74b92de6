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
}
