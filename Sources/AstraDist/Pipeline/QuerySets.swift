import Foundation

extension ScoreStage {
    /// Parses `--queries`: held-out row positions (`0-99,250`) or a file in a setting's format:
    /// `csv:PATH` (the setting's target column, standardised with training statistics),
    /// `digits:PATH` (sklearn's digits layout) or `idx:IMAGES,LABELS`; checked against the
    /// model's input size. `name` defaults to `custom-` and a hash of the spec.
    ///
    /// `untargeted` (`--untargeted`): the set is measured without its targets
    /// (`Measurement.untargeted`); without a spec it is the workspace's queries, named
    /// `untargeted` unless `name`. Returns nil for neither (the workspace's own queries).
    public static func querySet(spec: String?, name: String?, untargeted: Bool, ctx: RunContext) throws -> QuerySet? {
        guard let spec else {
            guard untargeted else { return nil }
            let setName = name ?? "untargeted"
            try validateSetName(setName)
            return QuerySet(name: setName, data: ctx.data.queries, sources: ctx.data.queries.globalIndex.map { "test:\($0)" }, untargeted: true)
        }
        var set = try querySet(spec: spec, name: name ?? (untargeted ? "untargeted-" + String(ContentHash.of(spec).prefix(8)) : nil), ctx: ctx)
        set.untargeted = untargeted
        return set
    }

    /// A query set's name: a valid name without dots, not `default`.
    static func validateSetName(_ setName: String) throws {
        try ResultName.validate(setName, what: "--queries-name")
        guard setName != "default", !setName.contains(".") else {
            throw AstraError("--queries-name '\(setName)' must not be 'default' (the workspace's own queries) nor contain a dot (it ends a file stem)")
        }
    }

    public static func querySet(spec: String, name: String?, ctx: RunContext) throws -> QuerySet {
        guard !spec.isEmpty else {
            throw AstraError("--queries is empty; pass held-out rows like 0-99,250, or csv:PATH, digits:PATH or idx:IMAGES,LABELS")
        }
        let setName = name ?? "custom-" + String(ContentHash.of(spec).prefix(8))
        try validateSetName(setName)
        var data: Dataset, sources: [String]
        if spec.hasPrefix("csv:") {
            let path = String(spec.dropFirst(4))
            guard let target = ctx.config.target else { throw AstraError("--queries csv:PATH needs a CSV setting (this workspace is \(ctx.config.setting))") }
            data = try loadCSVRegression(path: path, target: target, hint: "pass an existing CSV with the training file's columns")
            ctx.data.standardizer?.apply(&data)
            sources = (0..<data.count).map { "file:\(path)#\($0)" }
        } else if spec.hasPrefix("digits:") {
            let path = String(spec.dropFirst(7))
            data = try loadDigits(path: path, hint: "pass an existing file of 64 pixel values 0–16 and a label per row")
            sources = (0..<data.count).map { "file:\(path)#\($0)" }
        } else if spec.hasPrefix("idx:") {
            let parts = spec.dropFirst(4).split(separator: ",").map(String.init)
            guard parts.count == 2 else { throw AstraError("--queries idx:IMAGES,LABELS needs two files, got '\(spec)'") }
            data = try loadIDXDataset(images: parts[0], labels: parts[1], hint: "pass existing IDX image and label files")
            sources = (0..<data.count).map { "file:\(parts[0])#\($0)" }
        } else {
            let rows = try parseRows(spec, limit: ctx.data.test.count, names: ctx.data.test.globalIndex)
            data = ctx.data.test.subset(rows)
            sources = rows.map { "test:\(ctx.data.test.globalIndex[$0])" }
        }
        guard data.featureCount == ctx.shape.inputCount, data.task == ctx.data.train.task else {
            throw AstraError("--queries \(spec): \(data.featureCount) features per row, the model takes \(ctx.shape.inputCount)")
        }
        guard data.count > 0 else { throw AstraError("--queries \(spec) selects no rows") }
        return QuerySet(name: setName, data: data, sources: sources)
    }

    /// Positions (`0-99,250`) and the names the tool prints (`test:193`: the held-out row whose
    /// source row is 193, `names[position]`), mixed freely.
    static func parseRows(_ spec: String, limit: Int, names: [Int]) throws -> [Int] {
        var rows: [Int] = []
        for part in spec.split(separator: ",", omittingEmptySubsequences: false) {
            if part.hasPrefix("test:") {
                guard let k = Int(part.dropFirst(5)), let position = names.firstIndex(of: k) else {
                    throw AstraError("--queries \(part): no held-out row of this workspace is named so (names are test:K as score files list them; positions 0-\(limit - 1) also work)")
                }
                rows.append(position); continue
            }
            let ends = part.split(separator: "-", omittingEmptySubsequences: false).map { Int($0) }
            guard (1...2).contains(ends.count), ends.allSatisfy({ $0 != nil && $0! >= 0 }), ends.last!! >= ends.first!! else {
                throw AstraError("--queries expects held-out rows like 0-99,250, csv:PATH, digits:PATH or idx:IMAGES,LABELS; got '\(spec)'")
            }
            rows += Array(ends.first!!...ends.last!!)
        }
        guard let worst = rows.max(), worst < limit else { throw AstraError("--queries: row \(rows.max() ?? 0) is beyond the \(limit) held-out rows") }
        return rows
    }
}
