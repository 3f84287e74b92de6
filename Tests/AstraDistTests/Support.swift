import AstraDist
import Foundation
import XCTest

/// Paths and subprocess helpers shared by the tests.
enum TestSupport {
    /// Repository root (from this file's path).
    static let repo: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()
    static let sharedData = repo + "/../shared/data"

    /// The `astra-dist` executable built beside the test bundle.
    static let executable: String = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("astra-dist").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir.deleteLastPathComponent()
        }
        return repo + "/.build/debug/astra-dist"
    }()

    static func temporaryDirectory(_ name: String) -> String {
        let dir = NSTemporaryDirectory() + "astra-test-\(name)-\(getpid())-\(UInt64(Date().timeIntervalSince1970 * 1e6))"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    struct Result { var status: Int32; var stdout: String; var stderr: String }

    /// The environment of a child `astra-dist` or `mpirun`: without MPI variables (platform
    /// notes), allowed to run as root, one BLAS thread, plus `extra`.
    static func childEnvironment(_ extra: [String: String] = [:]) -> [String: String] {
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("OMPI_") && !$0.key.hasPrefix("PMIX_") && !$0.key.hasPrefix("OPAL_") }
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"; env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        env["OPENBLAS_NUM_THREADS"] = "1"
        for (k, v) in extra { env[k] = v }
        return env
    }

    /// Runs `astra-dist ARGS`, alone (`ranks == 0`) or under `mpirun -n ranks`, with a hard
    /// time limit (the process group is killed). The test process never initialises MPI;
    /// the child environment is stripped of MPI variables (platform notes).
    @discardableResult
    static func run(_ args: [String], ranks: Int = 0, timeout: Double = 300, environment extra: [String: String] = [:]) throws -> Result {
        let p = Process()
        if ranks > 0 {
            p.executableURL = URL(fileURLWithPath: "/usr/bin/mpirun")
            p.arguments = ["--allow-run-as-root", "--oversubscribe", "-n", "\(ranks)", executable] + args
        } else {
            p.executableURL = URL(fileURLWithPath: executable)
            p.arguments = args
        }
        p.environment = childEnvironment(extra)
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        try p.run()
        // Drain pipes concurrently so a chatty child never blocks.
        nonisolated(unsafe) var outData = Data(), errData = Data()
        let group = DispatchGroup()
        group.enter(); DispatchQueue.global().async { outData = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.enter(); DispatchQueue.global().async { errData = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            group.wait()
            XCTFail("astra-dist \(args.joined(separator: " ")) timed out after \(timeout) s")
            return Result(status: -1, stdout: String(decoding: outData, as: UTF8.self), stderr: String(decoding: errData, as: UTF8.self))
        }
        p.waitUntilExit()
        group.wait()
        return Result(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self), stderr: String(decoding: errData, as: UTF8.self))
    }

    /// Synthetic data from the counter-based generator: regression `t = sin(x·w) + noise` or
    /// classification by the arg-max of a random linear map.
    static func synthetic(task: Dataset.Task, n: Int, d: Int, c: Int, seed: UInt64 = 7, firstGlobalIndex: Int = 0) -> Dataset {
        var rng = CounterRandom(seed: seed, purpose: .test)
        let x = (0..<(n * d)).map { _ in Float(rng.nextNormal()) }
        let w = (0..<(d * c)).map { _ in rng.nextNormal() }
        var t: [Float] = []
        for i in 0..<n {
            let z = (0..<c).map { k in (0..<d).reduce(0.0) { $0 + Double(x[i * d + $1]) * w[$1 * c + k] } }
            if task == .regression { t += z.map { Float(sin($0) + 0.1 * rng.nextNormal()) } }
            else { t.append(Float(z.indices.max { z[$0] < z[$1] }!)) }
        }
        return Dataset(task: task, featureCount: d, outputCount: c, inputs: x, targets: t, globalIndex: (0..<n).map { firstGlobalIndex + $0 })
    }
}

extension TestSupport {
    static let roots = DataRoots(digits: repo + "/data/digits/digits.csv.gz", concrete: sharedData + "/concrete/concrete.csv",
                                 mnist: sharedData + "/mnist", fashionMNIST: "/usr/share/datasets/fashion-mnist")
    static func config(_ setting: String) throws -> ExperimentConfig { try Presets.config(setting, dataRoot: roots) }
    /// The preset's data; a missing file fails the test with `TestDataMissing` (not a crash
    /// that would end the whole suite).
    static func prepared(_ config: ExperimentConfig) throws -> PreparedData {
        do { return try PreparedData.load(config) } catch { throw TestDataMissing("\(error)") }
    }
    static func prepared(_ setting: String) throws -> PreparedData { try prepared(config(setting)) }

    /// Trains the preset's first model in Float, one BLAS thread.
    static func trainPreset(_ setting: String) throws -> (Network<Float>, PreparedData) {
        setBLASThreads(1)
        let c = try config(setting), data = try prepared(c)
        let shape = NetworkShape(widths: [data.train.featureCount] + c.hidden + [data.train.outputCount])
        return (Trainer<Float>(shape: shape, recipe: c.recipe).train(on: data.train, seed: 0), data)
    }
}

/// Thrown (a failure, not a skip) when test data the suite needs is absent: CI installs it.
struct TestDataMissing: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d + " (run launch/setup.sh; ../shared must be beside the repository)" }
}

/// Asserts `body` throws an AstraError whose single-line message contains every string in `parts`.
func assertAstraError<T>(_ body: @autoclosure () throws -> T, _ parts: [String], file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try body()
        XCTFail("expected an error containing \(parts)", file: file, line: line)
    } catch let e as AstraError {
        XCTAssertFalse(e.message.contains("\n"), "message not one line: \(e.message)", file: file, line: line)
        for p in parts { XCTAssertTrue(e.message.contains(p), "message \"\(e.message)\" lacks \"\(p)\"", file: file, line: line) }
    } catch {
        XCTFail("not an AstraError: \(error)", file: file, line: line)
    }
}
