import Foundation

/// The HTML of `report` (`ReportStage`): plain HTML and CSS, images as PNG files and SVG
/// figures, so the site opens from the file system in any browser. One tiny inline script
/// records each image's decoded width in the DOM (`data-natural-width`) for the browser
/// test; the pages do not need it.
struct ReportPages {
    /// One result (`scores/NAME/`) as the report shows it.
    struct Result {
        var name: String
        var method: String
        var damping: Double
        var lds: LDSStage.MethodResult?
        /// The first `--queries` queries' lists, `--top` entries each.
        var top: [ScoreStage.TopQuery]
        /// Whether the lists come from `top.json` (else from the scores, by the same ordering).
        var fromTopFile: Bool
    }

    let ctx: RunContext
    let results: [Result]
    let curves: [DampingCurves.Curve]
    let plots: [(name: String, svg: [UInt8])]
    let queries: Int
    let seed: UInt64

    static let style = """
    body{font-family:sans-serif;margin:24px;color:#222;max-width:1400px}
    table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
    th{background:#f3f3f3}.num{text-align:right;font-variant-numeric:tabular-nums}
    img.px{image-rendering:pixelated;width:56px;height:56px;border:1px solid #999}
    img.query{width:112px;height:112px}.pos{color:#1a7f37}.neg{color:#b42318}
    .methods{display:flex;gap:16px;flex-wrap:wrap}.methods>div{border:1px solid #ddd;padding:8px}
    figure{margin:8px 16px 8px 0;display:inline-block;vertical-align:top}small{color:#666}pre{white-space:pre-wrap}
    """

    /// Records every image's decoded size (0 = missing or undecodable) for the browser test.
    static let probe = """
    <script>window.addEventListener('load',function(){var im=document.images,bad=0;for(var i=0;i<im.length;i++){var w=im[i].naturalWidth;im[i].setAttribute('data-natural-width',String(w));if(!(w>0))bad++;}document.body.setAttribute('data-images',String(im.length));document.body.setAttribute('data-broken-images',String(bad));});</script>
    """

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
    static func page(_ title: String, _ body: String) -> [UInt8] {
        Array("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>\(escape(title))</title><style>\(style)</style></head>\n<body>\n\(body)\n\(probe)\n</body></html>\n".utf8)
    }
    static func fmt(_ v: Double, _ digits: Int = 3) -> String { v.isFinite ? String(format: "%.\(digits)f", v) : "—" }

    /// Every file of the site, by path relative to the output directory.
    func files() -> [String: [UInt8]] {
        var files: [String: [UInt8]] = [:]
        let dir = ReportStage.filesDirectory
        let examples = ExampleImages(data: ctx.data, config: ctx.config)
        files["index.html"] = index(dir: dir)
        let withLDS = results.filter { $0.lds != nil }
        if !withLDS.isEmpty {
            files[dir + "/lds.svg"] = Array(SVGBars(title: "LDS of each result (1 model, ± s.e. over queries)", xLabel: "LDS", labels: withLDS.map(\.name),
                                                    values: withLDS.map { $0.lds!.single.mean }, errors: withLDS.map { $0.lds!.single.standardError }).render().utf8)
        }
        if !curves.isEmpty { files[dir + "/damping.svg"] = Array(DampingCurves.figure(curves).render(width: 720).utf8) }
        for p in plots { files[dir + "/plots/" + p.name] = p.svg }
        for i in 0..<queries {
            files[dir + "/query-\(i).html"] = queryPage(i, examples: examples)
            if examples.isImage { files[dir + "/img/query-\(i).png"] = examples.png(query: i) }
            for r in results { for e in r.top[i].helpful + r.top[i].harmful where examples.isImage { files[dir + "/img/train-\(e.column).png"] = examples.png(train: e.column) } }
        }
        return files
    }

    func index(dir: String) -> [UInt8] {
        let ws = ctx.workspace.root
        var b = "<h1>astra-dist report: \(Self.escape(ctx.config.setting))</h1>\n<p>Workspace <code>\(Self.escape(ws))</code>, model seed \(seed); "
        b += "\(ctx.data.train.count) training examples, \(ctx.data.queries.count) queries. A positive score means the training example <b>helps</b> the query (lowers its loss-like measurement).</p>\n"
        b += "<h2>LDS</h2>\n"
        if results.contains(where: { $0.lds != nil }) {
            b += "<table id=\"lds\"><tr><th>result</th><th>method</th><th>λ</th><th>seeds</th><th>LDS (1 model)</th><th>LDS (ensemble)</th><th>ground truth M×R</th></tr>\n"
            for r in results {
                guard let l = r.lds else { b += "<tr><td>\(Self.escape(r.name))</td><td>\(r.method)</td><td class=\"num\">\(ResultName.canonical(r.damping))</td><td colspan=\"4\"><small>no lds/\(Self.escape(r.name)).json: run <code>astra-dist lds</code></small></td></tr>\n"; continue }
                let ens = l.ensemble.map { "\(Self.fmt($0.mean)) ± \(Self.fmt($0.standardError))" } ?? "—"
                b += "<tr><td>\(Self.escape(r.name))</td><td>\(r.method)</td><td class=\"num\">\(ResultName.canonical(r.damping))</td><td class=\"num\">\(l.seeds.count)</td>"
                b += "<td class=\"num\">\(Self.fmt(l.single.mean)) ± \(Self.fmt(l.single.standardError))</td><td class=\"num\">\(ens)</td><td class=\"num\">\(l.subsets)×\(l.repeats)</td></tr>\n"
            }
            b += "</table>\n<figure><img id=\"lds-bars\" src=\"\(dir)/lds.svg\" alt=\"LDS bars\"></figure>\n"
        } else {
            b += "<p>No LDS yet: run <code>astra-dist groundtruth --workdir \(Self.escape(ws))</code> and <code>astra-dist lds --workdir \(Self.escape(ws))</code>.</p>\n"
        }
        if !curves.isEmpty {
            b += "<h2>LDS against the damping λ</h2>\n<figure><img id=\"damping\" src=\"\(dir)/damping.svg\" alt=\"LDS against damping\"></figure>\n"
            b += "<pre>\(Self.escape(DampingCurves.table(curves)))</pre>\n"
        }
        if !plots.isEmpty {
            b += "<h2>Figures</h2>\n"
            for p in plots { b += "<figure><img class=\"plot\" src=\"\(dir)/plots/\(Self.escape(p.name))\" alt=\"\(Self.escape(p.name))\"><figcaption><small>\(Self.escape(p.name))</small></figcaption></figure>\n" }
        }
        b += "<h2>Queries</h2>\n<p>The first \(queries) of the workspace's queries; per result the most helpful and most harmful training examples (seed \(seed)).</p>\n<ul id=\"queries\">\n"
        for i in 0..<queries {
            let t = results[0].top[i]
            b += "<li><a href=\"\(dir)/query-\(i).html\">\(Self.escape(t.query))</a>: \(label(t.target)), predicted \(label(t.prediction))</li>\n"
        }
        return Self.page("astra-dist report", b + "</ul>\n")
    }

    func queryPage(_ i: Int, examples: ExampleImages) -> [UInt8] {
        let q = results[0].top[i]
        var b = "<p><a href=\"../index.html\">← index</a>"
        if i > 0 { b += " · <a href=\"query-\(i - 1).html\">previous</a>" }
        if i + 1 < queries { b += " · <a href=\"query-\(i + 1).html\">next</a>" }
        b += "</p>\n<h1>Query \(Self.escape(q.query))</h1>\n<div id=\"query\">"
        b += examples.isImage ? "<img class=\"px query\" src=\"img/query-\(i).png\" alt=\"query \(Self.escape(q.query))\">" : examples.rowTable(query: i)
        b += "<p>\(ctx.data.queries.task == .classification ? "label" : "target") <b>\(label(q.target))</b>, model's prediction <b>\(label(q.prediction))</b></p></div>\n<div class=\"methods\">\n"
        for r in results {
            let t = r.top[i]
            b += "<div><h2>\(Self.escape(r.name))</h2><small>\(r.fromTopFile ? "from top.json" : "ordered from the scores as score --top orders them")</small>\n"
            for (kind, list) in [("helpful", t.helpful), ("harmful", t.harmful)] {
                b += "<h3>most \(kind)</h3>\n<table class=\"topk\" data-result=\"\(Self.escape(r.name))\" data-kind=\"\(kind)\"><tr><th>example</th><th>row</th><th>label</th><th>predicted</th><th>score</th></tr>\n"
                for e in list {
                    let cell = examples.isImage ? "<img class=\"px\" src=\"img/train-\(e.column).png\" alt=\"training row \(e.row)\">" : examples.rowTable(train: e.column)
                    b += "<tr class=\"entry\"><td>\(cell)</td><td class=\"num\">\(e.row)</td><td class=\"num\">\(label(e.target))</td><td class=\"num\">\(label(e.prediction))</td>"
                    b += "<td class=\"num \(e.score >= 0 ? "pos" : "neg")\">\(String(format: "%.4g", e.score))</td></tr>\n"
                }
                b += "</table>\n"
            }
            b += "</div>\n"
        }
        return Self.page("query \(q.query)", b + "</div>\n")
    }

    /// A label or target as shown: the class, or the regression target in the data's units.
    func label(_ v: Double) -> String {
        if ctx.data.train.task == .classification { return "\(Int(v))" }
        let s = ctx.data.standardizer
        return String(format: "%.4g", s.map { v * $0.targetStd[0] + $0.targetMean[0] } ?? v)
    }
}
