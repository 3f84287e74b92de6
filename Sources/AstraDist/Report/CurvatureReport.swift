import Foundation

/// The curvature ladder's outputs for one sweep (docs/formats.md): `<sweep>.json` (every
/// point's `PointResult`), `<sweep>.csv` (one row per point × matrix × damping × rule),
/// `<sweep>-decomposition.csv`, `<sweep>-lds.svg` (LDS against the error to H, λ = 1e-4,
/// clipped rule) and `<sweep>-decomposition.svg` (ΔES % and ΔLDS % as stacked bars).
public enum CurvatureReport {
    public static func write(_ points: [CurvatureStudy.PointResult], sweep: String, to dir: String) throws {
        try WorkDirectory.writeJSON(points, to: "\(dir)/\(sweep).json")
        try AtomicFile.write(table(points), to: "\(dir)/\(sweep).csv")
        try AtomicFile.write(decompositionTable(points), to: "\(dir)/\(sweep)-decomposition.csv")
        try AtomicFile.write(ldsFigure(points, sweep: sweep).render(width: 760), to: "\(dir)/\(sweep)-lds.svg")
        try AtomicFile.write(decompositionFigure(points, sweep: sweep).render(width: 760), to: "\(dir)/\(sweep)-decomposition.svg")
    }

    static func num(_ x: Double?) -> String { x.map { $0.isFinite ? String(format: "%.6g", $0) : "" } ?? "" }

    public static func table(_ points: [CurvatureStudy.PointResult]) -> String {
        var s = "sweep,value,depth,width,epochs,parameters,matrix,error_to_hessian,error_to_ggn,residual_share,negative_eigenvalues,mean_block_overlap,damping,rule,lds,lds_se,lds_ci_low,lds_ci_high\n"
        for p in points {
            for e in p.ladder.entries {
                let overlap = e.blockOverlap.reduce(0, +) / Double(max(e.blockOverlap.count, 1))
                for i in e.influence {
                    s += "\(p.sweep),\(p.value),\(p.depth),\(p.width),\(p.epochs),\(p.ladder.parameters),\(e.matrix.rawValue),\(num(e.errorToHessian)),\(num(e.errorToGGN)),"
                    s += "\(num(p.ladder.residualShare)),\(e.negativeEigenvalues),\(num(overlap)),\(num(i.damping)),\(i.rule.rawValue),\(num(i.lds.mean)),\(num(i.lds.standardError)),\(num(i.ciLow)),\(num(i.ciHigh))\n"
                }
            }
        }
        return s
    }

    public static func decompositionTable(_ points: [CurvatureStudy.PointResult]) -> String {
        var s = "sweep,value,damping,rule,step,error_change,error_share_percent,lds_loss,lds_share_percent,total_lds_loss,total_lds_se\n"
        for p in points {
            for d in p.ladder.decompositions {
                for st in d.decomposition.steps {
                    s += "\(p.sweep),\(p.value),\(num(d.damping)),\(d.rule.rawValue),\(st.from)->\(st.to),\(num(st.errorChange)),\(num(st.errorSharePercent)),"
                    s += "\(num(st.ldsLoss)),\(num(st.ldsSharePercent)),\(num(d.decomposition.totalLDSLoss)),\(num(d.decomposition.totalLDSStandardError))\n"
                }
            }
        }
        return s
    }

    /// The headline influence: λ = 1e-4, clipped rule.
    static func headline(_ e: LadderResult.Entry) -> LadderResult.Influence? {
        e.influence.first { $0.damping == CurvatureLadderRun.seedDamping && $0.rule == .clipped }
    }

    static func ldsFigure(_ points: [CurvatureStudy.PointResult], sweep: String) -> SVGPlot {
        var plot = SVGPlot(title: "\(sweep) sweep: LDS vs ‖M − H‖/‖H‖ along H → G → B-GGN → EK-FAC → K-FAC (λ = 1e-4, ± s.e.)",
                           xLabel: "relative error to H", yLabel: "LDS")
        plot.markers = true; plot.legendOutside = true
        for p in points {
            let path = LadderMatrix.path.compactMap { m in p.ladder.entry(m) }
            let inf = path.map(headline)
            plot.series.append(.init(label: "\(sweep) \(p.value)", x: path.map(\.errorToHessian), y: inf.map { $0?.lds.mean ?? .nan },
                                     band: inf.map { $0?.lds.standardError ?? 0 }))
        }
        return plot
    }

    static func decompositionFigure(_ points: [CurvatureStudy.PointResult], sweep: String) -> SVGStackedBars {
        var bars: [String] = [], values: [[Double]] = [], segments: [String] = []
        for p in points {
            guard let d = p.ladder.decompositions.first(where: { $0.damping == CurvatureLadderRun.seedDamping && $0.rule == .clipped })?.decomposition else { continue }
            segments = d.steps.map { "\($0.from) → \($0.to)" }
            bars.append("ΔES \(p.value)"); values.append(d.steps.map { $0.errorSharePercent ?? .nan })
            bars.append("ΔLDS \(p.value)"); values.append(d.steps.map { $0.ldsSharePercent ?? .nan })
        }
        return SVGStackedBars(title: "\(sweep) sweep: each step's share of the error and of the LDS loss (%, λ = 1e-4)",
                              yLabel: "share (%)", bars: bars, segments: segments, values: values)
    }
}
