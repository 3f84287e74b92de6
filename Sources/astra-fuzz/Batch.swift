import Foundation

/// A batch of inputs in one file: u32 count, then per input a u32 length and its bytes
/// (little-endian). The parent writes it, a child reads it.
enum Batch {
    static func write(_ inputs: [[UInt8]], to path: String) throws {
        var b = [UInt8]()
        b.reserveCapacity(inputs.reduce(4) { $0 + 4 + $1.count })
        append(&b, UInt32(inputs.count))
        for i in inputs { append(&b, UInt32(i.count)); b += i }
        guard FileManager.default.createFile(atPath: path, contents: Data(b)) else { throw FuzzFailure("cannot write \(path)") }
    }

    static func read(_ path: String) throws -> [[UInt8]] {
        guard let data = FileManager.default.contents(atPath: path) else { throw FuzzFailure("cannot read \(path)") }
        let b = [UInt8](data)
        var o = 4, out: [[UInt8]] = []
        let n = Int(u32(b, 0))
        out.reserveCapacity(n)
        for _ in 0..<n {
            let len = Int(u32(b, o)); o += 4
            out.append(Array(b[o..<(o + len)])); o += len
        }
        return out
    }

    static func append(_ b: inout [UInt8], _ v: UInt32) {
        for s in stride(from: 0, to: 32, by: 8) { b.append(UInt8(truncatingIfNeeded: v >> UInt32(s))) }
    }
    static func u32(_ b: [UInt8], _ o: Int) -> UInt32 {
        UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24
    }
}

/// A failure of the driver itself (not of a parser).
struct FuzzFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
