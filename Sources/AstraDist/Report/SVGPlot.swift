import Foundation

/// A line plot written as SVG text (no plotting dependency): series with optional ± bands,
/// linear or log₁₀ x axis, a legend. Axes end at round values with ticks at 1-2-5 steps
/// (decades on a log axis); the title wraps, the margins fit the tick labels, and the legend
/// sits in a column right of the plot area, so no text overlaps a curve or is cut off.
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
    /// Kept for callers that set it: the legend is always a column right of the plot area.
    public var legendOutside = true
    public var series: [Series] = []
    public init(title: String, xLabel: String, yLabel: String, logX: Bool = false) {
        self.title = title; self.xLabel = xLabel; self.yLabel = yLabel; self.logX = logX
    }

    /// A coordinate as SVG text (one decimal).
    static func number(_ v: Double) -> String { String(format: "%.1f", v) }
    /// Text escaped for SVG content.
    static func escape(_ s: String) -> String { s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;") }
    /// Approximate width in pixels of `s` in the 12 px sans-serif font (wide enough for digits and capitals).
    static func textWidth(_ s: String, size: Double = 12) -> Double { Double(s.count) * size * 0.56 }

    /// The title in lines that fit `width` at 14 px (broken at spaces).
    static func titleLines(_ title: String, width: Double) -> [String] {
        var lines: [String] = [], line = ""
        for word in title.split(separator: " ") {
            let candidate = line.isEmpty ? String(word) : line + " " + word
            if textWidth(candidate, size: 14) > width - 20, !line.isEmpty { lines.append(line); line = String(word) } else { line = candidate }
        }
        return lines + (line.isEmpty ? [] : [line])
    }
    /// Height taken by the wrapped title above the plot area.
    static func titleHeight(_ title: String, width: Double) -> Double { 14 + 18 * Double(titleLines(title, width: width).count) }

    /// The opening of every figure: the `<svg>` element, a white background, the wrapped title
    /// and the plot area's frame (`plotWidth` × `plotHeight` at `left`, `top`).
    static func frame(width: Double, height: Double, title: String, left: Double, top: Double, plotWidth: Double, plotHeight: Double) -> String {
        let f = number
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
            + "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        for (i, line) in titleLines(title, width: width).enumerated() {
            s += "<text x=\"\(f(width / 2))\" y=\"\(f(22 + 18 * Double(i)))\" text-anchor=\"middle\" font-size=\"14\">\(escape(line))</text>\n"
        }
        return s + "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotWidth))\" height=\"\(f(plotHeight))\" fill=\"none\" stroke=\"#444\"/>\n"
    }

    static let colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]

    public func render(width: Double = 640, height: Double = 420) -> String {
        let fx: (Double) -> Double = { logX ? log10(max($0, 1e-300)) : $0 }
        let xs = series.flatMap { s in s.x.indices.filter { s.y[$0].isFinite }.map { fx(s.x[$0]) } }.filter(\.isFinite)
        let ys = series.flatMap { s in s.y.indices.flatMap { i in [s.y[i] - (s.band?[i] ?? 0), s.y[i] + (s.band?[i] ?? 0)] } }.filter(\.isFinite)
        let (x0, x1) = logX ? Self.decadeRange(xs.min() ?? 0, xs.max() ?? 1) : Self.tickRange(xs.min() ?? 0, xs.max() ?? 1)
        let (y0, y1) = Self.tickRange(ys.min() ?? 0, ys.max() ?? 1)
        let yTicks = Self.roundTicks(y0, y1), xTicks = logX ? Self.decadeTicks(x0, x1) : Self.roundTicks(x0, x1)
        let yLabels = yTicks.map(Self.tickLabel), xLabels = xTicks.map { logX ? Self.decadeLabel($0) : Self.tickLabel($0) }
        let legendWidth = series.isEmpty ? 0 : 36 + (series.map { Self.textWidth($0.label) }.max() ?? 0)
        let left = 34 + (yLabels.map { Self.textWidth($0) }.max() ?? 0), right = 16 + legendWidth
        let top = Self.titleHeight(title, width: width), bottom = 50.0
        let pw = width - left - right, ph = height - top - bottom
        func px(_ x: Double) -> Double { left + (fx(x) - x0) / (x1 - x0) * pw }
        func py(_ y: Double) -> Double { top + (1 - (y - y0) / (y1 - y0)) * ph }
        let f = SVGPlot.number, esc = SVGPlot.escape
        var s = SVGPlot.frame(width: width, height: height, title: title, left: left, top: top, plotWidth: pw, plotHeight: ph)
        for (yv, label) in zip(yTicks, yLabels) {
            s += "<line x1=\"\(f(left))\" x2=\"\(f(left + pw))\" y1=\"\(f(py(yv)))\" y2=\"\(f(py(yv)))\" stroke=\"#e4e4e4\"/>\n"
            s += "<text x=\"\(f(left - 6))\" y=\"\(f(py(yv) + 4))\" text-anchor=\"end\">\(label)</text>\n"
        }
        for (xv, label) in zip(xTicks, xLabels) {
            let x = left + (xv - x0) / (x1 - x0) * pw
            s += "<line x1=\"\(f(x))\" x2=\"\(f(x))\" y1=\"\(f(top + ph))\" y2=\"\(f(top + ph + 4))\" stroke=\"#444\"/>\n"
            s += "<text x=\"\(f(x))\" y=\"\(f(top + ph + 17))\" text-anchor=\"middle\">\(label)</text>\n"
        }
        s += "<text x=\"\(f(left + pw / 2))\" y=\"\(f(height - 10))\" text-anchor=\"middle\">\(esc(xLabel))\(logX ? " (log scale)" : "")</text>\n"
        s += "<text transform=\"translate(14,\(f(top + ph / 2))) rotate(-90)\" text-anchor=\"middle\">\(esc(yLabel))</text>\n"
        for (k, ser) in series.enumerated() {
            let c = Self.colors[k % Self.colors.count]
            let shown = ser.x.indices.filter { ser.y[$0].isFinite && fx(ser.x[$0]).isFinite }
            if let band = ser.band, !shown.isEmpty {
                let upper = shown.map { "\(f(px(ser.x[$0]))),\(f(py(ser.y[$0] + band[$0])))" }
                let lower = shown.reversed().map { "\(f(px(ser.x[$0]))),\(f(py(ser.y[$0] - band[$0])))" }
                s += "<polygon points=\"\((upper + lower).joined(separator: " "))\" fill=\"\(c)\" fill-opacity=\"0.2\" stroke=\"none\"/>\n"
            }
            let pts = shown.map { "\(f(px(ser.x[$0]))),\(f(py(ser.y[$0])))" }
            s += "<polyline points=\"\(pts.joined(separator: " "))\" fill=\"none\" stroke=\"\(c)\" stroke-width=\"2\"/>\n"
            if markers { for pt in pts { let xy = pt.split(separator: ","); s += "<circle cx=\"\(xy[0])\" cy=\"\(xy[1])\" r=\"3.5\" fill=\"\(c)\"/>" } }
            let lx = left + pw + 14
            s += "<rect x=\"\(f(lx))\" y=\"\(f(top + 8 + Double(k) * 18))\" width=\"14\" height=\"3\" fill=\"\(c)\"/>"
            s += "<text x=\"\(f(lx + 20))\" y=\"\(f(top + 13 + Double(k) * 18))\">\(esc(ser.label))</text>\n"
        }
        return s + "</svg>\n"
    }

    /// The 1-2-5 step (1, 2 or 5 × 10^k) that gives about five intervals over `[lo, hi]`.
    public static func tickStep(_ lo: Double, _ hi: Double) -> Double {
        let raw = (hi - lo) / 5, p = pow(10, floor(log10(raw)))
        return [1.0, 2, 5, 10].map { $0 * p }.first { $0 >= raw * (1 - 1e-9) } ?? 10 * p
    }

    /// `[lo, hi]` widened to multiples of its tick step, so the axis ends on labelled round
    /// values; a single value becomes a unit-wide range around it.
    public static func tickRange(_ lo: Double, _ hi: Double) -> (Double, Double) {
        guard lo.isFinite, hi.isFinite else { return (0, 1) }
        var (a, b) = (min(lo, hi), max(lo, hi))
        if b - a < 1e-12 * max(abs(a), 1) { let pad = a == 0 ? 1 : abs(a) * 0.1; a -= pad; b += pad }
        // Widening can raise the step of the widened range; repeat until it is stable, so that
        // `roundTicks` of the result starts and ends at its ends.
        for _ in 0..<4 {
            let step = tickStep(a, b)
            let (wa, wb) = (tick(Int((a / step + 1e-9).rounded(.down)), step), tick(Int((b / step - 1e-9).rounded(.up)), step))
            if tickStep(wa, wb) == step { return (wa, wb) }
            (a, b) = (wa, wb)
        }
        return (a, b)
    }

    /// k × step without rounding noise: for steps below 1 as k / (1/step), an exact integer
    /// division (so 3 × 0.2 is 0.6, not 0.6000000000000001).
    static func tick(_ k: Int, _ step: Double) -> Double {
        if k == 0 { return 0 }
        return step < 1 ? Double(k) / (1 / step).rounded() : Double(k) * step
    }

    /// Round ticks (steps 1, 2 or 5 × 10^k, about five) inside `[lo, hi]`, each a multiple of
    /// the step computed as index × step (no accumulated rounding; −0 printed as 0).
    public static func roundTicks(_ lo: Double, _ hi: Double) -> [Double] {
        guard hi > lo, lo.isFinite, hi.isFinite else { return [lo] }
        let step = tickStep(lo, hi)
        let first = Int((lo / step - 1e-9).rounded(.up)), last = Int((hi / step + 1e-9).rounded(.down))
        guard first <= last else { return [] }
        return (first...last).map { tick($0, step) }
    }

    /// A tick value as text: at most 6 significant digits, so `0.30000000000000004` reads `0.3`.
    public static func tickLabel(_ v: Double) -> String { String(format: "%g", v) }

    /// Whole decades (log10 units) covering `[lo, hi]`, at least one decade wide.
    public static func decadeRange(_ lo: Double, _ hi: Double) -> (Double, Double) {
        guard lo.isFinite, hi.isFinite else { return (0, 1) }
        let a = floor(min(lo, hi) + 1e-9), b = ceil(max(lo, hi) - 1e-9)
        return (a, max(b, a + 1))
    }

    /// Integer exponents in `[lo, hi]` (log10 units), every decade or every 2nd, 3rd, … so
    /// that at most seven are labelled.
    public static func decadeTicks(_ lo: Double, _ hi: Double) -> [Double] {
        let a = Int(ceil(lo - 1e-9)), b = Int(floor(hi + 1e-9))
        guard a <= b else { return [] }
        let every = max(1, Int((Double(b - a + 1) / 7).rounded(.up)))
        return stride(from: a, through: b, by: every).map(Double.init)
    }

    /// The label of decade `k`: `0.01`, `0.1`, `1`, `10`, `100`, else `1e-4`, `1e5`.
    public static func decadeLabel(_ k: Double) -> String {
        abs(k) <= 2 ? String(format: "%g", pow(10, k)) : "1e\(Int(k))"
    }
}
