/// The naming rule of docs/commands.md ("Naming rule"), in one place: what a user-given name
/// may contain, and how a result is named from everything that made it.
///
/// A result NAME (`scores/NAME/`, `lds/NAME.json`) is the method when every option that
/// shapes the result is the method's default, else the method followed by `_key=value` for
/// each non-default option, in the fixed order of `settings` (`ekfac_damping=0.05`,
/// `astra_iterations=5_solver-seed=3`). `--name` replaces the derived name; the options are
/// recorded in the scores metadata either way, so a name never hides what made its files.
public enum ResultName {
    /// Characters a name may use (no `/`, no spaces, nothing a shell or a path would read
    /// specially); a name must not start with a dot (`.`, `..`, hidden files).
    public static let allowedCharacters = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._=,+-")

    /// Throws one line naming `what` (e.g. "--name") unless `name` is a valid name.
    public static func validate(_ name: String, what: String) throws {
        guard !name.isEmpty, !name.hasPrefix("."), name.count <= 200, name.allSatisfy(allowedCharacters.contains) else {
            throw AstraError("\(what) '\(name)' is not a valid name: use 1–200 characters of A-Z a-z 0-9 . _ = , + - without a leading dot")
        }
    }

    /// The options that shape a result of `options.method`, as (key, canonical value) pairs in
    /// a fixed order. Keys are the flags' names. Options a method ignores are left out (the
    /// exact solver has no step), as are those that only change what is reported
    /// (`trace-every`) or guarded (`exact-limit`).
    public static func settings(_ o: SolverOptions, fisher: FisherMode) -> [Setting] {
        // tracin has no options (its checkpoints are configuration); trak only k.
        guard o.method.solvesIHVP else { return o.projectionDimension.map { [Setting("projection-dim", "\($0)")] } ?? [] }
        // SOURCE's damping comes from its segments (λ_ℓ = 1/(η̄_ℓK_ℓ)), not from --damping.
        var s: [Setting] = o.method.isSource ? [Setting("segments", "\(o.segments ?? 3)")] : [Setting("damping", canonical(o.damping))]
        if o.method.usesEigenbasis { s.append(Setting("fisher", fisher.rawValue)) }
        guard o.method.isIterative else { return s }
        s.append(Setting("iterations", "\(o.iterations)"))
        s.append(Setting("solver-batch", "\(o.batchSize)"))
        if let lr = o.learningRate {
            s.append(Setting("solver-lr", canonical(lr)))
        } else {
            s.append(Setting("lr-scale", canonical(o.learningRateScale)))
            s.append(Setting("power-iterations", "\(o.powerIterations)"))
        }
        s.append(Setting("solver-momentum", canonical(o.momentum)))
        s.append(Setting("decay-factor", canonical(o.decayFactor)))
        if o.decayFactor != 1 { s.append(Setting("decay-every", "\(o.decayEvery)")) }
        if o.method == .sni { s.append(Setting("lissa-repeats", "\(o.lissaRepeats)")) }
        s.append(Setting("solver-seed", "\(o.seed)"))
        s.append(Setting("backoff-window", "\(o.backoffWindow)"))
        if o.backoffWindow > 0 { s.append(Setting("backoff-tolerance", canonical(o.backoffTolerance))) }
        s.append(Setting("evaluation-batch", "\(o.evaluationBatch)"))
        return s
    }

    /// The derived name of a result: the method, then `_key=value` for every setting that
    /// differs from `SolverOptions(method:damping: defaultDamping)` with the sampled Fisher.
    public static func derived(_ o: SolverOptions, fisher: FisherMode, defaultDamping: Double) -> String {
        let defaults = settings(SolverOptions(method: o.method, damping: defaultDamping), fisher: .sampled)
        return o.method.rawValue + nonDefault(settings(o, fisher: fisher), defaults: defaults).map { "_\($0.key)=\($0.value)" }.joined()
    }

    /// The settings of `s` whose value differs from (or is absent in) `defaults`.
    public static func nonDefault(_ s: [Setting], defaults: [Setting]) -> [Setting] {
        s.filter { x in defaults.first { $0.key == x.key }?.value != x.value }
    }

    /// `a` vs `b` for a refusal line: "damping 0.0073, iterations 5" (the keys where they
    /// differ, `a`'s values), or "" if they are equal.
    public static func describeDifference(_ a: [Setting], from b: [Setting]) -> String {
        let keys = (a.map(\.key) + b.map(\.key)).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        return keys.compactMap { k -> String? in
            let x = a.first { $0.key == k }?.value, y = b.first { $0.key == k }?.value
            return x == y ? nil : "\(k) \(x ?? "(unset)")"
        }.joined(separator: ", ")
    }

    /// Shortest text that reads back to `v`: integers without ".0", else Swift's shortest
    /// round-trip form (`0.05`, `1e-05`).
    public static func canonical(_ v: Double) -> String {
        if v == v.rounded(), abs(v) < 1e15 { return "\(Int64(v))" }
        return "\(v)"
    }

    /// One option that shaped a result.
    public struct Setting: Equatable, Codable, Sendable {
        public var key: String
        public var value: String
        public init(_ key: String, _ value: String) { self.key = key; self.value = value }
    }
}

/// Which model an artifact belongs to: a seed's final weights today; a checkpoint of its
/// training or a SOURCE segment of it later. Every model, factor, feature and score file is
/// addressed through `component`, so per-checkpoint and per-segment files live under the
/// seed's directory and every stage finds them the same way (docs/commands.md, "Naming rule").
public struct ModelReference: Hashable, Codable, Sendable, CustomStringConvertible {
    public var seed: UInt64
    /// Training step of a checkpoint (`seed-S/checkpoint-K`); nil for the final model.
    public var checkpoint: Int?
    /// SOURCE segment index (`seed-S/segment-L`); nil unless the artifact is per segment.
    public var segment: Int?

    public init(seed: UInt64, checkpoint: Int? = nil, segment: Int? = nil) {
        precondition(checkpoint == nil || segment == nil, "ModelReference: a checkpoint or a segment, not both")
        self.seed = seed; self.checkpoint = checkpoint; self.segment = segment
    }

    /// Relative path: `seed-S`, `seed-S/checkpoint-K` or `seed-S/segment-L`.
    public var component: String {
        if let k = checkpoint { return "seed-\(seed)/checkpoint-\(k)" }
        if let l = segment { return "seed-\(seed)/segment-\(l)" }
        return "seed-\(seed)"
    }
    public var description: String { component }
}
