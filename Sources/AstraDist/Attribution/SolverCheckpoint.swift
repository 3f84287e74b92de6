import Foundation

/// Where an iterative solve (sni, astra) keeps its `SolverState` between runs, and what
/// beyond the solver's own inputs shaped it; `SolverOptions.stateEvery` says how often.
///
/// A killed solve re-run with the same checkpoint resumes from the last state saved and ends
/// with the same x: bit for bit at the same rank count and BLAS threads, within the
/// reordering tier on another rank count (the state holds the full replicated iterates, so
/// it does not depend on the layout). A state saved for anything else (key below) is
/// ignored with a warning naming what differs, never used.
public struct SolverCheckpoint: Sendable {
    /// The state file; rank 0 of the solving communicator writes it atomically and reads it
    /// for every rank.
    public var path: String
    /// What the caller knows shaped the solve (data hash, query set and range, ...): part of
    /// the key, compared verbatim.
    public var provenance: [String: String]
    /// Where warnings go (rank 0 only); default: stderr as `warning: ...`.
    public var warn: @Sendable (String) -> Void

    public init(path: String, provenance: [String: String], warn: @escaping @Sendable (String) -> Void = SolverCheckpoint.printWarning) {
        self.path = path; self.provenance = provenance; self.warn = warn
    }

    @Sendable public static func printWarning(_ message: String) {
        FileHandle.standardError.write(Data(("warning: " + message + "\n").utf8))
    }

    /// Everything that shapes the solve: every solver option but `stateEvery`, the scalar
    /// type, the network's parameters, the factors' eigenvalues and eigenvectors (eigenbasis
    /// methods), the right-hand sides `v` (which carry the model, the queries and the
    /// rotation), and `provenance`. Hashes are FNV-1a, 16 hex digits.
    func key<T: BLASScalar>(options: SolverOptions, v: [T], network: Network<T>, ekfac: EKFAC?) -> [String: String] {
        var key = provenance
        for child in Mirror(reflecting: options).children {
            guard let label = child.label, label != "stateEvery" else { continue }
            key["option." + label] = Self.describe(child.value)
        }
        func hash(_ update: (inout ContentHash) -> Void) -> String { var h = ContentHash(); update(&h); return h.hex }
        key["scalar"] = "\(T.self)"
        key["values"] = "\(v.count)"
        key["model"] = hash { h in network.parameters.withUnsafeBytes { h.update($0) } }
        key["rhs"] = hash { h in v.withUnsafeBytes { h.update($0) } }
        if let ekfac, options.method.usesEigenbasis {
            key["factors"] = hash { h in
                h.update(ekfac.diagonal())
                for layer in ekfac.layers { h.update(layer.qAFloat); h.update(layer.qSFloat) }
            }
        }
        return key
    }

    /// `Optional(x)` as `x` or `nil`, anything else as printed.
    static func describe(_ value: Any) -> String {
        let m = Mirror(reflecting: value)
        guard m.displayStyle == .optional else { return "\(value)" }
        return m.children.first.map { "\($0.value)" } ?? "nil"
    }

    /// The saved state if there is one for `key`, the same on every rank of `comm`: rank 0
    /// reads and checks it (header key, size, checksum) and broadcasts it. A missing file is
    /// silently nil; a mismatching or damaged one is nil with a warning. Collective.
    func load<T: BLASScalar>(key: [String: String], options o: SolverOptions, chains: Int, queries: Int, count: Int,
                             comm: Communicator) -> SolverState<T>? {
        func decode(_ bytes: [UInt8]) throws -> SolverState<T> {
            try SolverState<T>.decode(bytes, chains: chains, count: count, queries: queries, window: o.backoffWindow, tolerance: o.backoffTolerance)
        }
        var accepted: [UInt8] = []
        if comm.rank == 0, let data = FileManager.default.contents(atPath: path) {
            let bytes = [UInt8](data)
            let ignoring = "ignoring the solver state \(path)"
            if let header = SolverState<T>.header(bytes) {
                let differing = Set(header.key.keys).union(key.keys).sorted().filter { header.key[$0] != key[$0] }
                if !differing.isEmpty {
                    let list = differing.map { "\($0) (state \(header.key[$0] ?? "none"), now \(key[$0] ?? "none"))" }.joined(separator: ", ")
                    warn("\(ignoring): it was saved for another solve, differing in \(list); starting from iteration 0")
                } else {
                    do {
                        let state = try decode(bytes)
                        guard state.iteration >= 1, state.iteration <= o.iterations else { throw AstraError("iteration \(state.iteration) out of range") }
                        accepted = bytes
                    } catch {
                        warn("\(ignoring): \(error) (a damaged file); starting from iteration 0")
                    }
                }
            } else {
                warn("\(ignoring): not a solver state file (or a damaged one); starting from iteration 0")
            }
        }
        let shared = comm.size > 1 ? comm.broadcastBytes(accepted, root: 0) : accepted
        // Every rank decodes the bytes rank 0 has decoded, so every rank agrees.
        return shared.isEmpty ? nil : try? decode(shared)
    }

    /// Writes `state` atomically (rank 0 only). A failed write is a warning, not an error:
    /// the solve goes on, only a resume would be lost. Returns whether it was written.
    func save<T: BLASScalar>(_ state: SolverState<T>, key: [String: String], ranks: Int) -> Bool {
        do {
            try AtomicFile.write(state.encoded(key: key, ranks: ranks), to: path)
            return true
        } catch {
            warn("cannot save the solver state: \(error); the solve goes on without saving (a killed run would start again)")
            return false
        }
    }
}
