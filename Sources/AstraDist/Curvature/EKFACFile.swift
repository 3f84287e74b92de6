import Foundation

/// On-disk form of `EKFAC`: a directory with, per layer L, `layer-L-QA.npy` ((I+1)×(I+1)),
/// `layer-L-QS.npy` (O×O), `layer-L-lambdaA.npy` (I+1), `layer-L-lambdaS.npy` (O),
/// `layer-L-Lambda.npy` (O×(I+1)), all float64, and `factors.json` (shapes, N, Fisher mode,
/// provenance, and a content hash of every array). `factors.json` is written last, so a
/// directory without it is an interrupted fit.
extension EKFAC {
    public static let manifestName = "factors.json"
    static let formatName = "astra-dist-ekfac-1"
    static let refit = "re-run `astra-dist fit` to recreate the factors"

    struct Manifest: Codable {
        struct LayerEntry: Codable { var inputs: Int; var outputs: Int; var files: [String: String] }
        var format: String
        var widths: [Int]
        /// The network's operations (absent in files of MLPs with ReLU written before them).
        var operations: [NetworkOperation]?
        var exampleCount: Int
        var fisher: String
        var layers: [LayerEntry]
        var meta: [String: String]
    }

    static func fileNames(layer l: Int) -> [String] {
        ["QA", "QS", "lambdaA", "lambdaS", "Lambda"].map { "layer-\(l)-\($0).npy" }
    }

    /// Writes every array atomically, then `factors.json` (with `meta` merged over `self.meta`).
    public func write(to directory: String, meta extra: [String: String] = [:]) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var entries: [Manifest.LayerEntry] = []
        for (l, f) in layers.enumerated() {
            let k = f.inputs + 1, o = f.outputs
            let arrays: [([Double], [Int])] = [(f.qA.data, [k, k]), (f.qS.data, [o, o]), (f.lambdaA, [k]), (f.lambdaS, [o]), (f.lambda.data, [o, k])]
            var files: [String: String] = [:]
            for (name, (values, shape)) in zip(Self.fileNames(layer: l), arrays) {
                let bytes = NPY.encode(values, shape: shape, dtype: .float64)
                try AtomicFile.write(bytes, to: directory + "/" + name)
                files[name] = ContentHash.of(bytes)
            }
            entries.append(.init(inputs: f.inputs, outputs: f.outputs, files: files))
        }
        let manifest = Manifest(format: Self.formatName, widths: shape.widths, operations: shape.operations, exampleCount: exampleCount, fisher: mode.rawValue,
                                layers: entries, meta: meta.merging(extra) { _, new in new })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(Array(try encoder.encode(manifest)) + [10], to: directory + "/" + Self.manifestName)
    }

    /// Reads and validates factors written by `write`: manifest, content hashes, dtypes,
    /// shapes, finiteness, non-negative eigenvalues and orthonormal eigenvectors. If `shape`
    /// is given, the factors must belong to a network of that shape. Throws an `AstraError`
    /// naming the offending file and saying to re-run `astra-dist fit`.
    public static func read(from directory: String, expecting shape: NetworkShape? = nil) throws -> EKFAC {
        let manifestPath = directory + "/" + manifestName
        let (manifest, stored, mode) = try decodeManifest(AtomicFile.read(manifestPath, hint: refit), path: manifestPath)
        if let shape, shape != stored {
            throw AstraError("\(manifestPath): factors are for a network \(stored), the model is \(shape); \(refit)")
        }
        var layers: [LayerFactors] = []
        for (l, layer) in stored.layers.enumerated() {
            let entry = manifest.layers[l], k = layer.augmented, o = layer.outputs
            let expected = [[k, k], [o, o], [k], [o], [o, k]]
            var arrays: [[Double]] = []
            for (name, shape) in zip(fileNames(layer: l), expected) {
                let path = directory + "/" + name
                let bytes = try AtomicFile.read(path, hint: refit)
                guard let hash = entry.files[name], hash == ContentHash.of(bytes) else {
                    throw AstraError("\(path): content does not match \(manifestName) (corrupted, truncated or from another fit); \(refit)")
                }
                let content: NPY.Content
                do { content = try NPY.decode(bytes, path: path) } catch {
                    throw AstraError("\(path): unreadable array (\(error)); \(refit)")
                }
                guard content.dtype == .float64, content.shape == shape else {
                    throw AstraError("\(path): expected float64 \(shape), found \(content.dtype.rawValue) \(content.shape); \(refit)")
                }
                let values = content.doubles
                guard values.allSatisfy({ $0.isFinite }) else { throw AstraError("\(path): holds NaN or Inf; \(refit)") }
                arrays.append(values)
            }
            for (index, name) in [(2, "lambdaA"), (3, "lambdaS"), (4, "Lambda")] where arrays[index].contains(where: { $0 < 0 }) {
                throw AstraError("\(directory)/layer-\(l)-\(name).npy: negative eigenvalue; \(refit)")
            }
            let qA = Matrix(rows: k, cols: k, data: arrays[0]), qS = Matrix(rows: o, cols: o, data: arrays[1])
            for (q, name) in [(qA, "QA"), (qS, "QS")] where !isOrthonormal(q) {
                throw AstraError("\(directory)/layer-\(l)-\(name).npy: eigenvectors are not orthonormal; \(refit)")
            }
            layers.append(LayerFactors(qA: qA, lambdaA: arrays[2], qS: qS, lambdaS: arrays[3], lambda: Matrix(rows: o, cols: k, data: arrays[4])))
        }
        return EKFAC(shape: stored, layers: layers, exampleCount: manifest.exampleCount, mode: mode, meta: manifest.meta)
    }

    /// Parses the bytes of a `factors.json` at `path` (which names it in errors): its keys,
    /// format name, Fisher mode, N > 0, and widths that make a valid network with one layer
    /// entry per layer. Throws an `AstraError` naming the file and the key.
    static func decodeManifest(_ json: [UInt8], path manifestPath: String) throws -> (Manifest, NetworkShape, FisherMode) {
        let manifest = try JSONFile.decode(Manifest.self, from: json, path: manifestPath, hint: refit)
        guard manifest.format == formatName else { throw AstraError("\(manifestPath): unknown format '\(manifest.format)'; \(refit)") }
        let stored = try NetworkShape.validated(operations: manifest.operations, widths: manifest.widths, source: manifestPath, fix: refit, problem: "inconsistent operations: ")
        guard manifest.layers.count == manifest.widths.count - 1, let mode = FisherMode(rawValue: manifest.fisher), manifest.exampleCount > 0 else {
            throw AstraError("\(manifestPath): inconsistent manifest (widths, layers, Fisher mode or N); \(refit)")
        }
        for (l, (entry, layer)) in zip(manifest.layers, stored.layers).enumerated() where entry.inputs != layer.inputs || entry.outputs != layer.outputs {
            throw AstraError("\(manifestPath): layer \(l) has \(entry.inputs) inputs and \(entry.outputs) outputs but widths say \(layer.inputs) and \(layer.outputs); \(refit)")
        }
        return (manifest, stored, mode)
    }

    /// Parses a `factors.json` given as bytes; for checks of the format (the fuzz driver).
    public static func validateManifest(_ json: [UInt8], path: String) throws -> NetworkShape {
        try decodeManifest(json, path: path).1
    }

    /// `‖QᵀQ − I‖_max < 1e−8`.
    static func isOrthonormal(_ q: Matrix<Double>) -> Bool {
        let g = q.multiplied(by: q, transposeSelf: true)
        for i in 0..<g.rows { for j in 0..<g.cols where abs(g[i, j] - (i == j ? 1 : 0)) > 1e-8 { return false } }
        return true
    }
}
