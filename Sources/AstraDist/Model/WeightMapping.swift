/// How PyTorch's tensors become a network's parameters (docs/formats.md, "Imported
/// weights"): layer l's `PREFIX.weight` (O×I for `nn.Linear`) and `PREFIX.bias` (O) are the
/// O×(I+1) block `W̄_l = [W | b]`, bias last. A layer kind other than linear takes a weight
/// whose first dimension is O and whose remaining dimensions flatten, in C order, to K − 1
/// (the layer's row width without the bias): PyTorch's `Conv2d` O×C×kh×kw, when the layer's
/// rows are (c, kh, kw) patches.
extension ArchitectureFile {
    /// One tensor the architecture needs.
    public struct ExpectedTensor: Sendable {
        public var name: String
        /// nil: any shape [O, …] whose trailing dimensions multiply to `rowWidth`.
        public var shape: [Int]?
        public var outputs: Int
        public var rowWidth: Int
        public var what: String
        func accepts(_ s: [Int]) -> Bool {
            if let shape { return s == shape }
            return s.first == outputs && s.dropFirst().reduce(1, *) == rowWidth
        }
        var describedShape: String { shape.map { "\($0)" } ?? "[\(outputs), …] with \(rowWidth) values per output" }
    }

    /// Per layer: its weight and bias tensors.
    public func expectedTensors() -> [(weight: ExpectedTensor, bias: ExpectedTensor)] {
        let shape = self.shape
        return shape.layers.indices.map { l in
            let layer = shape.layer(l), k = shape.layerIndex.firstIndex(of: l)!, prefix = prefixes[k]!
            let o = layer.outputFactorDimension, row = layer.inputFactorDimension - 1
            var weightShape: [Int]? = nil, what = "operation \(k)"
            if case .linear(let linear) = layer { weightShape = [linear.outputs, linear.inputs]; what += " (linear \(linear.inputs)→\(linear.outputs); PyTorch's Linear weight is outputs × inputs)" }
            return (ExpectedTensor(name: prefix + ".weight", shape: weightShape, outputs: o, rowWidth: row, what: what),
                    ExpectedTensor(name: prefix + ".bias", shape: [o], outputs: o, rowWidth: 1, what: what))
        }
    }

    /// The network's P parameters from `tensors`, or every mismatch as one line each (missing,
    /// wrong dtype, wrong shape, non-finite values, tensors the architecture does not use).
    public func parameters(from tensors: [String: NamedTensor]) -> Result<[Float], MismatchList> {
        var problems: [String] = [], used = Set<String>()
        var p: [Float] = []
        p.reserveCapacity(shape.parameterCount)
        for (weight, bias) in expectedTensors() {
            var values: [[Double]] = []
            for e in [weight, bias] {
                used.insert(e.name)
                guard let t = tensors[e.name] else { problems.append("tensor '\(e.name)' is missing: \(e.what) needs \(e.describedShape)"); continue }
                guard let v = t.values else { problems.append("tensor '\(e.name)' has dtype \(t.dtype): expected a float type (F32, F64, F16, BF16)"); continue }
                guard e.accepts(t.shape) else { problems.append("tensor '\(e.name)' has shape \(t.shape): \(e.what) expects \(e.describedShape)"); continue }
                guard v.allSatisfy(\.isFinite) else { problems.append("tensor '\(e.name)' holds NaN or Inf values"); continue }
                values.append(v)
            }
            guard values.count == 2 else { continue }
            let o = weight.outputs, row = weight.rowWidth
            for r in 0..<o {
                for c in 0..<row { p.append(Float(values[0][r * row + c])) }
                p.append(Float(values[1][r]))
            }
        }
        for name in tensors.keys.sorted() where !used.contains(name) {
            problems.append("tensor '\(name)' \(tensors[name]!.shape) is not used by the architecture (expected: \(used.sorted().joined(separator: ", ")))")
        }
        return problems.isEmpty ? .success(p) : .failure(MismatchList(lines: problems))
    }

    public struct MismatchList: Error, Sendable { public var lines: [String] }
}
