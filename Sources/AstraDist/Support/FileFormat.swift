/// Every file format astra-dist reads, each with the parsing entry point the commands use,
/// applied to bytes in memory. The fuzz driver (`astra-fuzz`) and the fuzz-corpus tests feed
/// inputs through `parse`; a format added later gets a case here and is fuzzed with the rest.
public enum FileFormat: String, CaseIterable, Sendable {
    /// gzip streams (`Gzip.decompress`, under every data file).
    case gzip
    /// IDX images or labels (`IDX.parseImages` / `parseLabels` by the magic's last byte).
    case idx
    /// A CSV regression table (`CSVTable.decode` + `csvRegressionDataset`, target column 0).
    case csv
    /// `.npy` arrays (`NPY.decode` and conversion to float32).
    case npy
    /// `config.json` (`WorkDirectory.decodeConfig`: decoded, validated and hashed).
    case config
    /// `models/seed-S/model.json` (`ModelStore.decodeDescription`).
    case model
    /// `factors/seed-S/factors.json` (`EKFAC.validateManifest`).
    case factors
    /// `scores/METHOD/seed-S.json` (`ScoreMetadata`).
    case scores
    /// `groundtruth/journal` (`Journal.parse`), expected to carry `journalHeader`.
    case journal

    /// The header text `parse` expects in a journal (a real run uses its own setting's).
    public static let journalHeader = #"{"masks":4,"queries":2,"setting":"fuzz"}"#

    /// Parses `bytes` as the commands would parse the contents of a file at `path`.
    /// Returns normally for a valid input; a malformed one must throw an `AstraError` (any
    /// other error or a trap is a bug).
    public func parse(_ bytes: [UInt8], path: String) throws {
        let hint = "(checking \(rawValue))"
        switch self {
        case .gzip:
            _ = try Gzip.decompress(bytes, path: path, hint: hint)
        case .idx:
            let plain = try Gzip.decompress(bytes, path: path, hint: hint)
            if plain.count >= 4 && plain[3] == 1 { _ = try IDX.parseLabels(plain, path: path, hint: hint) }
            else { _ = try IDX.parseImages(plain, path: path, hint: hint) }
        case .csv:
            let table = try CSVTable.decode(Gzip.decompress(bytes, path: path, hint: hint), path: path, hasHeader: false, hint: hint)
            _ = try csvRegressionDataset(table, target: "0", hint: hint, detectHeader: true)
        case .npy:
            _ = try NPY.decode(bytes, path: path).floats
        case .config:
            _ = try WorkDirectory.decodeConfig(bytes, path: path).hash
        case .model:
            _ = try ModelStore.decodeDescription(bytes, path: path)
        case .factors:
            _ = try EKFAC.validateManifest(bytes, path: path)
        case .scores:
            _ = try JSONFile.decode(ScoreMetadata.self, from: bytes, path: path, hint: hint)
        case .journal:
            _ = try Journal.parse(bytes, path: path, header: Self.journalHeader)
        }
    }
}
