import Foundation

/// Horizontal bars with ± whiskers (the report's LDS table as a chart): one bar per label,
/// labels left of the axis so long result names never overlap the bars.
public struct SVGBars: Sendable {
    public var title: String
    public var xLabel: String
    public var labels: [String]
    public var values: [Double]
    /// Half-widths of the whiskers (e.g. standard errors); NaN or 0 draws none.
    public var errors: [Double]

    public init(title: String, xLabel: String, labels: [String], values: [Double], errors: [Double]) {
        precondition(labels.count == values.count && values.count == errors.count, "SVGBars: one value and error per label")
        self.title = title; self.xLabel = xLabel; self.labels = labels; self.values = values; self.errors = errors
    }

    public func render(width: Double = 720) -> String {
        let row = 22.0, top = 40.0, bottom = 46.0, right = 30.0
        // Room for the longest label at about 7 px per character of the 12 px font.
        let left = min(max(80, Double(labels.map(\.count).max() ?? 0) * 7 + 16), width / 2)
        let height = top + bottom + row * Double(max(labels.count, 1))
        let pw = width - left - right, ph = height - top - bottom
        let ends = values.indices.flatMap { i -> [Double] in
            let e = errors[i].isFinite ? errors[i] : 0
            return values[i].isFinite ? [values[i] - e, values[i] + e] : []
        }
        let (x0, x1) = SVGPlot.tickRange(min(ends.min() ?? 0, 0), max(ends.max() ?? 1, 0))
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * pw }
        let f = SVGPlot.number, esc = SVGPlot.escape
        var s = SVGPlot.frame(width: width, height: height, title: title, left: left, top: top, plotWidth: pw, plotHeight: ph)
        for xv in SVGPlot.roundTicks(x0, x1) {
            s += "<line x1=\"\(f(px(xv)))\" x2=\"\(f(px(xv)))\" y1=\"\(f(top))\" y2=\"\(f(top + ph))\" stroke=\"#ddd\"/>\n"
            s += "<text x=\"\(f(px(xv)))\" y=\"\(f(top + ph + 16))\" text-anchor=\"middle\">\(SVGPlot.tickLabel(xv))</text>\n"
        }
        s += "<line x1=\"\(f(px(0)))\" x2=\"\(f(px(0)))\" y1=\"\(f(top))\" y2=\"\(f(top + ph))\" stroke=\"#444\"/>\n"
        s += "<text x=\"\(f(left + pw / 2))\" y=\"\(f(height - 10))\" text-anchor=\"middle\">\(esc(xLabel))</text>\n"
        for (i, label) in labels.enumerated() {
            let y = top + Double(i) * row, c = SVGPlot.colors[i % SVGPlot.colors.count]
            s += "<text x=\"\(f(left - 6))\" y=\"\(f(y + row / 2 + 4))\" text-anchor=\"end\">\(esc(label))</text>\n"
            guard values[i].isFinite else { continue }
            let a = px(min(0, values[i])), b = px(max(0, values[i]))
            s += "<rect x=\"\(f(a))\" y=\"\(f(y + 4))\" width=\"\(f(max(b - a, 0.5)))\" height=\"\(f(row - 8))\" fill=\"\(c)\"/>\n"
            if errors[i].isFinite, errors[i] > 0 {
                let lo = px(values[i] - errors[i]), hi = px(values[i] + errors[i]), ym = y + row / 2
                s += "<path d=\"M\(f(lo)),\(f(ym))H\(f(hi))M\(f(lo)),\(f(ym - 4))V\(f(ym + 4))M\(f(hi)),\(f(ym - 4))V\(f(ym + 4))\" stroke=\"#222\" fill=\"none\"/>\n"
            }
        }
        return s + "</svg>\n"
    }
}
