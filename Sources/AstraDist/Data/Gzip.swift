import CZlib
import Foundation

/// Whole-file reading with transparent gzip decompression (zlib `inflate`).
public enum Gzip {
    /// The bytes of `path`, decompressed if the file starts with the gzip magic `1f 8b`,
    /// otherwise returned as they are (like zlib's `gzread`, so `foo` and `foo.gz` both work).
    /// Concatenated gzip members are decoded one after another; bytes after the last member
    /// that do not start another member are ignored, as `gzread` does.
    ///
    /// Throws a one-line `AstraError` naming `path`, the problem and `hint` when the file is
    /// missing or unreadable, the stream ends early (truncated download) or is corrupt
    /// (bad block, CRC or length check).
    /// Complexity: O(compressed + decompressed bytes); peak memory is both buffers.
    public static func readAll(_ path: String, hint: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            let why = FileManager.default.fileExists(atPath: path) ? "file unreadable (permissions, or a directory)" : "file missing"
            throw AstraError("cannot read \(path): \(why); \(hint)")
        }
        return try decompress([UInt8](data), path: path, hint: hint)
    }

    /// `raw` (the contents of `path`, which names it in errors) decompressed if it starts with
    /// the gzip magic, else unchanged. Same checks as `readAll`, and a stream that would
    /// decompress to more than physical memory is refused with the size it reached.
    public static func decompress(_ raw: [UInt8], path: String, hint: String) throws -> [UInt8] {
        guard raw.count >= 2, raw[0] == 0x1f, raw[1] == 0x8b else { return raw }
        return try inflateAll(raw, path: path, hint: hint)
    }

    /// Decodes every gzip member of `input`. The ISIZE trailer (decompressed size mod 2³²) of
    /// the last member sizes the first output buffer, so a single-member file < 4 GiB
    /// decompresses without regrowing.
    static func inflateAll(_ input: [UInt8], path: String, hint: String) throws -> [UInt8] {
        var out = [UInt8]()
        var capacity = 1 << 16
        if input.count >= 18 {
            let n = input.count
            let isize = Int(input[n - 4]) | Int(input[n - 3]) << 8 | Int(input[n - 2]) << 16 | Int(input[n - 1]) << 24
            // A corrupt trailer could claim 4 GiB; cap the guess by zlib's maximum ratio.
            capacity = max(capacity, min(isize + 1, input.count * 1032 + 1))
        }
        out = [UInt8](repeating: 0, count: capacity)
        var produced = 0
        var consumed = 0
        var member = 0
        try input.withUnsafeBufferPointer { inp in
            while consumed < input.count {
                // Only another gzip header continues the file; anything else is trailing junk.
                if member > 0 && !(input.count - consumed >= 2 && inp[consumed] == 0x1f && inp[consumed + 1] == 0x8b) { break }
                var strm = z_stream()
                // 15 + 16: maximum window, gzip wrapper only (header and CRC-32/ISIZE checked).
                guard inflateInit2_(&strm, 15 + 16, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
                    throw AstraError("cannot decompress \(path): zlib initialisation failed (out of memory?); \(hint)")
                }
                defer { inflateEnd(&strm) }
                var status = Z_OK
                while status != Z_STREAM_END {
                    if produced == out.count {
                        try MemoryBudget.check(count: MemoryBudget.product([out.count, 2]), elementSize: 1,
                                               what: "\(path): decompressing (past \(MemoryBudget.format(produced)) so far)",
                                               fix: "the file is corrupt or not meant to be loaded whole: \(hint)")
                        out.append(contentsOf: repeatElement(0, count: out.count))
                    }
                    let inChunk = min(input.count - consumed, Int(UInt32.max >> 1))
                    let outChunk = min(out.count - produced, Int(UInt32.max >> 1))
                    strm.next_in = UnsafeMutablePointer(mutating: inp.baseAddress! + consumed)
                    strm.avail_in = uInt(inChunk)
                    status = out.withUnsafeMutableBufferPointer { o -> Int32 in
                        strm.next_out = o.baseAddress! + produced
                        strm.avail_out = uInt(outChunk)
                        return inflate(&strm, Z_NO_FLUSH)
                    }
                    consumed += inChunk - Int(strm.avail_in)
                    produced += outChunk - Int(strm.avail_out)
                    switch status {
                    case Z_OK, Z_STREAM_END:
                        continue
                    case Z_BUF_ERROR:
                        // No progress possible: either the output is full (grow and retry)
                        // or the input ran out before the end-of-stream marker.
                        if consumed == input.count {
                            throw AstraError("cannot read \(path): truncated gzip stream (file ends after \(input.count) bytes, \(produced) bytes decompressed, before the end of the data); re-download it: \(hint)")
                        }
                        if produced < out.count {
                            throw AstraError("cannot read \(path): zlib made no progress at compressed byte \(consumed); \(hint)")
                        }
                    case Z_DATA_ERROR:
                        let msg = strm.msg.map { String(cString: $0) } ?? "invalid data"
                        throw AstraError("cannot read \(path): corrupt gzip stream (\(msg) at compressed byte \(consumed)); re-download it: \(hint)")
                    case Z_MEM_ERROR:
                        throw AstraError("cannot read \(path): out of memory while decompressing \(produced) bytes; \(hint)")
                    default:
                        throw AstraError("cannot read \(path): zlib error \(status) while decompressing; \(hint)")
                    }
                }
                member += 1
            }
        }
        out.removeSubrange(produced...)
        return out
    }
}
