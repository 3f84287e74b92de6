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
    /// Checks the magic, the version (1–3) and header length, the dtype, C order, a shape of
    /// non-negative integers whose element count and byte size do not overflow, and that the
    /// data is exactly that many bytes. Throws an `AstraError` naming `path` otherwise.
    public static func decode(_ b: [UInt8], path: String) throws -> Content {
        let raw = try decodeAny(b, path: path)
        guard let dtype = DType(rawValue: raw.descr) else { throw invalid(path, "unsupported dtype \(raw.descr)") }
        guard let size = MemoryBudget.product(raw.shape + [dtype.size]), raw.bytes.count == size else {
            throw invalid(path, "expected \(MemoryBudget.product(raw.shape + [dtype.size]).map(String.init) ?? "too many") data bytes for shape \(raw.shape), found \(raw.bytes.count): truncated")
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
        guard (1...3).contains(major) else { throw bad("unknown format version \(major)") }
        guard major == 1 || b.count >= 12 else { throw bad("truncated header") }
        let (hlen, start): (Int, Int) = major == 1 ? (Int(b[8]) | Int(b[9]) << 8, 10)
            : (Int(b[8]) | Int(b[9]) << 8 | Int(b[10]) << 16 | Int(b[11]) << 24, 12)
        guard b.count - start >= hlen else { throw bad("truncated header: \(hlen) header bytes announced, \(b.count - start) present") }
        let header = String(decoding: b[start..<(start + hlen)], as: UTF8.self)
        guard let d = header.range(of: "'descr': '") else { throw bad("no dtype") }
        let descr = String(header[d.upperBound...].prefix { $0 != "'" })
        guard !header.contains("'fortran_order': True") else { throw bad("Fortran order") }
        guard let s = header.range(of: "'shape': (") else { throw bad("no shape") }
        let shapeText = header[s.upperBound...].prefix { $0 != ")" }
        var shape: [Int] = []
        for part in shapeText.split(separator: ",") {
            let t = part.trimmingCharacters(in: .whitespaces)
            if t.isEmpty { continue }
            guard let n = Int(t), n >= 0 else { throw bad("shape (\(shapeText)) is not a list of non-negative integers") }
            shape.append(n)
        }
        guard let count = MemoryBudget.product(shape) else { throw bad("shape \(shape) has more elements than any file can hold: corrupt header") }
        let dataStart = start + hlen
        if let elementSize = TensorArchive.size(of: descr) {
            guard let size = MemoryBudget.product([count, elementSize]) else { throw bad("shape \(shape) has more bytes than any file can hold: corrupt header") }
            guard b.count - dataStart == size else {
                throw bad("expected \(size) data bytes for shape \(shape), found \(b.count - dataStart): \(b.count - dataStart < size ? "truncated" : "trailing bytes")")
            }
        }
        return RawContent(descr: descr, shape: shape, bytes: Array(b[dataStart...]))
    }

    public static func read(_ path: String, hint: String = "re-create it with the command that wrote it") throws -> Content {
        try decode(AtomicFile.read(path, hint: hint), path: path)
    }
}

import Foundation
