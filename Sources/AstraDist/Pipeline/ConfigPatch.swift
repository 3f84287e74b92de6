import Foundation

/// `--config FILE`: a JSON object overriding keys of the configuration. Every key must be a
/// configuration key (nested objects such as `recipe` key by key); an unknown key anywhere is
/// refused, never ignored.
public enum ConfigPatch {
    /// Keys (dotted paths) that may be set although the base configuration leaves them out
    /// (optional, nil).
    static let optionalKeys: Set<String> = ["target", "checkpointEvery", "architecture", "operations", "recipe.oneCyclePeak", "recipe.augmentation"]

    /// `config` with `file`'s values, and the dotted keys the file set.
    public static func apply(file: String, to config: ExperimentConfig) throws -> (ExperimentConfig, [String]) {
        let bytes = try AtomicFile.read(file, hint: "pass an existing JSON file to --config")
        try JSONFile.checkNesting(bytes, path: file, hint: "see docs/commands.md for the keys")
        guard let patch = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw AstraError("\(file) is not a JSON object; see docs/commands.md for the keys")
        }
        return try apply(patch, to: config, file: file)
    }

    /// As `apply(file:to:)` for a parsed object; `file` names it in errors.
    public static func apply(_ patch: [String: Any], to config: ExperimentConfig, file: String) throws -> (ExperimentConfig, [String]) {
        let base = try JSONSerialization.jsonObject(with: Data(config.canonicalJSON().utf8)) as! [String: Any]
        var keys: [String] = []
        let merged = try merge(patch, into: base, prefix: "", file: file, keys: &keys)
        do {
            return (try JSONDecoder().decode(ExperimentConfig.self, from: JSONSerialization.data(withJSONObject: merged)), keys.sorted())
        } catch let e as DecodingError {
            throw AstraError("\(file): \(describe(e)); see docs/commands.md for the keys and their types")
        }
    }

    static func merge(_ patch: [String: Any], into base: [String: Any], prefix: String, file: String, keys: inout [String]) throws -> [String: Any] {
        var out = base
        for (k, v) in patch.sorted(by: { $0.key < $1.key }) {
            let path = prefix + k
            guard base[k] != nil || optionalKeys.contains(path) else {
                let optional = optionalKeys.filter { $0.hasPrefix(prefix) && !$0.dropFirst(prefix.count).contains(".") }
                let known = Set(base.keys.map { prefix + $0 } + optional).sorted()
                throw AstraError("\(file): unknown configuration key '\(path)'; keys: \(known.joined(separator: ", "))")
            }
            if let nested = base[k] as? [String: Any] {
                guard let sub = v as? [String: Any] else { throw AstraError("\(file): key '\(path)' must be an object with keys \(nested.keys.sorted().joined(separator: ", "))") }
                out[k] = try merge(sub, into: nested, prefix: path + ".", file: file, keys: &keys)
            } else {
                out[k] = v; keys.append(path)
            }
        }
        return out
    }

    /// The key and the problem of a decoding error, for one line.
    static func describe(_ e: DecodingError) -> String {
        func path(_ c: DecodingError.Context) -> String { c.codingPath.map(\.stringValue).joined(separator: ".") }
        switch e {
        case .typeMismatch(let t, let c): return "key '\(path(c))' must be \(t == Int.self || t == UInt64.self ? "an integer" : "\(t)")"
        case .valueNotFound(_, let c): return "key '\(path(c))' must not be null"
        case .keyNotFound(let k, let c): return "key '\((c.codingPath.map(\.stringValue) + [k.stringValue]).joined(separator: "."))' is missing"
        case .dataCorrupted(let c): return "key '\(path(c))': \(c.debugDescription)"
        @unknown default: return "\(e)"
        }
    }
}
