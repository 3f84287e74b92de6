/// NumPy `.npy` files (format 1.0, little-endian, C order): the workspace's array format,
/// so a user opens any artifact with `numpy.load`.
public enum NPY {
    public enum DType: String, Sendable {
        case float32 = "<f4", float64 = "<f8", uint8 = "|u1", int64 = "<i8", int32 = "<i4"
        var size: Int { switch self { case .float32, .int32: 4; case .float64, .int64: 8; case .uint8: 1 } }
    }

    /// A loaded array: raw little-endian bytes plus header facts.
    public struct Content: Sendable {
        public var dtype: DType
        public var shape: [Int]
        public var bytes: [UInt8]
        public var count: Int { shape.reduce(1, *) }
        public func values<T: BitwiseCopyable>(_: T.Type) -> [T] {
            [T](unsafeUninitializedCapacity: count) { buf, n in
                _ = bytes.withUnsafeBytes { memcpy(buf.baseAddress!, $0.baseAddress! + 0, count * MemoryLayout<T>.stride) }
                n = count
            }
        }
        public var floats: [Float] {
            switch dtype {
            case .float32: return values(Float.self)
            case .float64: return values(Double.self).map { Float($0) }
            default: return values(UInt8.self).map { Float($0) }
            }
        }
        public var doubles: [Double] {
            switch dtype {
            case .float64: return values(Double.self)
            case .float32: return values(Float.self).map { Double($0) }
            default: return values(UInt8.self).map { Double($0) }
            }
        }
    }

    public static func encode<T: BitwiseCopyable>(_ values: [T], shape: [Int], dtype: DType) -> [UInt8] {
        precondition(shape.reduce(1, *) == values.count, "NPY: \(values.count) values for shape \(shape)")
        precondition(MemoryLayout<T>.stride == dtype.size)
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(dtype.rawValue)', 'fortran_order': False, 'shape': \(shapeText), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        let hl = UInt16(header.utf8.count)
        out += [UInt8(hl & 0xff), UInt8(hl >> 8)]
        out += Array(header.utf8)
        values.withUnsafeBytes { out += $0 }
        return out
    }

    public static func write(_ values: [Float], shape: [Int], to path: String) throws {
        try AtomicFile.write(encode(values, shape: shape, dtype: .float32), to: path)
    }
    public static func write(_ values: [Double], shape: [Int], to path: String) throws {
        try AtomicFile.write(encode(values, shape: shape, dtype: .float64), to: path)
    }
    public static func write(_ values: [UInt8], shape: [Int], to path: String) throws {
        try AtomicFile.write(encode(values, shape: shape, dtype: .uint8), to: path)
    }

    /// Header facts and data of an `.npy` of any little-endian dtype (`descr` as written, e.g.
    /// `<f2`): what an imported `.npz` member is read through.
    public struct RawContent: Sendable {
        public var descr: String
        public var shape: [Int]
        public var bytes: [UInt8]
    }

    /// Parses `.npy` bytes; `path` only names the file in errors.
    public static func decode(_ b: [UInt8], path: String) throws -> Content {
        let raw = try decodeAny(b, path: path)
        guard let dtype = DType(rawValue: raw.descr) else { throw invalid(path, "unsupported dtype \(raw.descr)") }
        guard raw.bytes.count == raw.shape.reduce(1, *) * dtype.size else {
            throw invalid(path, "expected \(raw.shape.reduce(1, *) * dtype.size) data bytes for shape \(raw.shape), found \(raw.bytes.count): truncated")
        }
        return Content(dtype: dtype, shape: raw.shape, bytes: raw.bytes)
    }

    static func invalid(_ path: String, _ why: String) -> AstraError {
        AstraError("\(path) is not a valid .npy file (\(why)); re-create it with the command that wrote it")
    }

    /// Parses `.npy` bytes of any dtype; the data length is checked when the dtype's size is known.
    public static func decodeAny(_ b: [UInt8], path: String) throws -> RawContent {
        func bad(_ why: String) -> AstraError { invalid(path, why) }
        guard b.count >= 10, b[0] == 0x93, Array(b[1..<6]) == Array("NUMPY".utf8) else { throw bad("bad magic") }
        let major = b[6]
        guard major == 1 || b.count >= 12 else { throw bad("truncated header") }
        let (hlen, start): (Int, Int) = major == 1 ? (Int(b[8]) | Int(b[9]) << 8, 10)
            : (Int(b[8]) | Int(b[9]) << 8 | Int(b[10]) << 16 | Int(b[11]) << 24, 12)
        guard b.count >= start + hlen else { throw bad("truncated header") }
        let header = String(decoding: b[start..<(start + hlen)], as: UTF8.self)
        guard let d = header.range(of: "'descr': '") else { throw bad("no dtype") }
        let descr = String(header[d.upperBound...].prefix { $0 != "'" })
        guard !header.contains("'fortran_order': True") else { throw bad("Fortran order") }
        guard let s = header.range(of: "'shape': (") else { throw bad("no shape") }
        let shapeText = header[s.upperBound...].prefix { $0 != ")" }
        let shape = shapeText.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let dataStart = start + hlen
        if let size = TensorArchive.size(of: descr), b.count != dataStart + shape.reduce(1, *) * size {
            throw bad("expected \(shape.reduce(1, *) * size) data bytes for shape \(shape), found \(b.count - dataStart): truncated")
        }
        return RawContent(descr: descr, shape: shape, bytes: Array(b[dataStart...]))
    }

    public static func read(_ path: String, hint: String = "re-create it with the command that wrote it") throws -> Content {
        try decode(AtomicFile.read(path, hint: hint), path: path)
    }
}

import Foundation
