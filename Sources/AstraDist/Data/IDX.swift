/// LeCun's IDX format (MNIST, Fashion-MNIST), plain or gzip-compressed.
///
/// Header: two zero bytes, a type byte (0x08 = unsigned byte), the number of dimensions,
/// then one big-endian UInt32 per dimension. Images are magic 2051 (`00 00 08 03`,
/// N×rows×cols), labels magic 2049 (`00 00 08 01`, N).
public enum IDX {
    public static let imageMagic: UInt32 = 2051
    public static let labelMagic: UInt32 = 2049

    /// Images as N×rows×cols row-major uint8 pixels.
    /// Throws (naming `path` and `hint`) on a bad magic number, or a payload that is not
    /// exactly count·rows·cols bytes (truncated or with trailing data).
    /// Complexity: O(file size).
    public static func loadImages(_ path: String, hint: String) throws -> (count: Int, rows: Int, cols: Int, pixels: [UInt8]) {
        try parseImages(Gzip.readAll(path, hint: hint), path: path, hint: hint)
    }

    /// The images in `bytes` (the decompressed contents of `path`, which names it in errors).
    /// Also refuses images with zero rows or columns.
    public static func parseImages(_ bytes: [UInt8], path: String, hint: String) throws -> (count: Int, rows: Int, cols: Int, pixels: [UInt8]) {
        var bytes = bytes
        let dims = try header(bytes, magic: imageMagic, dimensions: 3, what: "images", path: path, hint: hint)
        let (count, rows, cols) = (dims[0], dims[1], dims[2])
        let (perImage, o1) = rows.multipliedReportingOverflow(by: cols)
        let (expected, o2) = count.multipliedReportingOverflow(by: perImage)
        guard !o1, !o2 else { throw AstraError("\(path): IDX header claims \(count)×\(rows)×\(cols) images, too large; the file is corrupt; \(hint)") }
        guard rows > 0, cols > 0 else { throw AstraError("\(path): IDX header claims \(rows)×\(cols)-pixel images (no pixels); the file is corrupt; \(hint)") }
        try checkPayload(found: bytes.count - 16, expected: expected, shape: "\(count)×\(rows)×\(cols) pixels", path: path, hint: hint)
        bytes.removeFirst(16)
        return (count, rows, cols, bytes)
    }

    /// Labels as N uint8 values. Same checks as `loadImages`.
    public static func loadLabels(_ path: String, hint: String) throws -> [UInt8] {
        try parseLabels(Gzip.readAll(path, hint: hint), path: path, hint: hint)
    }

    /// The labels in `bytes` (the decompressed contents of `path`).
    public static func parseLabels(_ bytes: [UInt8], path: String, hint: String) throws -> [UInt8] {
        var bytes = bytes
        let dims = try header(bytes, magic: labelMagic, dimensions: 1, what: "labels", path: path, hint: hint)
        try checkPayload(found: bytes.count - 8, expected: dims[0], shape: "\(dims[0]) labels", path: path, hint: hint)
        bytes.removeFirst(8)
        return bytes
    }

    /// Checks the magic and returns the `dimensions` big-endian sizes.
    static func header(_ b: [UInt8], magic: UInt32, dimensions: Int, what: String, path: String, hint: String) throws -> [Int] {
        // Magic first: a wrong file type is the likelier mistake than a short header.
        let be = { (o: Int) -> UInt32 in UInt32(b[o]) << 24 | UInt32(b[o + 1]) << 16 | UInt32(b[o + 2]) << 8 | UInt32(b[o + 3]) }
        if b.count >= 4 {
            let found = be(0)
            guard found == magic else {
                let other = found == imageMagic ? " (that is an images file)" : found == labelMagic ? " (that is a labels file)" : ""
                throw AstraError("\(path): bad magic number \(found) (0x\(String(found, radix: 16))), expected \(magic) for IDX \(what)\(other); check the file name or re-download: \(hint)")
            }
        }
        let size = 4 + 4 * dimensions
        guard b.count >= size else {
            throw AstraError("\(path): not an IDX \(what) file: \(b.count) bytes, shorter than the \(size)-byte header; \(hint)")
        }
        return (0..<dimensions).map { Int(be(4 + 4 * $0)) }
    }

    static func checkPayload(found: Int, expected: Int, shape: String, path: String, hint: String) throws {
        if found < expected {
            throw AstraError("\(path): truncated IDX data: header promises \(shape) = \(expected) bytes, found \(found); re-download it: \(hint)")
        }
        if found > expected {
            throw AstraError("\(path): IDX data has \(found - expected) trailing bytes: header promises \(shape) = \(expected) bytes, found \(found); the file is corrupt: \(hint)")
        }
    }
}
