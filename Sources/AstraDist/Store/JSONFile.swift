import Foundation

/// The JSON files of a workspace (config.json, model.json, metrics.json, factors.json,
/// scores' .json, lds/*.json), encoded and decoded in one place so that:
/// - a non-finite number (an undefined metric such as R² of a constant target, a NaN
///   objective) is written as JSON `null`, never an `EncodingError`; read back into an
///   optional it is nil;
/// - a decoding failure becomes one line naming the file and the key path that is wrong.
public enum JSONFile {
    /// What non-finite values are encoded as before the text is rewritten to `null`.
    static let nonFiniteMarker = "astra-dist:non-finite:7f3a91"

    /// Sorted-key, pretty-printed JSON of `value`, with `null` for NaN and ±Inf.
    public static func encode<T: Encodable>(_ value: T, pretty: Bool = true) throws -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted] : [.sortedKeys]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: nonFiniteMarker, negativeInfinity: nonFiniteMarker, nan: nonFiniteMarker)
        let text = String(decoding: try e.encode(value), as: UTF8.self)
        return Array(text.replacingOccurrences(of: "\"\(nonFiniteMarker)\"", with: "null").utf8)
    }

    /// Decodes `bytes` (the contents of `path`) as `T`. Throws one `AstraError` naming `path`,
    /// the key path and what is wrong there (missing, wrong type, null, not JSON), then `hint`.
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8], path: String, hint: String) throws -> T {
        try checkNesting(bytes, path: path, hint: hint)
        do { return try JSONDecoder().decode(type, from: Data(bytes)) }
        catch let e as DecodingError { throw AstraError("\(path): \(describe(e)); \(hint)") }
        catch let e as AstraError { throw AstraError("\(path): \(e.message); \(hint)") }
        catch { throw AstraError("\(path): not valid JSON (\(error)); \(hint)") }
    }

    /// Deepest nesting of arrays and objects accepted; astra-dist's own files use at most 4.
    public static let maximumDepth = 64

    /// Throws unless `bytes` nests arrays and objects at most `maximumDepth` deep. Checked
    /// before Foundation's decoder sees the text, because that decoder traps (an illegal
    /// instruction while locating its own "too deeply nested" error) on a file that ends
    /// 512 levels deep; found by the fuzz driver. Use before `JSONSerialization` as well.
    public static func checkNesting(_ bytes: [UInt8], path: String, hint: String) throws {
        var depth = 0, inString = false, escaped = false
        for c in bytes {
            if inString {
                if escaped { escaped = false } else if c == 0x5c { escaped = true } else if c == 0x22 { inString = false }
                continue
            }
            switch c {
            case 0x22: inString = true
            case 0x5b, 0x7b:
                depth += 1
                if depth > maximumDepth { throw AstraError("\(path): not valid JSON (nested more than \(maximumDepth) levels deep); \(hint)") }
            case 0x5d, 0x7d: depth -= 1
            default: break
            }
        }
    }

    /// "key 'recipe.batchSize': expected Int, found something else" and the like.
    static func describe(_ e: DecodingError) -> String {
        func keyPath(_ path: [CodingKey]) -> String {
            let text = path.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return text.hasPrefix(".") ? String(text.dropFirst()) : text
        }
        func at(_ c: DecodingError.Context) -> String { c.codingPath.isEmpty ? "the top level" : "key '\(keyPath(c.codingPath))'" }
        switch e {
        case .keyNotFound(let key, let c):
            return "missing key '\(keyPath(c.codingPath + [key]))'"
        case .typeMismatch(let type, let c):
            return "\(at(c)) has the wrong type (expected \(typeName(type)))"
        case .valueNotFound(let type, let c):
            return "\(at(c)) is null or missing (expected \(typeName(type)))"
        case .dataCorrupted(let c):
            if c.codingPath.isEmpty { return "not valid JSON (\(shortened(c.debugDescription)))" }
            return "\(at(c)) has an invalid value (\(shortened(c.debugDescription)))"
        @unknown default:
            return "cannot be decoded (\(e))"
        }
    }

    static func typeName(_ t: Any.Type) -> String {
        let s = String(describing: t)
        switch s {
        case "Int", "UInt64", "Int64", "UInt32", "Int32": return "an integer"
        case "Double", "Float": return "a number"
        case "String": return "a string"
        case "Bool": return "true or false"
        default: return s.hasPrefix("Array") ? "a list" : s.hasPrefix("Dictionary") ? "an object" : s
        }
    }

    /// The first line of a decoder message, at most 160 characters.
    static func shortened(_ s: String) -> String {
        let line = s.split(separator: "\n").first.map(String.init) ?? s
        return line.count > 160 ? String(line.prefix(157)) + "..." : line
    }
}
