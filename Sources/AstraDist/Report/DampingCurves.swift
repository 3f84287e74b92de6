import Foundation

/// LDS against the damping λ (`score --damping LIST`, then `lds`): results are grouped by
/// their name with the `_damping=λ` part removed (the naming rule puts every other option in
/// the name, so `ekfac`, `ekfac_damping=0.001` and `ekfac_damping=0.1` are one curve, and
/// `N_damping=λ` of `--name N` are curve `N`). Only groups with two or more dampings count.
public enum DampingCurves {
    public struct Point: Sendable { public var damping: Double; public var lds: LDSResult }
    public struct Curve: Sendable {
        /// The result name without its damping (`ekfac`, `astra_iterations=5`).
        public var family: String
        /// Ascending λ.
        public var points: [Point]
    }

    /// `name` without its `_damping=VALUE` component.
    public static func family(of name: String) -> String {
        var parts = name.components(separatedBy: "_")
        parts.removeAll { $0.hasPrefix("damping=") }
        return parts.joined(separator: "_")
    }

    /// The curves of `results` (those that record a damping), each λ once (the first result
    /// with it), families in name order.
    public static func curves(_ results: [LDSStage.MethodResult]) -> [Curve] {
        var byFamily: [String: [Point]] = [:]
        for r in results {
            guard let d = r.damping else { continue }
            let f = family(of: r.method)
            if byFamily[f, default: []].contains(where: { $0.damping == d }) { continue }
            byFamily[f, default: []].append(Point(damping: d, lds: r.single))
        }
        return byFamily.keys.sorted().compactMap { f in
            let p = byFamily[f]!.sorted { $0.damping < $1.damping }
            return p.count >= 2 ? Curve(family: f, points: p) : nil
        }
    }

    /// One line per family: `ekfac  λ 0.0001: 0.412 ± 0.020  λ 0.001: …  best λ 0.001`.
    public static func table(_ curves: [Curve]) -> String {
        let width = max(14, (curves.map(\.family.count).max() ?? 0) + 2)
        var s = "LDS (1 model) against the damping λ:\n"
        for c in curves {
            let best = c.points.filter { $0.lds.mean.isFinite }.max { $0.lds.mean < $1.lds.mean }
            s += c.family.padding(toLength: width, withPad: " ", startingAt: 0)
                + c.points.map { String(format: "λ %@: %.3f ± %.3f", ResultName.canonical($0.damping), $0.lds.mean, $0.lds.standardError) }.joined(separator: "  ")
                + (best.map { "  best λ \(ResultName.canonical($0.damping))" } ?? "") + "\n"
        }
        return s
    }

    /// LDS ± standard error against λ (log axis), one line per family.
    public static func figure(_ curves: [Curve]) -> SVGPlot {
        var plot = SVGPlot(title: "LDS against the damping λ (1 model, ± s.e. over queries)", xLabel: "damping λ", yLabel: "LDS", logX: true)
        plot.markers = true; plot.legendOutside = true
        for c in curves {
            plot.series.append(.init(label: c.family, x: c.points.map(\.damping), y: c.points.map(\.lds.mean), band: c.points.map(\.lds.standardError)))
        }
        return plot
    }
}
