/// How PyTorch's tensors become a network's parameters (docs/formats.md, "Imported
/// weights"): layer l's `PREFIX.weight` (O×I for `nn.Linear`) and `PREFIX.bias` (O) are the
/// O×(I+1) block `W̄_l = [W | b]`, bias last. A layer kind other than linear takes a weight
/// whose first dimension is O and whose remaining dimensions flatten, in C order, to K − 1
/// (the layer's row width without the bias): PyTorch's `Conv2d` O×C×kh×kw, when the layer's
/// rows are (c, kh, kw) patches. A layer without a bias (`"bias": false`) has no `PREFIX.bias`.
/// A `batchnorm2d` operation's state is PyTorch's `state_dict` of `nn.BatchNorm2d`:
/// `PREFIX.weight`, `PREFIX.bias`, `PREFIX.running_mean`, `PREFIX.running_var` (C each;
/// `PREFIX.num_batches_tracked` is accepted and unused).
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

    /// Per layer: its weight and bias tensors (bias nil for a bias-free layer).
    public func expectedTensors() -> [(weight: ExpectedTensor, bias: ExpectedTensor?)] {
        let shape = self.shape
        return shape.layers.indices.map { l in
            let layer = shape.layer(l), k = shape.layerIndex.firstIndex(of: l)!, prefix = prefixes[k]!
            let o = layer.outputFactorDimension, row = layer.inputFactorDimension - (layer.hasBias ? 1 : 0)
            var weightShape: [Int]? = nil, what = "operation \(k)"
            if case .linear(let linear) = layer { weightShape = [linear.outputs, linear.inputs]; what += " (linear \(linear.inputs)→\(linear.outputs); PyTorch's Linear weight is outputs × inputs)" }
            return (ExpectedTensor(name: prefix + ".weight", shape: weightShape, outputs: o, rowWidth: row, what: what),
                    layer.hasBias ? ExpectedTensor(name: prefix + ".bias", shape: [o], outputs: o, rowWidth: 1, what: what) : nil)
        }
    }

    /// Per batch norm: its four tensors (weight, bias, running_mean, running_var), C each.
    public func expectedNormalizationTensors() -> [[ExpectedTensor]] {
        let shape = self.shape
        return shape.normalizations.indices.map { j in
            let k = shape.normalizationIndex.firstIndex(of: j)!, prefix = prefixes[k]!, c = shape.normalizations[j].channels
            return ["weight", "bias", "running_mean", "running_var"].map {
                ExpectedTensor(name: prefix + "." + $0, shape: [c], outputs: c, rowWidth: 1, what: "operation \(k) (batchnorm2d, \(c) channels)")
            }
        }
    }

    /// The network's P parameters and batch-norm state from `tensors`, or every mismatch as
    /// one line each (missing, wrong dtype, wrong shape, non-finite values, tensors the
    /// architecture does not use).
    public func parameters(from tensors: [String: NamedTensor]) -> Result<ImportedWeights, MismatchList> {
        var problems: [String] = [], used = Set<String>()
        /// The values of every tensor of `expected`, or nil after listing its problems.
        func read(_ expected: [ExpectedTensor]) -> [[Double]]? {
            var values: [[Double]] = []
            for e in expected {
                used.insert(e.name)
                guard let t = tensors[e.name] else { problems.append("tensor '\(e.name)' is missing: \(e.what) needs \(e.describedShape)"); continue }
                guard let v = t.values else { problems.append("tensor '\(e.name)' has dtype \(t.dtype): expected a float type (F32, F64, F16, BF16)"); continue }
                guard e.accepts(t.shape) else { problems.append("tensor '\(e.name)' has shape \(t.shape): \(e.what) expects \(e.describedShape)"); continue }
                guard v.allSatisfy(\.isFinite) else { problems.append("tensor '\(e.name)' holds NaN or Inf values"); continue }
                values.append(v)
            }
            return values.count == expected.count ? values : nil
        }
        var p: [Float] = []
        p.reserveCapacity(shape.parameterCount)
        for (weight, bias) in expectedTensors() {
            guard let values = read([weight] + (bias.map { [$0] } ?? [])) else { continue }
            let o = weight.outputs, row = weight.rowWidth
            for r in 0..<o {
                for c in 0..<row { p.append(Float(values[0][r * row + c])) }
                if bias != nil { p.append(Float(values[1][r])) }
            }
        }
        var net = Network<Float>(shape: shape, loss: loss, parameters: p.count == shape.parameterCount ? p : [Float](repeating: 0, count: shape.parameterCount))
        for (j, expected) in expectedNormalizationTensors().enumerated() {
            used.insert(String(expected[0].name.dropLast(".weight".count)) + ".num_batches_tracked")
            guard let values = read(expected) else { continue }
            if let bad = values[3].firstIndex(where: { $0 < 0 }) { problems.append("tensor '\(expected[3].name)' holds a negative variance (\(values[3][bad]) at \(bad))"); continue }
            net.setBatchNormRows(j, values.flatMap { $0.map(Float.init) })
        }
        for name in tensors.keys.sorted() where !used.contains(name) && !name.hasSuffix(".num_batches_tracked") {
            problems.append("tensor '\(name)' \(tensors[name]!.shape) is not used by the architecture (expected: \(used.filter { !$0.hasSuffix(".num_batches_tracked") }.sorted().joined(separator: ", ")))")
        }
        return problems.isEmpty ? .success(ImportedWeights(parameters: p, normalization: net.normalization)) : .failure(MismatchList(lines: problems))
    }

    /// What a weights file gives a network: its parameters and batch-norm state (`Network`).
    public struct ImportedWeights: Sendable {
        public var parameters: [Float]
        public var normalization: [Float]
    }

    public struct MismatchList: Error, Sendable { public var lines: [String] }
}
