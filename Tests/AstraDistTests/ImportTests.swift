import AstraDist
import Foundation
import XCTest

/// `astra-dist import`: weights files written byte by byte here (independently of the
/// parser), the imported network checked against a naive forward pass, and every kind of
/// malformed file refused with one line naming the problem, nothing written.
final class ImportTests: XCTestCase {
    /// A tensor to write: name, safetensors dtype, shape, raw little-endian bytes.
    struct Tensor { var name: String; var dtype: String; var shape: [Int]; var bytes: [UInt8] }

    static func f32(_ name: String, _ shape: [Int], _ v: [Float]) -> Tensor {
        Tensor(name: name, dtype: "F32", shape: shape, bytes: v.flatMap { x in (0..<4).map { UInt8((x.bitPattern >> (8 * $0)) & 0xff) } })
    }
    static func f64(_ name: String, _ shape: [Int], _ v: [Float]) -> Tensor {
        Tensor(name: name, dtype: "F64", shape: shape, bytes: v.flatMap { x in (0..<8).map { UInt8((Double(x).bitPattern >> (8 * UInt64($0))) & 0xff) } })
    }

    /// The safetensors layout: u64 LE header length, JSON header, data section.
    static func safetensors(_ tensors: [Tensor], offsetShift: Int = 0) -> [UInt8] {
        var entries: [String] = ["\"__metadata__\":{\"format\":\"pt\"}"], data: [UInt8] = []
        for t in tensors {
            let shape = t.shape.map(String.init).joined(separator: ",")
            entries.append("\"\(t.name)\":{\"dtype\":\"\(t.dtype)\",\"shape\":[\(shape)],\"data_offsets\":[\(data.count + offsetShift),\(data.count + t.bytes.count + offsetShift)]}")
            data += t.bytes
        }
        let header = Array(("{" + entries.joined(separator: ",") + "}").utf8)
        return (0..<8).map { UInt8((UInt64(header.count) >> (8 * UInt64($0))) & 0xff) } + header + data
    }

    /// A stored (uncompressed) zip of `.npy` members, as `numpy.savez` writes.
    static func npz(_ tensors: [Tensor]) -> [UInt8] {
        func le(_ v: Int, _ n: Int) -> [UInt8] { (0..<n).map { UInt8((v >> (8 * $0)) & 0xff) } }
        var out: [UInt8] = [], central: [UInt8] = []
        for t in tensors {
            precondition(t.dtype == "F64")
            let member = NPY.encode(stride(from: 0, to: t.bytes.count, by: 8).map { i in Double(bitPattern: (0..<8).reduce(UInt64(0)) { $0 | UInt64(t.bytes[i + $1]) << (8 * UInt64($1)) }) },
                                    shape: t.shape, dtype: .float64)
            let name = Array((t.name + ".npy").utf8), offset = out.count
            // CRC is not checked by the reader; 0 keeps the writer short.
            out += le(0x0403_4b50, 4) + le(20, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(0, 4) + le(member.count, 4) + le(member.count, 4) + le(name.count, 2) + le(0, 2) + name + member
            central += le(0x0201_4b50, 4) + le(20, 2) + le(20, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(0, 4) + le(member.count, 4) + le(member.count, 4)
                + le(name.count, 2) + le(0, 2) + le(0, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(offset, 4) + name
        }
        let cdOffset = out.count
        return out + central + le(0x0605_4b50, 4) + le(0, 2) + le(0, 2) + le(tensors.count, 2) + le(tensors.count, 2) + le(central.count, 4) + le(cdOffset, 4) + le(0, 2)
    }

    // digits: 64 features, 10 classes; nn.Sequential(Linear(64, 16), ReLU(), Linear(16, 10)).
    static let (d, h, c) = (64, 16, 10)
    static let w1 = (0..<(h * d)).map { Float(sin(Double($0) * 0.37) * 0.3) }, b1 = (0..<h).map { Float(cos(Double($0)) * 0.1) }
    static let w2 = (0..<(c * h)).map { Float(sin(Double($0) * 0.91 + 1) * 0.4) }, b2 = (0..<c).map { Float(Double($0) * 0.01 - 0.05) }
    static let goodTensors = [f32("0.weight", [h, d], w1), f32("0.bias", [h], b1), f32("2.weight", [c, h], w2), f32("2.bias", [c], b2)]
    static let architecture = """
    {"loss": "cross-entropy", "operations": [{"op": "linear", "inputs": 64, "outputs": 16}, {"op": "relu"}, {"op": "linear", "inputs": 16, "outputs": 10}]}
    """
    static let small = ["--train-size", "120", "--query-size", "6"]

    func write(_ bytes: [UInt8], _ dir: String, _ name: String) -> String {
        let path = dir + "/" + name
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }

    /// Naive PyTorch semantics: y = W2 relu(W1 x + b1) + b2, W O×I.
    static func reference(_ x: [Float]) -> [Double] {
        let hidden = (0..<h).map { i in max(0, (0..<d).reduce(Double(b1[i])) { $0 + Double(w1[i * d + $1]) * Double(x[$1]) }) }
        return (0..<c).map { o in (0..<h).reduce(Double(b2[o])) { $0 + Double(w2[o * h + $1]) * hidden[$1] } }
    }

    func importWorkspace(_ weights: [UInt8], name: String = "w.safetensors", extra: [String] = []) throws -> (TestSupport.Result, String) {
        let dir = TestSupport.temporaryDirectory("import")
        let weightsPath = write(weights, dir, name), arch = write(Array(Self.architecture.utf8), dir, "arch.json")
        let w = dir + "/ws"
        return (try TestSupport.run(["import", "--workdir", w, "--weights", weightsPath, "--architecture", arch] + Self.small + extra), w)
    }

    func checkOutputs(workspace w: String) throws {
        let (net, model) = try ModelStore.load(from: w + "/models/seed-0")
        XCTAssertNotNil(model.imported)
        XCTAssertEqual(model.operations, try ArchitectureFile.read(w + "/../arch.json").operations)
        let batch = 5
        let x = (0..<(batch * Self.d)).map { Float(($0 * 7919) % 17) }
        let ws = Workspace<Float>(shape: net.shape, capacity: batch)
        x.withUnsafeBufferPointer { net.forward($0.baseAddress!, batch: batch, workspace: ws) }
        for b in 0..<batch {
            let want = Self.reference(Array(x[(b * Self.d)..<((b + 1) * Self.d)]))
            for o in 0..<Self.c { XCTAssertEqual(Double(ws.output[b * Self.c + o]), want[o], accuracy: 1e-4 * max(1, abs(want[o])), "example \(b) output \(o)") }
        }
    }

    func testImportedSafetensorsMatchesIndependentForwardAndScores() throws {
        let (r, w) = try importWorkspace(Self.safetensors(Self.goodTensors))
        XCTAssertEqual(r.status, 0, r.stderr)
        try checkOutputs(workspace: w)
        // fit and score work on it unchanged.
        XCTAssertEqual(try TestSupport.run(["fit", "--workdir", w]).status, 0)
        let s = try TestSupport.run(["score", "--workdir", w, "--method", "ekfac"])
        XCTAssertEqual(s.status, 0, s.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: w + "/scores/ekfac/seed-0.npy"))
        // No recipe was given: ground truth says so instead of retraining with the preset's.
        let g = try TestSupport.run(["groundtruth", "--workdir", w, "--masks", "2", "--repeats", "1"])
        XCTAssertNotEqual(g.status, 0)
        XCTAssertTrue(g.stderr.contains("imported model and no recipe") && g.stderr.contains("--lr"), g.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: w + "/groundtruth"))
        // Importing the same file again is a no-op.
        let again = try TestSupport.run(["import", "--workdir", w, "--weights", w + "/../w.safetensors", "--architecture", w + "/../arch.json"])
        XCTAssertEqual(again.status, 0, again.stderr)
    }

    func testImportedNPZOfFloat64AndARecipeAllowsGroundTruthChecks() throws {
        let tensors = [Self.f64("0.weight", [Self.h, Self.d], Self.w1), Self.f64("0.bias", [Self.h], Self.b1),
                       Self.f64("2.weight", [Self.c, Self.h], Self.w2), Self.f64("2.bias", [Self.c], Self.b2)]
        let (r, w) = try importWorkspace(Self.npz(tensors), name: "w.npz", extra: ["--lr", "0.05", "--epochs", "2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        try checkOutputs(workspace: w)
        let config = try XCTUnwrap(try WorkDirectory(w).loadConfig())
        XCTAssertNil(config.recipeUnknown)
        XCTAssertEqual(config.recipe.learningRate, 0.05)
    }

    /// Each malformed file: a non-zero exit, the `error:` lines expected (one per problem), no model.
    func testMalformedWeightsGiveOneLineEach() throws {
        let g = Self.goodTensors
        var intWeight = g; intWeight[0].dtype = "I32"
        let cases: [(String, [UInt8], [String])] = [
            ("truncated length", [1, 2, 3], ["shorter than the 8-byte header length"]),
            ("truncated header", Array(Self.safetensors(g).prefix(40)), ["truncated"]),
            ("offsets out of range", Self.safetensors(g, offsetShift: 100_000), ["data_offsets [1"]),
            ("wrong dtype", Self.safetensors(intWeight), ["'0.weight' has dtype I32"]),
            ("wrong shape", Self.safetensors([Self.f32("0.weight", [Self.d, Self.h], Self.w1)] + g.dropFirst()), ["'0.weight' has shape [64, 16]: operation 0 (linear 64→16; PyTorch's Linear weight is outputs × inputs) expects [16, 64]"]),
            ("missing tensor", Self.safetensors(Array(g.dropLast())), ["'2.bias' is missing"]),
            ("extra tensor", Self.safetensors(g + [Self.f32("4.weight", [2], [1, 2])]), ["'4.weight' [2] is not used"]),
            ("two problems", Self.safetensors([g[1], g[2]]), ["'0.weight' is missing", "'2.bias' is missing"]),
        ]
        for (what, bytes, fragments) in cases {
            let (r, w) = try importWorkspace(bytes)
            XCTAssertNotEqual(r.status, 0, what)
            let lines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("error:") }
            XCTAssertEqual(lines.count, fragments.count, "\(what): \(r.stderr)")
            for (line, fragment) in zip(lines, fragments) { XCTAssertTrue(line.contains(fragment), "\(what): \(line)") }
            XCTAssertFalse(r.stderr.contains("Fatal error"), what)
            XCTAssertFalse(FileManager.default.fileExists(atPath: w), "\(what): nothing written")
        }
    }

    func testArchitectureMismatchWithTheData() throws {
        let dir = TestSupport.temporaryDirectory("import-arch")
        let weights = write(Self.safetensors(Self.goodTensors), dir, "w.safetensors")
        let arch = write(Array(Self.architecture.replacingOccurrences(of: "\"outputs\": 10", with: "\"outputs\": 3").utf8), dir, "arch.json")
        let r = try TestSupport.run(["import", "--workdir", dir + "/ws", "--weights", weights, "--architecture", arch] + Self.small)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("to 3 outputs") && r.stderr.contains("10 outputs"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/ws/config.json"))
    }
}
