import Foundation

/// A comma-separated table read whole into memory (RFC 4180 style).
///
/// Accepted: quoted fields (`"a, b"`, doubled quotes `""` inside), LF or CRLF line ends,
/// newlines inside quoted fields, an optional UTF-8 byte-order mark, gzip-compressed files
/// (via `Gzip.readAll`). Blank lines are skipped. Every row must have as many fields as the
/// header (or the first row when there is no header).
public struct CSVTable: Sendable {
    /// Column names exactly as written (untrimmed), or nil when the file has no header.
    public var header: [String]?
    /// Data rows, each with `columnCount` fields.
    public var rows: [[String]]
    /// The file the table came from (for error messages).
    public var path: String
    /// 1-based line in the file where each data row starts (for error messages).
    public var lineNumbers: [Int]

    public init(header: [String]?, rows: [[String]], path: String = "<memory>", lineNumbers: [Int]? = nil) {
        self.header = header; self.rows = rows; self.path = path
        self.lineNumbers = lineNumbers ?? rows.indices.map { $0 + (header == nil ? 1 : 2) }
    }

    public var columnCount: Int { header?.count ?? rows.first?.count ?? 0 }

    /// Reads and parses `path`. With `hasHeader`, the first record is the header.
    /// Throws a one-line error naming the file and line for a ragged row, an unterminated
    /// quote or text after a closing quote; naming the file and `hint` if it cannot be read.
    /// Complexity: O(file size).
    public static func load(_ path: String, hasHeader: Bool, hint: String) throws -> CSVTable {
        try decode(Gzip.readAll(path, hint: hint), path: path, hasHeader: hasHeader, hint: hint)
    }

    /// Parses `bytes` (the decompressed contents of `path`, which names it in errors), with
    /// the checks of `load`.
    public static func decode(_ bytes: [UInt8], path: String, hasHeader: Bool, hint: String) throws -> CSVTable {
        let records = try parse(bytes, path: path)
        guard let first = records.first else {
            throw AstraError("\(path): no rows (empty CSV file); \(hint)")
        }
        let width = first.fields.count
        for r in records where r.fields.count != width {
            let what = hasHeader ? "the header (line \(first.line)) has" : "the first row (line \(first.line)) has"
            throw AstraError("\(path): ragged row: line \(r.line) has \(r.fields.count) fields but \(what) \(width); fix the row (quote fields that contain commas)")
        }
        let data = hasHeader ? records.dropFirst() : records[...]
        return CSVTable(header: hasHeader ? first.fields : nil, rows: data.map(\.fields), path: path, lineNumbers: data.map(\.line))
    }

    /// Splits bytes into records; `line` is the 1-based line where each record starts.
    static func parse(_ input: [UInt8], path: String) throws -> [(line: Int, fields: [String])] {
        let quote: UInt8 = 0x22, comma: UInt8 = 0x2c, lf: UInt8 = 0x0a, cr: UInt8 = 0x0d
        var records: [(line: Int, fields: [String])] = []
        var fields: [String] = []
        var field: [UInt8] = []
        var line = 1, recordLine = 1
        var i = input.starts(with: [0xef, 0xbb, 0xbf]) ? 3 : 0
        let n = input.count
        // Whether the current record has any content (so blank lines are skipped).
        var started = false

        func endField() { fields.append(String(decoding: field, as: UTF8.self)); field.removeAll(keepingCapacity: true) }
        func endRecord() {
            if started { endField(); records.append((recordLine, fields)) }
            fields = []; field.removeAll(keepingCapacity: true); started = false
        }

        while i < n {
            let c = input[i]
            if !started { recordLine = line }
            if c == quote && field.isEmpty && (i == 0 || !started || input[i - 1] == comma) {
                // Quoted field: runs to the next lone quote.
                started = true
                let openLine = line
                i += 1
                var closed = false
                while i < n {
                    let d = input[i]
                    if d == quote {
                        if i + 1 < n && input[i + 1] == quote { field.append(quote); i += 2; continue }
                        closed = true; i += 1; break
                    }
                    if d == lf { line += 1 }
                    field.append(d); i += 1
                }
                guard closed else {
                    throw AstraError("\(path): line \(openLine): quoted field never closed (missing \"); fix the quoting")
                }
                if i < n && input[i] != comma && input[i] != lf && !(input[i] == cr && i + 1 < n && input[i + 1] == lf) {
                    throw AstraError("\(path): line \(line): text after a closing quote; a quote inside a quoted field must be doubled (\"\")")
                }
                continue
            }
            switch c {
            case comma:
                started = true; endField(); i += 1
            case lf:
                endRecord(); line += 1; i += 1
            case cr where i + 1 < n && input[i + 1] == lf:
                endRecord(); line += 1; i += 2
            default:
                started = true; field.append(c); i += 1
            }
        }
        endRecord()
        return records
    }

    /// The 0-based position of column `ref`: a header name (compared after trimming
    /// whitespace on both sides) or a 0-based integer index.
    /// Throws, listing the available names (or the index range), when there is no such column.
    public func columnIndex(_ ref: String) throws -> Int {
        let want = ref.csvTrimmed, shownRef = Self.escapedForMessage(ref.csvTrimmed)
        if let header {
            let matches = header.indices.filter { header[$0].csvTrimmed == want }
            if matches.count == 1 { return matches[0] }
            if matches.count > 1 {
                throw AstraError("\(path): column name \"\(shownRef)\" is ambiguous (columns \(matches.map(String.init).joined(separator: ", "))); give a 0-based index instead")
            }
        }
        if let k = Int(want), k >= 0, k < columnCount { return k }
        let range = "a 0-based index 0–\(columnCount - 1)"
        if let header {
            let names = header.enumerated().map { "\($0.offset): \"\(Self.escapedForMessage($0.element.csvTrimmed))\"" }.joined(separator: ", ")
            throw AstraError("\(path): no column \"\(shownRef)\"; available: \(names) (or \(range))")
        }
        throw AstraError("\(path): no column \"\(shownRef)\"; the file has no header, give \(range)")
    }

    /// The cells of columns `indices`, parsed as Double, row-major: rows.count × indices.count.
    /// Throws (naming the file, line and column) for an empty or non-numeric cell, NaN or ±Inf.
    /// Precondition: every index is in 0..<columnCount. Complexity: O(rows · indices.count).
    public func numericColumns(_ indices: [Int]) throws -> [Double] {
        for k in indices where k < 0 || k >= columnCount {
            throw AstraError("\(path): column index \(k) out of range 0–\(columnCount - 1)")
        }
        var out = [Double]()
        out.reserveCapacity(rows.count * indices.count)
        for (r, row) in rows.enumerated() {
            for k in indices {
                let cell = row[k].csvTrimmed
                guard let v = Double(cell), v.isFinite else {
                    let shown = Self.escapedForMessage(cell)
                    let problem = cell.isEmpty ? "empty cell" : Double(cell) == nil ? "non-numeric value \"\(shown)\"" : "non-finite value \"\(shown)\""
                    throw AstraError("\(path): line \(lineNumbers[r]), column \(columnLabel(k)): \(problem); every cell used as a number must be a finite number")
                }
                out.append(v)
            }
        }
        return out
    }

    /// `numericColumns` as float32, the type the datasets hold: a value beyond ±3.4e38 (which
    /// would become ±Inf) is refused naming the row and column, since no learning rate fixes it.
    public func float32Columns(_ indices: [Int]) throws -> [Float] {
        let values = try numericColumns(indices), w = indices.count
        if let i = values.firstIndex(where: { abs($0) > Double(Float.greatestFiniteMagnitude) }) {
            throw AstraError("\(path): value \(values[i]) out of float32 range (±3.4e38) in line \(lineNumbers[i / w]), column \(columnLabel(indices[i % w])); rescale that column")
        }
        return values.map { Float($0) }
    }

    /// A cell as shown in a one-line message: CR/LF/tab escaped, at most 60 characters.
    static func escapedForMessage(_ s: String) -> String {
        let e = s.replacingOccurrences(of: "\r", with: "\\r").replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\t", with: "\\t")
        return e.count > 60 ? String(e.prefix(57)) + "..." : e
    }

    /// "3 (\"Water\")" or "3" for messages.
    func columnLabel(_ k: Int) -> String {
        if let header { return "\(k) (\"\(Self.escapedForMessage(header[k].csvTrimmed))\")" }
        return "\(k)"
    }
}

fileprivate extension String {
    /// Without leading and trailing whitespace (spaces, tabs, CR, LF, Unicode spaces).
    var csvTrimmed: String {
        guard let a = firstIndex(where: { !$0.isWhitespace }), let b = lastIndex(where: { !$0.isWhitespace }) else { return "" }
        return String(self[a...b])
    }
}
