import CZlib
import Foundation

/// Greyscale PNG images (8-bit, one IDAT chunk compressed by zlib), enough to show a data
/// set's images in the report without an image library.
public enum PNG {
    /// A `width` × `height` PNG of `pixels` (row-major, 0 = black … 255 = white).
    /// Precondition: `pixels.count == width · height`, both positive.
    public static func greyscale(_ pixels: [UInt8], width: Int, height: Int) -> [UInt8] {
        precondition(width > 0 && height > 0 && pixels.count == width * height, "PNG: \(pixels.count) pixels for \(width)×\(height)")
        // Each scanline starts with its filter type, 0 (none).
        var raw = [UInt8](); raw.reserveCapacity((width + 1) * height)
        for y in 0..<height { raw.append(0); raw += pixels[(y * width)..<((y + 1) * width)] }
        var header = [UInt8]()
        append32(UInt32(width), to: &header); append32(UInt32(height), to: &header)
        header += [8, 0, 0, 0, 0]  // bit depth 8, colour type 0 (grey), deflate, adaptive filters, no interlace
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", header) + chunk("IDAT", deflate(raw)) + chunk("IEND", [])
    }

    /// `values` mapped linearly from `[lo, hi]` to 0…255 (clamped), for `greyscale`.
    public static func pixels(_ values: ArraySlice<Float>, lo: Float, hi: Float) -> [UInt8] {
        let span = max(hi - lo, 1e-12)
        return values.map { UInt8(max(0, min(255, (($0 - lo) / span * 255).rounded()))) }
    }

    /// The zlib stream of `bytes` (`compress2`, level 9).
    static func deflate(_ bytes: [UInt8]) -> [UInt8] {
        var size = compressBound(uLong(bytes.count))
        var out = [UInt8](repeating: 0, count: Int(size))
        let status = compress2(&out, &size, bytes, uLong(bytes.count), 9)
        precondition(status == Z_OK, "PNG: compress2 failed (\(status))")
        return Array(out.prefix(Int(size)))
    }

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        var out = [UInt8]()
        append32(UInt32(data.count), to: &out)
        let body = Array(type.utf8) + data
        out += body
        append32(UInt32(crc32(0, body, uInt(body.count))), to: &out)
        return out
    }

    static func append32(_ v: UInt32, to out: inout [UInt8]) { out += [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }
}
