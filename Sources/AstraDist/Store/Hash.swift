/// 64-bit FNV-1a: a content hash that catches stale or mismatched files (not security).
public struct ContentHash: Sendable {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325
    public init() {}
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var h = value
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        value = h
    }
    public mutating func update<T: BitwiseCopyable>(_ array: [T]) { array.withUnsafeBytes { update($0) } }
    public mutating func update(_ string: String) { update(Array(string.utf8)) }
    public var hex: String { String(value, radix: 16).leftPadded(to: 16) }
    public static func of<T: BitwiseCopyable>(_ array: [T]) -> String { var h = ContentHash(); h.update(array); return h.hex }
    public static func of(_ string: String) -> String { var h = ContentHash(); h.update(string); return h.hex }
}

extension String {
    func leftPadded(to n: Int, with c: Character = "0") -> String {
        count >= n ? self : String(repeating: c, count: n - count) + self
    }
}
