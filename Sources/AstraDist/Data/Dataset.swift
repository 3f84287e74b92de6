/// Examples in memory, with the stable global index of each.
///
/// `inputs` is N×D float32. `targets` is N×C values for regression, or N class indices
/// (stored as Float) for classification; `targetWidth` says which.
public struct Dataset: Sendable {
    public enum Task: String, Codable, Sendable { case regression, classification }

    public var task: Task
    public var featureCount: Int
    /// C: regression outputs or number of classes.
    public var outputCount: Int
    public var inputs: [Float]
    public var targets: [Float]
    /// Stable index of each row in the source file (training rows and queries keep theirs).
    public var globalIndex: [Int]
    /// Image data (CIFAR-10): its pixel layout, for training augmentation; nil otherwise.
    public var image: ImageLayout? = nil

    public init(task: Task, featureCount: Int, outputCount: Int, inputs: [Float], targets: [Float], globalIndex: [Int]? = nil) {
        let n = inputs.count / max(featureCount, 1)
        precondition(inputs.count == n * featureCount, "Dataset: inputs not a multiple of D")
        precondition(targets.count == n * (task == .regression ? outputCount : 1), "Dataset: \(targets.count) targets for \(n) rows")
        self.task = task; self.featureCount = featureCount; self.outputCount = outputCount
        self.inputs = inputs; self.targets = targets
        self.globalIndex = globalIndex ?? Array(0..<n)
    }

    public var count: Int { globalIndex.count }
    public var targetWidth: Int { task == .regression ? outputCount : 1 }
    public var loss: LossKind { task == .regression ? .mse : .crossEntropy }

    /// The rows at `indices` (positions in this dataset), in that order.
    public func subset(_ indices: [Int]) -> Dataset {
        let d = featureCount, t = targetWidth
        var x = [Float](); x.reserveCapacity(indices.count * d)
        var y = [Float](); y.reserveCapacity(indices.count * t)
        for i in indices {
            x.append(contentsOf: inputs[(i * d)..<((i + 1) * d)])
            y.append(contentsOf: targets[(i * t)..<((i + 1) * t)])
        }
        var out = Dataset(task: task, featureCount: d, outputCount: outputCount, inputs: x, targets: y, globalIndex: indices.map { globalIndex[$0] })
        out.image = image
        return out
    }

    /// Copies rows `indices[range]` into `x` (B×D) and `y` (B×targetWidth), converting to T.
    @inline(__always)
    public func gather<T: BLASScalar>(_ indices: ArraySlice<Int>, x: UnsafeMutablePointer<T>, y: UnsafeMutablePointer<T>) {
        let d = featureCount, t = targetWidth
        inputs.withUnsafeBufferPointer { src in targets.withUnsafeBufferPointer { tgt in
            for (b, i) in indices.enumerated() {
                if T.self == Float.self {
                    UnsafeMutableRawPointer(x + b * d).assumingMemoryBound(to: Float.self).update(from: src.baseAddress! + i * d, count: d)
                } else {
                    for k in 0..<d { x[b * d + k] = T(Double(src[i * d + k])) }
                }
                for k in 0..<t { y[b * t + k] = T(Double(tgt[i * t + k])) }
            }
        } }
    }
}
