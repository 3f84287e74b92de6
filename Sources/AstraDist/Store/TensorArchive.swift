import Foundation

/// One named array of a weights file, converted to Double (exact for F16, BF16 and F32).
public struct NamedTensor: Sendable, Equatable {
    /// The file's dtype name (`F32`, `F64`, `F16`, `BF16` for safetensors; `<f4`, `<f8`, `<f2` for npz).
    public var dtype: String
    public var shape: [Int]
    /// Row-major (C order) values; nil for a dtype that is not a float type read here (the
    /// tensor is still listed, so the check can name its dtype).
    public var values: [Double]?
}

/// Weights files written by PyTorch tooling: safetensors (`.safetensors`; kronfluence,
/// bergson, Hugging Face) or NumPy `.npz`. Parsed here without dependencies
/// (docs/formats.md, "Imported weights").
public enum TensorArchive {
    /// Every tensor of `path`, by name. The format is chosen by content: a zip (`PK\3\4`) is an
    /// npz, anything else is read as safetensors.
    /// Throws one line naming `path`, what is wrong and how to re-save the file.
    public static func read(_ path: String) throws -> [String: NamedTensor] {
        guard let data = FileManager.default.contents(atPath: path) else {
            let why = FileManager.default.fileExists(atPath: path) ? "unreadable (permissions, or a directory)" : "missing"
            throw AstraError("--weights \(path) is \(why); pass a .safetensors or .npz file")
        }
        let bytes = [UInt8](data)
        if bytes.starts(with: [0x50, 0x4b, 0x03, 0x04]) { return try NPZ.decode(bytes, path: path) }
        return try Safetensors.decode(bytes, path: path)
    }

    /// Converts little-endian raw values of `dtype` to Double, or nil for a dtype not read.
    /// Precondition: `raw.count` is a multiple of the dtype's size.
    static func convert(_ raw: ArraySlice<UInt8>, dtype: String) -> [Double]? {
        let bytes = Array(raw)
        func words<W: FixedWidthInteger>(_: W.Type) -> [W] {
            let size = MemoryLayout<W>.size
            return (0..<(bytes.count / size)).map { i in
                var w: W = 0
                for k in 0..<size { w |= W(bytes[i * size + k]) << (8 * k) }
                return w
            }
        }
        switch dtype {
        case "F64", "<f8": return words(UInt64.self).map { Double(bitPattern: $0) }
        case "F32", "<f4": return words(UInt32.self).map { Double(Float(bitPattern: $0)) }
        case "F16", "<f2": return words(UInt16.self).map { Double(Float16(bitPattern: $0)) }
        // bfloat16 is the top half of a float32.
        case "BF16": return words(UInt16.self).map { Double(Float(bitPattern: UInt32($0) << 16)) }
        default: return nil
        }
    }

    static func size(of dtype: String) -> Int? {
        switch dtype {
        case "F64", "<f8", "I64", "<i8", "U64", "<u8": 8
        case "F32", "<f4", "I32", "<i4", "U32", "<u4": 4
        case "F16", "<f2", "BF16", "I16", "<i2", "U16", "<u2": 2
        case "I8", "U8", "BOOL", "|i1", "|u1", "|b1": 1
        default: nil
        }
    }
}
