import Foundation

/// A line plot written as SVG text (no plotting dependency): series with optional ± bands,
/// linear or log₁₀ x axis, a legend. Enough for convergence curves.
public struct SVGPlot: Sendable {
    public struct Series: Sendable {
        public var label: String
        public var x: [Double]
        public var y: [Double]
        /// Half-width of the band around y (e.g. a standard error), or nil.
        public var band: [Double]?
        public init(label: String, x: [Double], y: [Double], band: [Double]? = nil) {
            self.label = label; self.x = x; self.y = y; self.band = band
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var logX = false
    /// Draw a dot at every point (for series of a few points).
    public var markers = false
    /// Put the legend in a column right of the plot area, clear of the curves.
    public var legendOutside = false
    public var series: [Series] = []
    public init(title: String, xLabel: String, yLabel: String, logX: Bool = false) {
        self.title = title; self.xLabel = xLabel; self.yLabel = yLabel; self.logX = logX
    }

    /// A coordinate as SVG text (one decimal).
    static func number(_ v: Double) -> String { String(format: "%.1f", v) }
    /// Text escaped for SVG content.
    static func escape(_ s: String) -> String { s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;") }
    /// The opening of every figure: the `<svg>` element, a white background, the title and the
    /// plot area's frame (`plotWidth` × `plotHeight` at `left`, `top`).
    static func frame(width: Double, height: Double, title: String, left: Double, top: Double, plotWidth: Double, plotHeight: Double) -> String {
        let f = number
        return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
            + "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
            + "<text x=\"\(f(width / 2))\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">\(escape(title))</text>\n"
            + "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotWidth))\" height=\"\(f(plotHeight))\" fill=\"none\" stroke=\"#444\"/>\n"
    }

    static let colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]

    public func render(width: Double = 640, height: Double = 420) -> String {
        let left = 70.0, right = legendOutside ? 170.0 : 20.0, top = 36.0, bottom = 50.0
        let fx: (Double) -> Double = { logX ? log10(max($0, 1e-12)) : $0 }
        let xs = series.flatMap { $0.x.map(fx) }
        let ys = series.flatMap { s in s.y.indices.flatMap { i in [s.y[i] - (s.band?[i] ?? 0), s.y[i] + (s.band?[i] ?? 0)] } }.filter(\.isFinite)
        let x0 = xs.min() ?? 0, x1 = max(xs.max() ?? 1, x0 + 1e-12)
        let y0 = ys.min() ?? 0, y1 = max(ys.max() ?? 1, y0 + 1e-12)
        let pw = width - left - right, ph = height - top - bottom
        func px(_ x: Double) -> Double { left + (fx(x) - x0) / (x1 - x0) * pw }
        func py(_ y: Double) -> Double { top + (1 - (y - y0) / (y1 - y0)) * ph }
        let f = SVGPlot.number, esc = SVGPlot.escape
        var s = SVGPlot.frame(width: width, height: height, title: title, left: left, top: top, plotWidth: pw, plotHeight: ph)
        // Tick labels at round values: 1-2-5 steps (linear), powers of ten (log).
        for yv in Self.roundTicks(y0, y1) {
            s += "<text x=\"\(f(left - 6))\" y=\"\(f(py(yv) + 4))\" text-anchor=\"end\">\(String(format: "%g", yv))</text>\n"
        }
        for xv in logX ? Self.decadeTicks(x0, x1) : Self.roundTicks(x0, x1) {
            let xl = logX ? pow(10, xv) : xv
            s += "<text x=\"\(f(left + (xv - x0) / (x1 - x0) * pw))\" y=\"\(f(top + ph + 16))\" text-anchor=\"middle\">\(String(format: "%g", xl))</text>\n"
        }
        s += "<text x=\"\(f(left + pw / 2))\" y=\"\(f(height - 10))\" text-anchor=\"middle\">\(esc(xLabel))\(logX ? " (log scale)" : "")</text>\n"
        s += "<text transform=\"translate(16,\(f(top + ph / 2))) rotate(-90)\" text-anchor=\"middle\">\(esc(yLabel))</text>\n"
        for (k, ser) in series.enumerated() {
            let c = Self.colors[k % Self.colors.count]
            if let band = ser.band, !ser.x.isEmpty {
                let upper = ser.x.indices.map { "\(f(px(ser.x[$0]))),\(f(py(ser.y[$0] + band[$0])))" }
                let lower = ser.x.indices.reversed().map { "\(f(px(ser.x[$0]))),\(f(py(ser.y[$0] - band[$0])))" }
                s += "<polygon points=\"\((upper + lower).joined(separator: " "))\" fill=\"\(c)\" fill-opacity=\"0.2\" stroke=\"none\"/>\n"
            }
            let pts = ser.x.indices.filter { ser.y[$0].isFinite }.map { "\(f(px(ser.x[$0]))),\(f(py(ser.y[$0])))" }
            s += "<polyline points=\"\(pts.joined(separator: " "))\" fill=\"none\" stroke=\"\(c)\" stroke-width=\"2\"/>\n"
            if markers { for pt in pts { let xy = pt.split(separator: ","); s += "<circle cx=\"\(xy[0])\" cy=\"\(xy[1])\" r=\"3.5\" fill=\"\(c)\"/>" } }
            let lx = legendOutside ? left + pw + 12 : left + 10
            s += "<rect x=\"\(f(lx))\" y=\"\(f(top + 8 + Double(k) * 16))\" width=\"14\" height=\"3\" fill=\"\(c)\"/>"
            s += "<text x=\"\(f(lx + 20))\" y=\"\(f(top + 13 + Double(k) * 16))\">\(esc(ser.label))</text>\n"
        }
        return s + "</svg>\n"
    }

    /// About five round ticks (steps 1, 2 or 5 × 10^k) inside `[lo, hi]`.
    public static func roundTicks(_ lo: Double, _ hi: Double) -> [Double] {
        guard hi > lo, lo.isFinite, hi.isFinite else { return [lo] }
        let raw = (hi - lo) / 5, p = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * p }.first { $0 >= raw } ?? 10 * p
        var t = ceil(lo / step - 1e-9) * step, out: [Double] = []
        while t <= hi + 1e-9 * step { out.append(abs(t) < 1e-12 * step ? 0 : t); t += step }
        return out
    }

    /// Integer exponents inside `[lo, hi]` (log10 units), at least the two ends.
    static func decadeTicks(_ lo: Double, _ hi: Double) -> [Double] {
        let d = Array(stride(from: ceil(lo), through: floor(hi), by: 1.0))
        return d.count >= 2 ? d : [lo, hi]
    }
}
