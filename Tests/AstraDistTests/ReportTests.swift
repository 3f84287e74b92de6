import AstraDist
import Foundation
import XCTest

/// `astra-dist report`, rendered by a real browser (headless Chromium, Debian's `chromium`):
/// the pages load, every image and plot is present and decodes, the top-k tables have their
/// rows. Under CI (CI=true) a missing chromium fails; elsewhere the browser part is skipped
/// with the reason printed.
final class ReportTests: XCTestCase {
    /// The browser, or nil (after failing under CI) when it is not installed.
    func browser() -> String? {
        if let path = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first(where: FileManager.default.isExecutableFile) { return path }
        if ProcessInfo.processInfo.environment["CI"] == "true" {
            XCTFail("chromium is not installed; CI installs it (.ci/run: apt-get install -y chromium)")
        } else {
            print("ReportTests: skipping the browser checks: chromium is not installed (apt-get install -y chromium)")
        }
        return nil
    }

    /// Runs headless Chromium on `url` with `args` (a private profile, killed after `timeout`); its stdout.
    func render(_ chromium: String, _ url: String, _ args: [String], timeout: Double = 120) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: chromium)
        let profile = TestSupport.temporaryDirectory("chromium-profile")
        p.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(profile)", "--virtual-time-budget=5000"] + args + [url]
        let out = Pipe()
        p.standardOutput = out; p.standardError = FileHandle.nullDevice
        try p.run()
        nonisolated(unsafe) var data = Data()
        let group = DispatchGroup()
        group.enter(); DispatchQueue.global().async { data = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(50_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL); XCTFail("chromium timed out on \(url)") }
        p.waitUntilExit(); group.wait()
        return String(decoding: data, as: UTF8.self)
    }

    /// Every `<img>` of a dumped DOM with its recorded decoded width.
    func images(_ dom: String) -> [(tag: String, width: Int)] {
        let regex = try! NSRegularExpression(pattern: "<img[^>]*>")
        return regex.matches(in: dom, range: NSRange(dom.startIndex..., in: dom)).map { m in
            let tag = String(dom[Range(m.range, in: dom)!])
            let width = tag.range(of: "data-natural-width=\"[0-9]+\"", options: .regularExpression)
                .map { Int(tag[$0].dropFirst(20).dropLast())! } ?? -1
            return (tag, width)
        }
    }

    func testReportRendersInABrowser() throws {
        let w = TestSupport.temporaryDirectory("report") + "/ws"
        // A small digits workspace: two methods, a damping list (one with top.json), ground truth, a convergence plot.
        for args in [["run", "--workdir", w, "--method", "identity,ekfac", "--train-size", "240", "--query-size", "12", "--epochs", "3", "--masks", "10", "--repeats", "1"],
                     ["score", "--workdir", w, "--method", "ekfac", "--damping", "1e-3,1e-1", "--top", "4"],
                     ["convergence", "--workdir", w, "--queries-count", "2", "--solver-seeds", "1", "--astra-iterations", "4", "--sni-iterations", "4", "--sni-rates", "0.01"],
                     ["lds", "--workdir", w]] {
            let r = try TestSupport.run(args)
            XCTAssertEqual(r.status, 0, "\(args[0]): \(r.stderr)")
        }
        let r = try TestSupport.run(["report", "--workdir", w, "--top", "3", "--queries-count", "2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("wrote \(w)/report/index.html"), r.stdout)
        let index = w + "/report/index.html", files = w + "/report/report-files"
        for f in ["lds.svg", "damping.svg", "plots/report-convergence-lds.svg", "query-0.html", "query-1.html"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: files + "/" + f), f)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: files + "/query-2.html"))
        // Under mpirun, rank 0 writes the same site.
        let before = try Data(contentsOf: URL(fileURLWithPath: index))
        let m = try TestSupport.run(["report", "--workdir", w, "--top", "3", "--queries-count", "2"], ranks: 2)
        XCTAssertEqual(m.status, 0, m.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: index)), before)

        guard let chromium = browser() else { return }
        let dom = try render(chromium, "file://" + index, ["--dump-dom"])
        XCTAssertTrue(dom.contains("<h1>astra-dist report: digits</h1>"), String(dom.prefix(500)))
        XCTAssertTrue(dom.contains("data-broken-images=\"0\""), "the load-time probe did not run or found broken images")
        let shown = images(dom)
        // LDS bars, LDS against λ, and the two convergence plots.
        XCTAssertEqual(shown.count, 4, shown.map(\.tag).joined(separator: "\n"))
        for img in shown { XCTAssertGreaterThan(img.width, 0, "not decoded: \(img.tag)") }
        for id in ["lds-bars", "damping"] { XCTAssertTrue(shown.contains { $0.tag.contains("id=\"\(id)\"") }, id) }
        // The LDS table: one row per result (identity, ekfac, ekfac_damping=0.001, ekfac_damping=0.1) and a header.
        let ldsTable = try XCTUnwrap(dom.range(of: "(?s)<table id=\"lds\">.*?</table>", options: .regularExpression).map { String(dom[$0]) })
        XCTAssertEqual(ldsTable.components(separatedBy: "<tr>").count - 1, 5, ldsTable)

        let page = try render(chromium, "file://\(files)/query-1.html", ["--dump-dom"])
        XCTAssertTrue(page.contains("data-broken-images=\"0\""))
        let pictures = images(page)
        // The query and 4 results × (3 helpful + 3 harmful) examples.
        XCTAssertEqual(pictures.count, 1 + 4 * 6)
        for img in pictures { XCTAssertEqual(img.width, 8, "an 8×8 digit: \(img.tag)") }
        let tables = page.components(separatedBy: "<table class=\"topk\"").dropFirst()
        XCTAssertEqual(tables.count, 8)
        for t in tables { XCTAssertEqual(t.components(separatedBy: "</table>")[0].components(separatedBy: "<tr class=\"entry\">").count - 1, 3) }

        let shot = TestSupport.temporaryDirectory("report-shot") + "/index.png"
        _ = try render(chromium, "file://" + index, ["--screenshot=\(shot)", "--window-size=1000,900", "--hide-scrollbars"])
        let png = try Data(contentsOf: URL(fileURLWithPath: shot))
        XCTAssertEqual(Array(png.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        XCTAssertGreaterThan(png.count, 10_000)
    }

    /// No scores: one line, nothing written. A result whose top.json disagrees with its
    /// scores: one line, and the previous site stays whole.
    func testReportRefusesWithOneLineAndKeepsThePreviousSite() throws {
        let w = TestSupport.temporaryDirectory("report-bad") + "/ws"
        XCTAssertEqual(try TestSupport.run(["train", "--workdir", w, "--epochs", "1", "--train-size", "80", "--query-size", "4"]).status, 0)
        let none = try TestSupport.run(["report", "--workdir", w])
        XCTAssertEqual(none.status, 1)
        XCTAssertEqual(none.stderr, "error: report: \(w) has no scores of seed 0; run `astra-dist score --workdir \(w) --method ekfac --top 5` (or run) first\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: w + "/report"))

        XCTAssertEqual(try TestSupport.run(["score", "--workdir", w, "--method", "identity", "--top", "2"]).status, 0)
        let ok = try TestSupport.run(["report", "--workdir", w, "--top", "2", "--queries-count", "2"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        let site = try Data(contentsOf: URL(fileURLWithPath: w + "/report/report-files/query-0.html"))
        // Corrupt top.json: a column that is not its row.
        let top = w + "/scores/identity/seed-0.top.json"
        var text = try String(contentsOfFile: top, encoding: .utf8)
        let row = try XCTUnwrap(text.range(of: "\"row\" : [0-9]+", options: .regularExpression))
        text.replaceSubrange(row, with: "\"row\" : 999999")
        try text.write(toFile: top, atomically: true, encoding: .utf8)
        let bad = try TestSupport.run(["report", "--workdir", w, "--top", "2", "--queries-count", "3"])
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stderr.hasPrefix("error: report: \(top.dropLast(9)).top.json does not match its scores"), bad.stderr)
        XCTAssertEqual(bad.stderr.split(separator: "\n").count, 1)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: w + "/report/report-files/query-0.html")), site)
        XCTAssertFalse(FileManager.default.fileExists(atPath: w + "/report/report-files/query-2.html"))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: w + "/report").filter { $0.contains(".tmp-") }
        XCTAssertEqual(leftovers, [])
    }
}
