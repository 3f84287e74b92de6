import AstraDist

/// Mutations that know a format's header, so inputs get past the magic check and reach the
/// size and shape arithmetic: npy's dtype/shape text and length fields, IDX's dimensions,
/// gzip's flags and trailer, CSV's delimiters and numbers, JSON's numbers, strings, keys and
/// nesting, and the journal's length fields (with checksums recomputed so they are believed).
enum FormatMutators {
    static func mutate(_ format: FileFormat, _ b: [UInt8], _ r: inout FuzzRandom) -> [UInt8] {
        switch format {
        case .npy: return npy(b, &r)
        case .idx: return idx(b, &r)
        case .gzip: return gzip(b, &r)
        case .csv: return csv(b, &r)
        case .journal: return journal(b, &r)
        case .config, .model, .factors, .scores: return json(b, &r)
        }
    }

    // MARK: npy

    static let dims = ["0", "1", "2", "3", "-1", "-3", "1048576", "2147483648", "4294967296", "1099511627776",
                       "4611686018427387904", "9223372036854775807", "9223372036854775808", "x", "", " 2", "1e3"]

    static func npy(_ b: [UInt8], _ r: inout FuzzRandom) -> [UInt8] {
        guard b.count >= 10 else { return Mutators.any(b, seeds: [], &r) }
        let hlen = min(Int(b[8]) | Int(b[9]) << 8, b.count - 10)
        var header = String(decoding: b[10..<(10 + hlen)], as: UTF8.self)
        let payload = Array(b[(10 + hlen)...])
        switch r.below(6) {
        case 0, 1:
            let shape = (0..<r.below(5)).map { _ in r.pick(dims) }.joined(separator: ", ")
            header = replacing(header, after: "'shape': (", upTo: ")", with: shape + (r.chance(0.5) ? "," : ""))
        case 2:
            header = replacing(header, after: "'descr': '", upTo: "'", with: r.pick(["<f4", "<f8", "|u1", "<i8", "<i4", ">f4", "<f2", "", "O", "<c16"]))
        case 3:
            header = header.replacingOccurrences(of: "False", with: r.pick(["True", "1", ""]))
        case 4:
            var out = b
            out[6] = r.pick([0, 1, 2, 3, 255])
            return out
        default:
            return Mutators.overwrite(b, at: 8, width: 2, value: Mutators.pickInteger(&r), bigEndian: false)
        }
        let text = Array(header.utf8)
        // Mostly keep the length field true, so the dict itself is what is tested.
        let length = r.chance(0.85) ? UInt64(text.count) : Mutators.pickInteger(&r)
        return Mutators.overwrite(Array(b[..<8]) + [0, 0], at: 8, width: 2, value: length, bigEndian: false) + text + payload
    }

    static func replacing(_ s: String, after open: String, upTo close: Character, with new: String) -> String {
        guard let a = s.range(of: open) else { return s }
        let end = s[a.upperBound...].firstIndex(of: close) ?? s.endIndex
        return String(s[..<a.upperBound]) + new + String(s[end...])
    }

    // MARK: IDX

    static func idx(_ b: [UInt8], _ r: inout FuzzRandom) -> [UInt8] {
        guard b.count >= 8 else { return Mutators.any(b, seeds: [], &r) }
        var out = b
        switch r.below(5) {
        case 0: out[3] = r.pick([0, 1, 2, 3, 4, 255])
        case 1: out[2] = r.pick([0x08, 0x09, 0x0b, 0x0c, 0x0d, 0x0e, 0])
        case 2:
            // A dimension set to a boundary value, or to the payload size ± 1.
            let ndim = (b.count - 4) / 4
            let k = r.below(max(1, min(3, ndim)))
            let v = r.chance(0.3) ? UInt64(max(0, b.count - 16 + r.below(3) - 1)) : Mutators.pickInteger(&r)
            out = Mutators.overwrite(out, at: 4 + 4 * k, width: 4, value: v, bigEndian: true)
        case 3:
            // Swap two dimensions (rows×cols transposed, count moved).
            if b.count >= 16 {
                let i = 4 + 4 * r.below(3), j = 4 + 4 * r.below(3)
                for k in 0..<4 { out.swapAt(i + k, j + k) }
            }
        default:
            out.append(contentsOf: repeatElement(UInt8(truncatingIfNeeded: r.next()), count: 1 + r.below(64)))
        }
        return out
    }

    // MARK: gzip

    static func gzip(_ b: [UInt8], _ r: inout FuzzRandom) -> [UInt8] {
        guard b.count >= 18 else { return Mutators.any(b, seeds: [], &r) }
        var out = b
        switch r.below(6) {
        case 0: out[3] = UInt8(truncatingIfNeeded: r.next()) & r.pick([0x1f, 0xff, 0x04, 0x08, 0x10, 0x02])
        case 1: out[2] = r.pick([8, 0, 7, 9, 255])
        case 2: out = Mutators.overwrite(out, at: b.count - 4, width: 4, value: Mutators.pickInteger(&r), bigEndian: false)
        case 3: out = Mutators.overwrite(out, at: b.count - 8, width: 4, value: r.next(), bigEndian: false)
        case 4: out += r.chance(0.5) ? b : [0x1f, 0x8b] + Array(b[2..<r.below(b.count - 2) + 2])
        default: out = Array(b[..<(b.count - 1 - r.below(12))])
        }
        return out
    }

    // MARK: CSV

    static let csvTokens = [",", "\"", "\n", "\r\n", "\r", "\"\"", "1e300", "-1e39", "3.5e38", "nan", "inf", "-inf", "", " ",
                            "\u{FEFF}", "0x1p3", "1e-400", "99999999999999999999", "\"a,b\"", "-", "+", "1,2", "\t", "é"]

    static func csv(_ b: [UInt8], _ r: inout FuzzRandom) -> [UInt8] {
        var s = String(decoding: b, as: UTF8.self)
        var lines = s.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        switch r.below(5) {
        case 0:
            let i = s.utf8.index(s.utf8.startIndex, offsetBy: r.below(s.utf8.count + 1))
            s.insert(contentsOf: r.pick(csvTokens), at: String.Index(i, within: s) ?? s.endIndex)
            return Array(s.utf8)
        case 1:
            // Replace one field of one line.
            guard !lines.isEmpty else { break }
            let l = r.below(lines.count)
            var fields = lines[l].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            fields[r.below(fields.count)] = r.pick(csvTokens)
            lines[l] = fields.joined(separator: ",")
        case 2:
            guard !lines.isEmpty else { break }
            lines.insert(contentsOf: repeatElement(lines[r.below(lines.count)], count: 1 + r.below(4)), at: r.below(lines.count + 1))
        case 3:
            guard !lines.isEmpty else { break }
            lines.remove(at: r.below(lines.count))
        default:
            // Every row the same constant, or one row only: the degenerate tables.
            guard lines.count > 1 else { break }
            lines = r.chance(0.5) ? Array(lines.prefix(1 + r.below(2))) : [lines[0]] + repeatElement(lines[1], count: lines.count - 1)
        }
        return Array(lines.joined(separator: "\n").utf8)
    }

    // MARK: JSON

    static let numbers = ["-1", "0", "-3", "1e300", "1e400", "-1e400", "1.5", "9223372036854775807", "9223372036854775808",
                          "18446744073709551616", "-9223372036854775809", "1e-400", "2147483648", "4294967296", "1099511627776",
                          "null", "true", "\"7\"", "[]", "{}", "3037000500"]
    static let strings = ["null", "0", "[]", "{}", "\"\"", "\"sampled\"", "\"exact\"", "\"mse\"", "\"cross-entropy\"",
                          "\"astra-dist-ekfac-1\"", "\"\\u0000\"", "\"\\ud800\"", "\"" + String(repeating: "x", count: 300) + "\""]
    static let arrays = ["[]", "[-3]", "[0]", "[1]", "[1099511627776, 1099511627776]", "[64, 0, 10]", "[3037000499, 3037000499]",
                         "[9223372036854775807, 2]", "[2, 9223372036854775807]", "[[]]", "[null]", "[1.5, 2]", "[4294967296, 4294967296, 4294967296]"]

    static func json(_ b: [UInt8], _ r: inout FuzzRandom) -> [UInt8] {
        let tokens = jsonTokens(b)
        guard !tokens.isEmpty else { return Mutators.any(b, seeds: [], &r) }
        let t = r.pick(tokens)
        var out = b
        switch (t.kind, r.below(4)) {
        case (_, 3) where r.chance(0.3):
            // Deep nesting in place of a value.
            let depth = r.pick([10, 100, 600, 5000])
            out.replaceSubrange(t.range, with: Array((String(repeating: "[", count: depth) + String(repeating: "]", count: r.chance(0.8) ? depth : 0)).utf8))
        case (.number, _): out.replaceSubrange(t.range, with: Array(r.pick(numbers).utf8))
        case (.string, 0):
            // Rename a key or value: change one character inside the quotes.
            if t.range.count > 2 { out[t.range.lowerBound + 1 + r.below(t.range.count - 2)] = UInt8(97 + r.below(26)) }
        case (.string, 1):
            // Drop a key and its value: up to the next comma or closing brace.
            let end = out[t.range.lowerBound...].firstIndex(where: { $0 == 0x2c || $0 == 0x7d }) ?? out.count
            out.removeSubrange(t.range.lowerBound..<min(out.count, end + (end < out.count && out[end] == 0x2c ? 1 : 0)))
        case (.string, _): out.replaceSubrange(t.range, with: Array(r.pick(strings).utf8))
        case (.array, _): out.replaceSubrange(t.range, with: Array(r.pick(arrays).utf8))
        }
        return out
    }

    enum TokenKind { case number, string, array }

    /// Spans of numbers, strings and innermost arrays (enough to aim mutations; not a parser).
    static func jsonTokens(_ b: [UInt8]) -> [(kind: TokenKind, range: Range<Int>)] {
        var out: [(TokenKind, Range<Int>)] = []
        var i = 0, arrayStart: Int? = nil
        while i < b.count {
            let c = b[i]
            if c == 0x22 {
                var j = i + 1
                while j < b.count && b[j] != 0x22 { j += b[j] == 0x5c ? 2 : 1 }
                out.append((.string, i..<min(j + 1, b.count))); i = j + 1; continue
            }
            if c == 0x2d || (0x30...0x39).contains(c) {
                var j = i + 1
                while j < b.count, b[j] == 0x2e || b[j] == 0x2d || b[j] == 0x2b || b[j] == 0x65 || b[j] == 0x45 || (0x30...0x39).contains(b[j]) { j += 1 }
                out.append((.number, i..<j)); i = j; continue
            }
            if c == 0x5b { arrayStart = i }
            if c == 0x5d, let a = arrayStart { out.append((.array, a..<(i + 1))); arrayStart = nil }
            i += 1
        }
        return out
    }

    // MARK: journal

    static func journal(_ b: [UInt8], _ r: inout FuzzRandom) -> [UInt8] {
        guard b.count >= 20 else { return Mutators.any(b, seeds: [], &r) }
        var out = b
        let records = recordOffsets(b)
        switch r.below(5) {
        case 0:
            out = Mutators.overwrite(out, at: 12, width: 4, value: Mutators.pickInteger(&r), bigEndian: false)
        case 1 where !records.isEmpty:
            // A record's count or job id.
            let o = r.pick(records)
            out = r.chance(0.5) ? Mutators.overwrite(out, at: o + 12, width: 4, value: Mutators.pickInteger(&r), bigEndian: false)
                                : Mutators.overwrite(out, at: o + 4, width: 8, value: Mutators.pickInteger(&r), bigEndian: false)
        case 2 where !records.isEmpty:
            // A record repeated (the same job twice) or moved.
            let o = r.pick(records), end = min(b.count, recordEnd(b, o))
            out += Array(b[o..<end])
        case 3 where !records.isEmpty:
            // A torn tail: the last record cut short.
            out = Array(b[..<(records.last! + r.below(b.count - records.last!))])
        default:
            out = Mutators.any(b, seeds: [], &r)
        }
        return r.chance(0.8) ? fixChecksums(out) : out
    }

    static func recordEnd(_ b: [UInt8], _ o: Int) -> Int {
        o + 20 + 4 * Int(u32(b, o + 12))
    }

    /// Offsets of the records that follow the header, by their length fields.
    static func recordOffsets(_ b: [UInt8]) -> [Int] {
        guard b.count >= 16 else { return [] }
        var o = 16 + Int(u32(b, 12)) + 4, out: [Int] = []
        while o + 20 <= b.count && out.count < 1000 {
            out.append(o)
            o = recordEnd(b, o)
        }
        return out
    }

    /// Recomputes the header's and every complete record's CRC, so edited length fields are
    /// believed by the parser instead of stopping at the checksum.
    static func fixChecksums(_ b: [UInt8]) -> [UInt8] {
        var b = b
        guard b.count >= 16 else { return b }
        let headerEnd = 16 + Int(u32(b, 12))
        guard headerEnd + 4 <= b.count else { return b }
        b = Mutators.overwrite(b, at: headerEnd, width: 4, value: UInt64(CRC32.of(b[0..<headerEnd])), bigEndian: false)
        for o in recordOffsets(b) {
            let end = recordEnd(b, o)
            guard end <= b.count else { break }
            b = Mutators.overwrite(b, at: end - 4, width: 4, value: UInt64(CRC32.of(b[o..<(end - 4)])), bigEndian: false)
        }
        return b
    }

    static func u32(_ b: [UInt8], _ o: Int) -> UInt32 {
        UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24
    }
}

/// zlib's CRC-32 (the journal's checksum), so mutated records can be re-signed.
enum CRC32 {
    static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }
    static func of(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var c: UInt32 = 0xffff_ffff
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xff)] ^ (c >> 8) }
        return c ^ 0xffff_ffff
    }
}
