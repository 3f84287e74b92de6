@testable import AstraDist
import Foundation
import XCTest

/// Axis ticks of the tool's SVG figures: round 1-2-5 values, axes ending on ticks, decades on
/// log axes, labels without rounding noise.
final class SVGTickTests: XCTestCase {
    func testLinearTicksAreRoundAndCoverTheRange() {
        XCTAssertEqual(SVGPlot.roundTicks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1])
        XCTAssertEqual(SVGPlot.roundTicks(0.6, 0.85).map(SVGPlot.tickLabel), ["0.6", "0.65", "0.7", "0.75", "0.8", "0.85"])
        XCTAssertEqual(SVGPlot.roundTicks(-3, 7), [-2, 0, 2, 4, 6])
        XCTAssertEqual(SVGPlot.tickStep(0, 37), 10)
        XCTAssertEqual(SVGPlot.tickStep(0, 0.0013), 0.0005, accuracy: 1e-18)
        XCTAssertEqual(SVGPlot.tickStep(0, 0.0009), 0.0002, accuracy: 1e-18)
        // tickRange widens to round ends, which are then ticks themselves.
        for (lo, hi) in [(0.613, 0.837), (-0.04, 1.3), (12.0, 12.0), (1e-7, 3.3e-7), (-250.0, -10.0)] {
            let (a, b) = SVGPlot.tickRange(lo, hi)
            XCTAssertLessThanOrEqual(a, lo); XCTAssertGreaterThanOrEqual(b, hi)
            let ticks = SVGPlot.roundTicks(a, b)
            XCTAssertEqual(ticks.first!, a, accuracy: 1e-12 * max(abs(a), 1)); XCTAssertEqual(ticks.last!, b, accuracy: 1e-12 * max(abs(b), 1))
            XCTAssertTrue((3...11).contains(ticks.count), "\(lo)…\(hi): \(ticks)")
            let step = SVGPlot.tickStep(a, b), mantissa = step / pow(10, floor(log10(step)))
            XCTAssertTrue([1, 2, 5].contains { abs(mantissa - $0) < 1e-9 }, "step \(step)")
            for t in ticks { XCTAssertFalse(SVGPlot.tickLabel(t).contains("0000"), SVGPlot.tickLabel(t)) }
        }
        XCTAssertEqual(SVGPlot.tickLabel(0.1 * 3), "0.3")
        XCTAssertEqual(SVGPlot.roundTicks(-0.2, 0.2).map(SVGPlot.tickLabel), ["-0.2", "-0.1", "0", "0.1", "0.2"])
    }

    func testLogAxesUseWholeDecades() {
        XCTAssertEqual(SVGPlot.decadeRange(log10(1e-4), log10(0.1)).0, -4)
        XCTAssertEqual(SVGPlot.decadeRange(log10(3e-4), log10(0.05)).1, -1)
        XCTAssertEqual(SVGPlot.decadeRange(0.2, 0.4).1 - SVGPlot.decadeRange(0.2, 0.4).0, 1)
        XCTAssertEqual(SVGPlot.decadeTicks(-4, -1), [-4, -3, -2, -1])
        XCTAssertEqual(SVGPlot.decadeTicks(-4, -1).map(SVGPlot.decadeLabel), ["1e-4", "1e-3", "0.01", "0.1"])
        XCTAssertEqual(SVGPlot.decadeTicks(0, 3).map(SVGPlot.decadeLabel), ["1", "10", "100", "1e3"])
        // Many decades: every 2nd (at most seven labels).
        XCTAssertEqual(SVGPlot.decadeTicks(-12, 0), [-12, -10, -8, -6, -4, -2, 0])
    }

    /// A rendered plot: every tick label is a round value, the legend lies right of the plot area.
    func testARenderedPlotKeepsItsLegendOutside() {
        var plot = SVGPlot(title: "a long title that has to wrap because it is far wider than the figure it sits above, really", xLabel: "λ", yLabel: "LDS", logX: true)
        plot.series = [.init(label: "ekfac", x: [1e-4, 1e-3, 1e-2], y: [0.61, 0.72, 0.7]), .init(label: "astra_iterations=5", x: [1e-4, 1e-2], y: [0.5, 0.8])]
        let svg = plot.render(width: 640)
        let frame = svg.components(separatedBy: "\n").first { $0.hasPrefix("<rect x=") && $0.contains("fill=\"none\"") }!
        let number = { (key: String, line: String) -> Double in
            let r = line.range(of: "\(key)=\"[-0-9.]+\"", options: .regularExpression)!
            return Double(line[r].dropFirst(key.count + 2).dropLast())!
        }
        let right = number("x", frame) + number("width", frame)
        let legend = svg.components(separatedBy: "\n").filter { $0.contains(">astra_iterations=5</text>") || $0.contains(">ekfac</text>") }
        XCTAssertEqual(legend.count, 2)
        for l in legend { XCTAssertGreaterThan(number("x", l.components(separatedBy: "<text").last!), right) }
        XCTAssertGreaterThan(right + 20 + SVGPlot.textWidth("astra_iterations=5"), 0)
        XCTAssertLessThanOrEqual(right + 34 + SVGPlot.textWidth("astra_iterations=5"), 640)
        XCTAssertEqual(svg.components(separatedBy: "font-size=\"14\"").count - 1, 2, "the title wraps onto two lines")
        for label in ["1e-4", "1e-3", "0.01", "0.5", "0.6", "0.7", "0.8"] { XCTAssertTrue(svg.contains(">\(label)</text>"), label) }
    }
}
