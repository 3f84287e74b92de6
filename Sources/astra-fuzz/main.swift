import AstraDist
import Foundation

// astra-fuzz: the seeded fuzz driver of every file parser (run by launch/fuzz.sh).
//   astra-fuzz run [--seed S] [--inputs N] [--batch B] [--timeout SEC] [--corpus DIR] [--formats a,b]
//   astra-fuzz child FORMAT BATCH PROGRESS START COUNT      (spawned by `run`)

let usage = "usage: astra-fuzz run [--seed S] [--inputs N per format] [--batch B] [--timeout SEC] [--corpus DIR] [--formats gzip,idx,...]"
var args = Array(CommandLine.arguments.dropFirst())
do {
    guard let mode = args.first else { print(usage); exit(2) }
    args.removeFirst()
    if mode == "child" {
        guard args.count == 5, let format = FileFormat(rawValue: args[0]), let start = Int(args[3]), let count = Int(args[4]) else {
            throw FuzzFailure("child: bad arguments \(args)")
        }
        exit(try Child.run(format: format, batch: args[1], progress: args[2], start: start, count: count))
    }
    guard mode == "run" else { print(usage); exit(2) }
    var flags: [String: String] = [:]
    while args.count >= 2, args[0].hasPrefix("--") { flags[String(args[0].dropFirst(2))] = args[1]; args.removeFirst(2) }
    guard args.isEmpty else { throw FuzzFailure("unexpected arguments \(args); \(usage)") }
    let formats = try (flags["formats"]?.split(separator: ",").map { s in
        guard let f = FileFormat(rawValue: String(s)) else { throw FuzzFailure("unknown format \(s); formats: \(FileFormat.allCases.map(\.rawValue))") }
        return f
    }) ?? FileFormat.allCases
    let scratch = NSTemporaryDirectory() + "astra-fuzz-\(getpid())"
    try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    let driver = Driver(seed: UInt64(flags["seed"] ?? "1") ?? 1, inputsPerFormat: Int(flags["inputs"] ?? "1000000") ?? 1_000_000,
                        batchSize: Int(flags["batch"] ?? "5000") ?? 5000, batchTimeout: Double(flags["timeout"] ?? "120") ?? 120,
                        corpus: flags["corpus"] ?? "Tests/AstraDistTests/FuzzCorpus", scratch: scratch)
    print("astra-fuzz: seed \(driver.seed), \(driver.inputsPerFormat) inputs per format, batches of \(driver.batchSize), formats \(formats.map(\.rawValue).joined(separator: ","))")
    var total = 0
    for f in formats {
        let o = try driver.fuzz(f)
        total += o.findings.count
        print(String(format: "result %@: %d inputs in %.1f s (%.0f inputs/s), %d findings", f.rawValue, o.inputs, o.seconds, Double(o.inputs) / o.seconds, o.findings.count))
        fflush(nil)
    }
    print("astra-fuzz: done, \(total) findings")
    // `exit` skips `defer`: the batches are removed here.
    try? FileManager.default.removeItem(atPath: scratch)
    exit(total == 0 ? 0 : 1)
} catch {
    FileHandle.standardError.write(Data("astra-fuzz: \(error)\n".utf8))
    exit(2)
}
