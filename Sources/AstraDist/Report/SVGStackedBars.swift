import Foundation

/// A stacked bar chart in SVG: one bar per group, segments stacked upwards from 0 for
/// positive values and downwards for negative ones, legend right of the plot.
public struct SVGStackedBars: Sendable {
    public var title: String
    public var yLabel: String
    /// Bar labels, left to right.
    public var bars: [String]
    /// Segment labels (the legend), bottom to top.
    public var segments: [String]
    /// `values[bar][segment]`; NaN draws nothing.
    public var values: [[Double]]

    public init(title: String, yLabel: String, bars: [String], segments: [String], values: [[Double]]) {
        precondition(values.count == bars.count && values.allSatisfy { $0.count == segments.count }, "SVGStackedBars: values must be bars × segments")
        self.title = title; self.yLabel = yLabel; self.bars = bars; self.segments = segments; self.values = values
    }

    public func render(width: Double = 640, height: Double = 420) -> String {
        let ups = values.map { $0.filter { $0.isFinite && $0 > 0 }.reduce(0, +) }, downs = values.map { $0.filter { $0.isFinite && $0 < 0 }.reduce(0, +) }
        let (y0, y1) = SVGPlot.tickRange(min(downs.min() ?? 0, 0), max(ups.max() ?? 1, 1e-12))
        let yTicks = SVGPlot.roundTicks(y0, y1)
        let left = 34 + (yTicks.map { SVGPlot.textWidth(SVGPlot.tickLabel($0)) }.max() ?? 0)
        let right = 30 + (segments.map { SVGPlot.textWidth($0) }.max() ?? 0)
        let slot0 = (width - left - right) / Double(max(bars.count, 1)), labelWidth = bars.map { SVGPlot.textWidth($0) }.max() ?? 0
        // Bar labels wider than their slot are drawn at 40°, with room below for them.
        let slanted = labelWidth > slot0 - 4
        let top = SVGPlot.titleHeight(title, width: width), bottom = slanted ? 24 + labelWidth * 0.65 : 40.0
        let pw = width - left - right, ph = height - top - bottom
        func py(_ y: Double) -> Double { top + (1 - (y - y0) / (y1 - y0)) * ph }
        let f = SVGPlot.number, esc = SVGPlot.escape
        var s = SVGPlot.frame(width: width, height: height, title: title, left: left, top: top, plotWidth: pw, plotHeight: ph)
        for yv in yTicks {
            s += "<text x=\"\(f(left - 6))\" y=\"\(f(py(yv) + 4))\" text-anchor=\"end\">\(SVGPlot.tickLabel(yv))</text>\n"
            s += "<line x1=\"\(f(left))\" x2=\"\(f(left + pw))\" y1=\"\(f(py(yv)))\" y2=\"\(f(py(yv)))\" stroke=\"#ddd\"/>\n"
        }
        s += "<line x1=\"\(f(left))\" x2=\"\(f(left + pw))\" y1=\"\(f(py(0)))\" y2=\"\(f(py(0)))\" stroke=\"#444\"/>\n"
        s += "<text transform=\"translate(16,\(f(top + ph / 2))) rotate(-90)\" text-anchor=\"middle\">\(esc(yLabel))</text>\n"
        let slot = pw / Double(max(bars.count, 1)), bw = slot * 0.6
        for (b, label) in bars.enumerated() {
            let x = left + Double(b) * slot + (slot - bw) / 2
            var up = 0.0, down = 0.0
            for (k, v) in values[b].enumerated() where v.isFinite && v != 0 {
                let base = v > 0 ? up : down, end = base + v
                s += "<rect x=\"\(f(x))\" y=\"\(f(py(max(base, end))))\" width=\"\(f(bw))\" height=\"\(f(abs(py(base) - py(end))))\" fill=\"\(SVGPlot.colors[k % SVGPlot.colors.count])\"/>\n"
                if v > 0 { up = end } else { down = end }
            }
            s += slanted
                ? "<text transform=\"translate(\(f(x + bw / 2)),\(f(top + ph + 14))) rotate(-40)\" text-anchor=\"end\">\(esc(label))</text>\n"
                : "<text x=\"\(f(x + bw / 2))\" y=\"\(f(top + ph + 16))\" text-anchor=\"middle\">\(esc(label))</text>\n"
        }
        for (k, label) in segments.enumerated() {
            s += "<rect x=\"\(f(left + pw + 12))\" y=\"\(f(top + 4 + Double(k) * 16))\" width=\"12\" height=\"10\" fill=\"\(SVGPlot.colors[k % SVGPlot.colors.count])\"/>"
            s += "<text x=\"\(f(left + pw + 30))\" y=\"\(f(top + 13 + Double(k) * 16))\">\(esc(label))</text>\n"
        }
        return s + "</svg>\n"
    }
}
