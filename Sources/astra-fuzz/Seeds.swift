import AstraDist
import CZlib

/// Small valid files of each format (a few hundred bytes to a few KB, so a child parses
/// thousands per second), built with the library's own writers where it has them.
enum Seeds {
    static func of(_ format: FileFormat) -> [[UInt8]] {
        switch format {
        case .gzip: return [gzip(Array(csvTexts[0].utf8)), gzip(idxImages(count: 3, rows: 4, cols: 5)), gzip([]),
                            gzip(Array(csvTexts[1].utf8)) + gzip(Array(csvTexts[2].utf8))]
        case .idx: return [idxImages(count: 3, rows: 4, cols: 5), idxImages(count: 1, rows: 28, cols: 28), idxLabels([0, 9, 3, 255]),
                           gzip(idxImages(count: 2, rows: 3, cols: 3))]
        case .csv: return csvTexts.map { Array($0.utf8) } + [gzip(Array(csvTexts[0].utf8))]
        case .npy: return [NPY.encode([Float](repeating: 1.5, count: 12), shape: [3, 4], dtype: .float32),
                           NPY.encode([Double](repeating: -2, count: 5), shape: [5], dtype: .float64),
                           NPY.encode([UInt8](repeating: 7, count: 8), shape: [2, 2, 2], dtype: .uint8),
                           NPY.encode([Float](repeating: 0, count: 1), shape: [], dtype: .float32)]
        case .config: return [config, config.replacingOccurrences(of: "\"target\" : null", with: "\"target\" : \"y\"")].map { Array($0.utf8) }
        case .model: return [model].map { Array($0.utf8) }
        case .factors: return [factors].map { Array($0.utf8) }
        case .scores: return [scores].map { Array($0.utf8) }
        case .journal:
            let header = Journal.encodeHeader(FileFormat.journalHeader)
            return [header, header + Journal.encodeRecord(job: 0, values: [1, 2]) + Journal.encodeRecord(job: 3, values: [-1, 0.5]),
                    header + Journal.encodeRecord(job: 1, values: [])]
        }
    }

    static let csvTexts = [
        "y,a,b\n1.5,2,3\n2.5,4,1\n-1,0,0\n3,1e3,2\n",
        "\u{FEFF}\"target\",\"x, one\",x2\r\n1,\"2\",3\r\n4,5,6\r\n7,8,9\r\n",
        "0,1,2,3\n4,5,6,7\n8,9,10,11\n",
    ]

    static func idxImages(count: Int, rows: Int, cols: Int) -> [UInt8] {
        var b: [UInt8] = [0, 0, 8, 3]
        for d in [count, rows, cols] { b += [UInt8(d >> 24 & 0xff), UInt8(d >> 16 & 0xff), UInt8(d >> 8 & 0xff), UInt8(d & 0xff)] }
        return b + (0..<(count * rows * cols)).map { UInt8($0 * 37 & 0xff) }
    }

    static func idxLabels(_ labels: [UInt8]) -> [UInt8] {
        [0, 0, 8, 1, 0, 0, 0, UInt8(labels.count)] + labels
    }

    /// A gzip member of `data` (zlib deflate with the gzip wrapper, window bits 15 + 16).
    static func gzip(_ data: [UInt8]) -> [UInt8] {
        var strm = z_stream()
        precondition(deflateInit2_(&strm, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK)
        defer { deflateEnd(&strm) }
        var out = [UInt8](repeating: 0, count: data.count + 64)
        var input = data
        let produced = input.withUnsafeMutableBufferPointer { i in
            out.withUnsafeMutableBufferPointer { o -> Int in
                strm.next_in = i.baseAddress; strm.avail_in = uInt(i.count)
                strm.next_out = o.baseAddress; strm.avail_out = uInt(o.count)
                precondition(deflate(&strm, Z_FINISH) == Z_STREAM_END)
                return o.count - Int(strm.avail_out)
            }
        }
        return Array(out[..<produced])
    }

    static let config = """
    {
      "alpha" : 0.5, "damping" : 0.0073, "data" : "digits:/data/digits.csv.gz", "dataSeed" : 0, "hidden" : [ 8, 4 ],
      "labelNoise" : 0, "masks" : 100, "querySize" : 100,
      "recipe" : { "batchSize" : 32, "epochs" : 1, "learningRate" : 0.05, "momentum" : 0.9, "weightDecay" : 0.001 },
      "repeats" : 10, "seeds" : [ 0, 1 ], "setting" : "digits", "target" : null, "trainSize" : 50
    }
    """
    static let model = """
    {
      "checkpoints" : [ 2, 4 ], "configHash" : "00d697d11ea563f8", "dataHash" : "21ca828497ee3d68", "loss" : "cross-entropy",
      "parametersHash" : "a45e40b6390dbb19", "seed" : 0, "steps" : 4, "widths" : [ 64, 8, 10 ]
    }
    """
    static let factors = """
    {
      "exampleCount" : 50, "fisher" : "sampled", "format" : "astra-dist-ekfac-1",
      "layers" : [ { "files" : { "layer-0-QA.npy" : "0123456789abcdef" }, "inputs" : 4, "outputs" : 3 },
                   { "files" : { }, "inputs" : 3, "outputs" : 2 } ],
      "meta" : { "modelHash" : "a45e40b6390dbb19" }, "widths" : [ 4, 3, 2 ]
    }
    """
    static let scores = """
    {
      "configHash" : "00d697d11ea563f8", "dataHash" : "21ca828497ee3d68", "damping" : 0.0073, "method" : "astra",
      "modelHash" : "a45e40b6390dbb19", "objectiveTrace" : [ [ 0, -1.5 ], [ 10, -2.25 ] ], "queries" : [ "test:0", "file:x.csv#2" ],
      "querySet" : "default", "queriesHash" : "ffff", "seconds" : { "solve" : 0.5 }, "seed" : 0,
      "signConvention" : "positive score: the training example helps the query", "solver" : { "iterations" : "10" }, "trainSize" : 50
    }
    """
}
