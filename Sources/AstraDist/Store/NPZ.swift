import CZlib
import Foundation

/// NumPy `.npz`: a zip archive of `.npy` members (`np.savez` stores, `np.savez_compressed`
/// deflates). Read through the central directory, so the sizes are right even when a
/// streaming writer left them out of the local headers (zip64 sizes included).
public enum NPZ {
    /// Every member `NAME.npy` as tensor `NAME`; `path` names the file in errors.
    public static func decode(_ b: [UInt8], path: String) throws -> [String: NamedTensor] {
        func bad(_ why: String) -> AstraError { AstraError("--weights \(path) is not a valid .npz archive: \(why); re-save it with numpy.savez") }
        func u16(_ o: Int) -> Int { Int(b[o]) | Int(b[o + 1]) << 8 }
        func u32(_ o: Int) -> Int { u16(o) | u16(o + 2) << 16 }
        func u64(_ o: Int) -> Int { u32(o) | u32(o + 4) << 32 }
        // End of central directory: 22 bytes plus a comment of up to 65535.
        guard b.count >= 22, let eocd = stride(from: b.count - 22, through: max(0, b.count - 22 - 65535), by: -1)
            .first(where: { u32($0) == 0x0605_4b50 }) else { throw bad("no end-of-central-directory record (truncated)") }
        let entries = u16(eocd + 10)
        var at = u32(eocd + 16)
        var out: [String: NamedTensor] = [:]
        for _ in 0..<entries {
            guard at + 46 <= b.count, u32(at) == 0x0201_4b50 else { throw bad("central directory entry at byte \(at) is damaged") }
            let method = u16(at + 10), nameLength = u16(at + 28), extraLength = u16(at + 30), commentLength = u16(at + 32)
            guard at + 46 + nameLength + extraLength <= b.count else { throw bad("central directory runs past the end (truncated)") }
            var compressed = u32(at + 20), size = u32(at + 24), local = u32(at + 42)
            let name = String(decoding: b[(at + 46)..<(at + 46 + nameLength)], as: UTF8.self)
            // Zip64 extra field (id 1): the 64-bit values of the fields saturated at 0xFFFFFFFF, in order.
            var e = at + 46 + nameLength
            while e + 4 <= at + 46 + nameLength + extraLength {
                let id = u16(e), length = u16(e + 2)
                if id == 1 {
                    var f = e + 4
                    if size == 0xFFFF_FFFF { size = u64(f); f += 8 }
                    if compressed == 0xFFFF_FFFF { compressed = u64(f); f += 8 }
                    if local == 0xFFFF_FFFF { local = u64(f) }
                }
                e += 4 + length
            }
            at += 46 + nameLength + extraLength + commentLength
            guard local + 30 <= b.count, u32(local) == 0x0403_4b50 else { throw bad("member '\(name)' has no local header at byte \(local)") }
            let start = local + 30 + u16(local + 26) + u16(local + 28)
            guard start + compressed <= b.count else { throw bad("member '\(name)' needs \(compressed) bytes past byte \(start), the file has \(b.count) (truncated)") }
            let raw = Array(b[start..<(start + compressed)])
            let member: [UInt8]
            switch method {
            case 0: member = raw
            case 8: member = try inflateRaw(raw, size: size) ?? { throw bad("member '\(name)' is not valid deflate data") }()
            default: throw bad("member '\(name)' uses zip method \(method) (only stored and deflate are read)")
            }
            guard name.hasSuffix(".npy") else { continue }
            out[String(name.dropLast(4))] = try tensor(NPY.decodeAny(member, path: "\(path):\(name)"))
        }
        return out
    }

    static func tensor(_ c: NPY.RawContent) -> NamedTensor {
        NamedTensor(dtype: c.descr, shape: c.shape, values: TensorArchive.size(of: c.descr).flatMap { _ in TensorArchive.convert(c.bytes[...], dtype: c.descr) })
    }

    /// Raw deflate (zip method 8) of a member of `size` bytes; nil if the stream is corrupt
    /// or does not decompress to exactly `size` bytes.
    static func inflateRaw(_ input: [UInt8], size: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: max(size, 1))
        var strm = z_stream()
        // −15: maximum window, no zlib or gzip wrapper.
        guard inflateInit2_(&strm, -15, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else { return nil }
        defer { inflateEnd(&strm) }
        var input = input
        let status = input.withUnsafeMutableBufferPointer { i in
            out.withUnsafeMutableBufferPointer { o -> Int32 in
                strm.next_in = i.baseAddress; strm.avail_in = uInt(i.count)
                strm.next_out = o.baseAddress; strm.avail_out = uInt(size)
                return inflate(&strm, Z_FINISH)
            }
        }
        guard status == Z_STREAM_END, Int(strm.total_out) == size else { return nil }
        return Array(out.prefix(size))
    }
}
