import AstraDist
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The parent: generates seeded batches of mutated inputs per format, runs each batch in a
/// child process, and when a child dies by a signal, times out or reports a finding, finds
/// the culprit (the child's progress index, confirmed alone in a fresh child; else every
/// input of the batch alone), saves it to the corpus and goes on with the rest of the batch.
struct Driver {
    var seed: UInt64
    var inputsPerFormat: Int
    var batchSize: Int
    /// Seconds a batch may take before the child counts as hung.
    var batchTimeout: Double
    var corpus: String
    var scratch: String
    let executable = "/proc/self/exe"
    /// Failing inputs saved per format directory at most.
    static let keptPerFormat = 40

    struct Outcome { var inputs = 0; var seconds = 0.0; var findings: [String] = [] }

    /// The outcome of one child: nil when it parsed every input it was given.
    enum Death: CustomStringConvertible {
        case signal(Int32), timeout, finding(String), exit(Int32)
        var description: String {
            switch self {
            case .signal(let s): return "killed by signal \(s)"
            case .timeout: return "hung (timed out)"
            case .finding(let f): return f
            case .exit(let c): return "exited with status \(c)"
            }
        }
    }

    func fuzz(_ format: FileFormat) throws -> Outcome {
        let seeds = Seeds.of(format)
        for (k, s) in seeds.enumerated() {
            do { try format.parse(s, path: "seed-\(k)") } catch { print("warning: \(format) seed \(k) is not valid: \(error)") }
        }
        var outcome = Outcome()
        let start = now()
        let batchFile = "\(scratch)/batch-\(format.rawValue).bin"
        var batchIndex: UInt64 = 0
        var lastReport = start
        while outcome.inputs < inputsPerFormat {
            let n = min(batchSize, inputsPerFormat - outcome.inputs)
            var r = FuzzRandom(seed: seed, stream: UInt64(FileFormat.allCases.firstIndex(of: format)!) << 40 | batchIndex)
            let inputs = (0..<n).map { _ in mutant(format, seeds: seeds, &r) }
            try Batch.write(inputs, to: batchFile)
            var next = 0
            while next < n {
                guard let death = try runChild(format, batchFile, start: next, count: n - next, timeout: batchTimeout) else { break }
                let culprit = readProgress(format)
                if culprit >= next, culprit < n, let confirmed = try runChild(format, batchFile, start: culprit, count: 1, timeout: 10) {
                    outcome.findings.append(try keep(format, inputs[culprit], confirmed))
                    next = culprit + 1
                } else {
                    // Not reproducible from the progress index: every input alone.
                    print("\(format): batch \(batchIndex) \(death), culprit unclear; re-running its inputs one per child")
                    for i in next..<n {
                        if let d = try runChild(format, batchFile, start: i, count: 1, timeout: 10) { outcome.findings.append(try keep(format, inputs[i], d)) }
                    }
                    next = n
                }
            }
            outcome.inputs += n
            batchIndex += 1
            if now() - lastReport > 30 {
                lastReport = now()
                print("\(format): \(outcome.inputs) inputs, \(Int(Double(outcome.inputs) / (lastReport - start))) inputs/s, \(outcome.findings.count) findings")
                fflush(nil)
            }
        }
        outcome.seconds = now() - start
        return outcome
    }

    /// A seed with 1–4 stacked mutations, mostly format-aware.
    func mutant(_ format: FileFormat, seeds: [[UInt8]], _ r: inout FuzzRandom) -> [UInt8] {
        var b = r.pick(seeds)
        for _ in 0...r.below(4) {
            b = r.chance(0.6) ? FormatMutators.mutate(format, b, &r) : Mutators.any(b, seeds: seeds, &r)
            if b.count > 64 << 10 { b = Array(b[..<(64 << 10)]) }
        }
        return b
    }

    /// Runs a child on inputs start..<start+count; nil if it parsed them all.
    func runChild(_ format: FileFormat, _ batch: String, start: Int, count: Int, timeout: Double) throws -> Death? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = ["child", format.rawValue, batch, progressPath(format), String(start), String(count)]
        let out = "\(scratch)/child-\(format.rawValue).out", err = "\(scratch)/child-\(format.rawValue).err"
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        _ = FileManager.default.createFile(atPath: err, contents: nil)
        p.standardOutput = FileHandle(forWritingAtPath: out)
        p.standardError = FileHandle(forWritingAtPath: err)
        try p.run()
        let deadline = now() + timeout
        while p.isRunning {
            if now() > deadline { kill(p.processIdentifier, SIGKILL); p.waitUntilExit(); return .timeout }
            usleep(1000)
        }
        if p.terminationReason == .uncaughtSignal {
            // The Swift runtime's first line naming the failure ("*** Swift runtime failure: …", "Fatal error: …").
            let message = (try? String(contentsOfFile: err, encoding: .utf8))?.split(separator: "\n")
                .first { $0.contains("runtime failure") || $0.contains("Fatal error") || $0.contains("Program crashed") }
            return message.map { .finding("signal \(p.terminationStatus): \($0)") } ?? .signal(p.terminationStatus)
        }
        if p.terminationStatus == 3 { return .finding((try? String(contentsOfFile: out, encoding: .utf8)) ?? "finding") }
        return p.terminationStatus == 0 ? nil : .exit(p.terminationStatus)
    }

    func progressPath(_ format: FileFormat) -> String { "\(scratch)/progress-\(format.rawValue)" }

    func readProgress(_ format: FileFormat) -> Int {
        guard let d = FileManager.default.contents(atPath: progressPath(format)), d.count >= 8 else { return -1 }
        return Int(d.withUnsafeBytes { $0.loadUnaligned(as: Int64.self) })
    }

    /// Saves a failing input as FuzzCorpus/FORMAT/HASH.bin and returns a line describing it.
    func keep(_ format: FileFormat, _ input: [UInt8], _ death: Death) throws -> String {
        let dir = "\(corpus)/\(format.rawValue)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var path = "\(dir)/\(ContentHash.of(input).prefix(12)).bin"
        // Enough examples of a bug to replay; more would bloat the repository.
        if ((try? FileManager.default.contentsOfDirectory(atPath: dir))?.count ?? 0) < Self.keptPerFormat {
            _ = FileManager.default.createFile(atPath: path, contents: Data(input))
        } else { path += " (not kept: corpus has \(Self.keptPerFormat) for this format)" }
        let line = "\(format): \(death.description.trimmingCharacters(in: .whitespacesAndNewlines)) -> \(path)"
        print(line); fflush(nil)
        return line
    }
}
