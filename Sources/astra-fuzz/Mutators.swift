/// Format-blind mutations: bit flips, interesting bytes and integers, truncation, deleted,
/// repeated and spliced regions, inserted bytes. Each returns a new input.
enum Mutators {
    /// Integers that sit on boundaries of the sizes parsers compute with.
    static let interesting: [UInt64] = [0, 1, 2, 3, 7, 8, 16, 127, 128, 255, 256, 1023, 4096, 65535, 65536,
                                        0x7fff_ffff, 0x8000_0000, 0xffff_fffe, 0xffff_ffff, 1 << 32, 1 << 40,
                                        0x7fff_ffff_ffff_ffff, 0x8000_0000_0000_0000, 0xffff_ffff_ffff_ffff]

    static func bitFlips(_ b: [UInt8], _ r: inout FuzzRandom) -> [UInt8] {
        guard !b.isEmpty else { return [UInt8(truncatingIfNeeded: r.next())] }
        var b = b
        for _ in 0...r.below(8) { b[r.below(b.count)] ^= 1 << UInt8(r.below(8)) }
        return b
    }

    static func interestingByte(_ b: [UInt8], _ r: inout FuzzRandom) -> [UInt8] {
        guard !b.isEmpty else { return [0] }
        var b = b
        b[r.below(b.count)] = r.pick([0, 1, 0x7f, 0x80, 0xff, 0x22, 0x2c, 0x0a, 0x0d, 0x27, 0x28, 0x29, 0x2d, 0x30, 0x39])
        return b
    }

    /// Overwrites 1, 2, 4 or 8 bytes at a random offset with an interesting integer, little-
    /// or big-endian (file formats use both).
    static func interestingInteger(_ b: [UInt8], _ r: inout FuzzRandom) -> [UInt8] {
        let width = r.pick([1, 2, 4, 8])
        guard b.count >= width else { return bitFlips(b, &r) }
        return overwrite(b, at: r.below(b.count - width + 1), width: width, value: pickInteger(&r), bigEndian: r.chance(0.5))
    }

    static func pickInteger(_ r: inout FuzzRandom) -> UInt64 {
        let v = r.pick(interesting)
        return r.chance(0.2) ? v &+ UInt64(bitPattern: Int64(r.below(5) - 2)) : v
    }

    static func overwrite(_ b: [UInt8], at o: Int, width: Int, value: UInt64, bigEndian: Bool) -> [UInt8] {
        var b = b
        for k in 0..<width where o + k < b.count {
            let shift = UInt64(8 * (bigEndian ? width - 1 - k : k))
            b[o + k] = UInt8(truncatingIfNeeded: value >> shift)
        }
        return b
    }

    static func truncate(_ b: [UInt8], _ r: inout FuzzRandom) -> [UInt8] {
        guard !b.isEmpty else { return b }
        return Array(b[..<r.below(b.count)])
    }

    static func deleteRegion(_ b: [UInt8], _ r: inout FuzzRandom) -> [UInt8] {
        guard b.count > 1 else { return b }
        let start = r.below(b.count), len = 1 + r.below(min(64, b.count - start))
        var b = b
        b.removeSubrange(start..<(start + len))
        return b
    }

    /// Copies a region and inserts it 1–16 times at a random place (a repeated record, a
    /// doubled header).
    static func repeatRegion(_ b: [UInt8], _ r: inout FuzzRandom) -> [UInt8] {
        guard !b.isEmpty else { return b }
        let start = r.below(b.count), len = 1 + r.below(min(128, b.count - start))
        let piece = Array(b[start..<(start + len)])
        var b = b
        let at = r.below(b.count + 1)
        b.insert(contentsOf: Array([[UInt8]](repeating: piece, count: 1 + r.below(16)).joined()), at: at)
        return b
    }

    /// A prefix of `b` followed by a suffix of `other` (another valid file of the format).
    static func splice(_ b: [UInt8], with other: [UInt8], _ r: inout FuzzRandom) -> [UInt8] {
        Array(b[..<r.below(b.count + 1)]) + Array(other[r.below(other.count + 1)...])
    }

    static func insertRandom(_ b: [UInt8], _ r: inout FuzzRandom) -> [UInt8] {
        var b = b
        let bytes = (0..<(1 + r.below(16))).map { _ in UInt8(truncatingIfNeeded: r.next()) }
        b.insert(contentsOf: bytes, at: r.below(b.count + 1))
        return b
    }

    /// One format-blind mutation chosen at random.
    static func any(_ b: [UInt8], seeds: [[UInt8]], _ r: inout FuzzRandom) -> [UInt8] {
        switch r.below(8) {
        case 0: return bitFlips(b, &r)
        case 1: return interestingByte(b, &r)
        case 2: return interestingInteger(b, &r)
        case 3: return truncate(b, &r)
        case 4: return deleteRegion(b, &r)
        case 5: return repeatRegion(b, &r)
        case 6: return seeds.isEmpty ? repeatRegion(b, &r) : splice(b, with: r.pick(seeds), &r)
        default: return insertRandom(b, &r)
        }
    }
}
