import Foundation

/// The safetensors format: an 8-byte little-endian header length N, N bytes of JSON
/// `{NAME: {"dtype", "shape", "data_offsets": [BEGIN, END]}, "__metadata__"?: {…}}`, then the
/// data section; a tensor's bytes are `data[BEGIN..<END]`, little-endian, C order.
public enum Safetensors {
    /// Parses a whole file; `path` names it in errors. Throws one line per file for a
    /// structural problem (truncated header, bad JSON, offsets out of range or not matching
    /// the shape); a tensor of a non-float dtype is returned with nil values.
    public static func decode(_ b: [UInt8], path: String) throws -> [String: NamedTensor] {
        func bad(_ why: String) -> AstraError { AstraError("--weights \(path) is not a valid safetensors file: \(why); re-save it with safetensors.torch.save_file") }
        guard b.count >= 8 else { throw bad("\(b.count) bytes, shorter than the 8-byte header length (truncated)") }
        var n: UInt64 = 0
        for k in 0..<8 { n |= UInt64(b[k]) << (8 * k) }
        guard n <= UInt64(b.count - 8) else { throw bad("the header claims \(n) bytes but only \(b.count - 8) follow (truncated)") }
        let headerEnd = 8 + Int(n), dataCount = b.count - headerEnd
        guard let header = try? JSONSerialization.jsonObject(with: Data(b[8..<headerEnd])) as? [String: Any] else {
            throw bad("the \(n)-byte header is not a JSON object")
        }
        var out: [String: NamedTensor] = [:]
        for (name, value) in header where name != "__metadata__" {
            guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String, let shape = entry["shape"] as? [Int],
                  let offsets = entry["data_offsets"] as? [Int], offsets.count == 2 else {
                throw bad("tensor '\(name)' lacks dtype, shape or data_offsets [BEGIN, END]")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, begin <= end, end <= dataCount else {
                throw bad("tensor '\(name)' has data_offsets [\(begin), \(end)] outside the \(dataCount)-byte data section")
            }
            guard shape.allSatisfy({ $0 >= 0 }) else { throw bad("tensor '\(name)' has a negative dimension in shape \(shape)") }
            if let size = TensorArchive.size(of: dtype), end - begin != shape.reduce(1, *) * size {
                throw bad("tensor '\(name)' spans \(end - begin) bytes but \(dtype) \(shape) needs \(shape.reduce(1, *) * size)")
            }
            out[name] = NamedTensor(dtype: dtype, shape: shape, values: TensorArchive.convert(b[(headerEnd + begin)..<(headerEnd + end)], dtype: dtype))
        }
        return out
    }
}
