import Foundation

/// Everything an iterative solve (sni, astra) needs to continue after `iteration` steps as
/// if it had never stopped (docs/formats.md, "Solver state"). The mini-batch of iteration k
/// is drawn from `CounterRandom(chainSeed, .ggnBatch, k)` alone, E, C and the power
/// iteration's start vector from fixed keys, so the iteration number is the whole position
/// of every random stream; x_0, the preconditioner and the schedule are recomputed from the
/// options. The rest is state: the iterates, momenta, step and back-off of every chain and
/// the objective trace.
struct SolverState<T: BLASScalar> {
    /// Iterations done: the next one to run is `iteration`.
    var iteration: Int
    /// α_0, from the options or from the power iteration.
    var alpha0: Double
    var lambdaMax: Double?
    /// Per LiSSA chain (astra: one): the iterate and the momentum, Q·P values each.
    var xs: [[T]]
    var ms: [[T]]
    var backoff: StepBackoff<T>
    var trace: [TracePoint]

    static var magic: [UInt8] { Array("ASTRASV1".utf8) }

    /// The file: magic, header length and JSON header (the key and a summary for people),
    /// binary payload, checksum of everything before it.
    func encoded(key: [String: String], ranks: Int) throws -> [UInt8] {
        let summary = Header(key: key, iteration: iteration, chains: xs.count, values: xs.first?.count ?? 0,
                             scalarBytes: MemoryLayout<T>.size, ranks: ranks)
        let header = try Self.jsonEncoder.encode(summary)
        var w = ByteWriter()
        w.bytes = Self.magic
        w.put(UInt64(header.count)); w.bytes += header
        w.put(Int64(iteration)); w.put(alpha0); w.put(Int64(lambdaMax == nil ? 0 : 1)); w.put(lambdaMax ?? 0)
        for c in xs.indices { w.put(xs[c]); w.put(ms[c]) }
        w.put(Int64(backoff.count))
        for rows in [backoff.scale, backoff.initial, backoff.reference] { w.put(Int64(rows.count)); rows.forEach { w.put($0) } }
        w.put(Int64(backoff.restart.count)); backoff.restart.forEach { w.put($0) }
        w.put(trace.flatMap { [Double($0.iteration), $0.objective, $0.seconds] })
        w.put(Self.checksum(w.bytes[...]))
        return w.bytes
    }

    /// The JSON header of a state file (or nil if `bytes` is not one).
    static func header(_ bytes: [UInt8]) -> Header? {
        guard bytes.count >= 16, Array(bytes.prefix(8)) == magic else { return nil }
        var r = ByteReader(bytes: bytes, offset: 8)
        guard let n: UInt64 = try? r.get(), n <= UInt64(bytes.count - 16) else { return nil }
        return try? JSONDecoder().decode(Header.self, from: Data(bytes[16..<(16 + Int(n))]))
    }

    /// Decodes a state whose header has been checked; `chains` and `count` (Q·P) are the
    /// solve's, `queries` its Q. Throws `AstraError` on a torn or inconsistent file.
    static func decode(_ bytes: [UInt8], chains: Int, count: Int, queries: Int, window: Int, tolerance: Double) throws -> SolverState {
        guard bytes.count >= 24 else { throw AstraError("truncated") }
        var r = ByteReader(bytes: bytes, offset: 8)
        let headerLength: UInt64 = try r.get()
        guard headerLength <= UInt64(bytes.count) else { throw AstraError("truncated") }
        r.offset += Int(headerLength)
        var tail = ByteReader(bytes: bytes, offset: bytes.count - 8)
        let stored: UInt64 = try tail.get()
        guard stored == checksum(bytes[..<(bytes.count - 8)]) else { throw AstraError("checksum mismatch (a damaged file)") }
        let iteration = Int(try r.get() as Int64), alpha0: Double = try r.get()
        let hasLambda: Int64 = try r.get(), lambda: Double = try r.get()
        var xs: [[T]] = [], ms: [[T]] = []
        for _ in 0..<chains { xs.append(try r.array(count)); ms.append(try r.array(count)) }
        let backoffs = Int(try r.get() as Int64)
        func rows<V>(_ width: Int, allowed: Set<Int>) throws -> [[V]] {
            let n = Int(try r.get() as Int64)
            guard allowed.contains(n) else { throw AstraError("inconsistent back-off state") }
            return try (0..<n).map { _ in try r.array(width) }
        }
        let scale: [[Double]] = try rows(queries, allowed: [chains])
        let initial: [[Double]] = try rows(queries, allowed: Set(0...chains))
        let reference: [[Double]] = try rows(queries, allowed: [initial.count])
        let restart: [[T]] = try rows(count, allowed: [window > 0 ? chains : 0])
        let flat: [Double] = try r.array(nil)
        guard flat.count % 3 == 0, r.offset == bytes.count - 8 else { throw AstraError("inconsistent trace") }
        let trace = stride(from: 0, to: flat.count, by: 3).map { TracePoint(iteration: Int(flat[$0]), objective: flat[$0 + 1], seconds: flat[$0 + 2]) }
        let backoff = StepBackoff<T>(window: window, tolerance: tolerance, count: backoffs, scale: scale, initial: initial,
                                     reference: reference, restart: restart)
        return SolverState(iteration: iteration, alpha0: alpha0, lambdaMax: hasLambda != 0 ? lambda : nil, xs: xs, ms: ms,
                           backoff: backoff, trace: trace)
    }

    /// The human-readable part of a state file.
    struct Header: Codable {
        /// What shaped the solve (`SolverCheckpoint.key`); a state is used only on an exact match.
        var key: [String: String]
        var iteration: Int
        var chains: Int
        /// Q·P, values per iterate.
        var values: Int
        var scalarBytes: Int
        /// Ranks of the communicator that saved it (for people: the state does not depend on it).
        var ranks: Int
    }

    static var jsonEncoder: JSONEncoder { let e = JSONEncoder(); e.outputFormatting = [.sortedKeys]; return e }

    /// FNV-1a over 8-byte words (then the tail bytes): cheap enough for Q·P-value files,
    /// and it catches torn or damaged files (not tampering).
    static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        bytes.withUnsafeBytes { raw in
            let words = raw.count / 8
            for i in 0..<words { h = (h ^ raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)) &* 0x100_0000_01b3 }
            for i in (words * 8)..<raw.count { h = (h ^ UInt64(raw[i])) &* 0x100_0000_01b3 }
        }
        return h
    }
}

/// Appends native-endian values and length-prefixed arrays (of trivial types: numbers).
struct ByteWriter {
    var bytes: [UInt8] = []
    mutating func put<V: BitwiseCopyable>(_ value: V) { withUnsafeBytes(of: value) { bytes += $0 } }
    mutating func put<V>(_ array: [V]) { put(Int64(array.count)); array.withUnsafeBytes { bytes += $0 } }
}

/// Reads what `ByteWriter` wrote, throwing (never trapping) past the end.
struct ByteReader {
    let bytes: [UInt8]
    var offset: Int

    mutating func get<V: BitwiseCopyable>() throws -> V {
        let n = MemoryLayout<V>.size
        guard offset >= 0, n <= bytes.count - offset else { throw AstraError("truncated") }
        defer { offset += n }
        return bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: V.self) }
    }

    /// A length-prefixed array; `expected`: the length it must have (nil: any that fits).
    mutating func array<V>(_ expected: Int?) throws -> [V] {
        let n = try get() as Int64
        let size = MemoryLayout<V>.stride
        guard n >= 0, expected.map({ Int64($0) == n }) ?? true, n <= Int64((bytes.count - offset) / size) else {
            throw AstraError("inconsistent array length \(n)")
        }
        let count = Int(n)
        let out = [V](unsafeUninitializedCapacity: count) { buffer, initialized in
            bytes.withUnsafeBytes { raw in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + count * size)]))
            }
            initialized = count
        }
        offset += count * size
        return out
    }
}
