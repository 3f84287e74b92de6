import AstraDist
import Foundation
import XCTest

/// Refusals of the command line (docs/commands.md): the binary alone, one `error:` line,
/// exit status 1, and no file created anywhere in the sandbox.
final class CommandLineTests: XCTestCase {
    /// Every path below `dir`, with sizes, to prove a failed command wrote nothing.
    static func listing(_ dir: String) -> [String] {
        let e = FileManager.default.enumerator(atPath: dir)
        var out: [String] = []
        while let p = e?.nextObject() as? String {
            let size = (try? FileManager.default.attributesOfItem(atPath: dir + "/" + p)[.size] as? Int) ?? -1
            out.append("\(p) \(size ?? -1)")
        }
        return out.sorted()
    }

    func refuse(_ args: [String], _ fragment: String, sandbox: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let before = Self.listing(sandbox)
        let r = try TestSupport.run(args, timeout: 60)
        XCTAssertEqual(r.status, 1, "\(args): \(r.stderr)", file: file, line: line)
        let lines = r.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "\(args): \(r.stderr)", file: file, line: line)
        XCTAssertTrue(lines.first?.hasPrefix("error: ") == true && r.stderr.contains(fragment), "\(args): expected '\(fragment)' in \(r.stderr)", file: file, line: line)
        XCTAssertEqual(Self.listing(sandbox), before, "\(args) left files behind", file: file, line: line)
    }

    func testRefusalsWriteNothing() throws {
        let box = TestSupport.temporaryDirectory("cli")
        let trained = box + "/trained", new = box + "/new"
        let small = ["--epochs", "2", "--train-size", "120", "--query-size", "6"]
        XCTAssertEqual(try TestSupport.run(["train", "--workdir", trained] + small).status, 0)
        FileManager.default.createFile(atPath: box + "/afile", contents: Data("x".utf8))
        let rootHadConfig = FileManager.default.fileExists(atPath: "/config.json")

        try refuse(["train", "--workdir", ""], "--workdir is empty", sandbox: box)
        XCTAssertEqual(FileManager.default.fileExists(atPath: "/config.json"), rootHadConfig)
        try refuse(["train", "--workdir", box + "/afile"], "is a file, not a directory", sandbox: box)
        for name in ["../../x", "a/b", "", "."] {
            try refuse(["score", "--workdir", trained, "--name", name], "without a leading dot", sandbox: box)
        }
        // Every option is checked before config.json is written.
        try refuse(["train", "--workdir", new, "--threads", "0"], "--threads expects an integer ≥ 1", sandbox: box)
        try refuse(["run", "--workdir", new, "--method", "bogus"], "unknown method 'bogus'", sandbox: box)
        try refuse(["run", "--workdir", new, "--damping", "-1"], "--damping must be positive", sandbox: box)
        try refuse(["run", "--workdir", new, "--ensemble", "2", "--seeds", "5,6"], "--ensemble is a switch", sandbox: box)
        try refuse(["train", "--workdir", new, "--seeds", "0,0"], "--seeds lists 0 twice", sandbox: box)
        try refuse(["train", "--workdir", new, "--hidden", ","], "--hidden expects a comma-separated list", sandbox: box)
        try refuse(["train", "--workdir", new, "--lr", "-1"], "--lr must be positive", sandbox: box)
        let patch = box + "/patch.json"
        try Data(#"{"recipe": {"bogus": 1}}"#.utf8).write(to: URL(fileURLWithPath: patch))
        try refuse(["train", "--workdir", new, "--config", patch], "unknown configuration key 'recipe.bogus'", sandbox: box)
        // Commands that do not create workspaces need one.
        for command in ["score", "fit", "lds", "convergence", "subspace"] {
            try refuse([command, "--workdir", new], "\(new) has no config.json; start with `astra-dist train --workdir \(new) …` (or run)", sandbox: box)
        }
        // Contradictions and options no requested method uses.
        try refuse(["score", "--workdir", trained, "--method", "astra", "--solver-lr", "0.1", "--lr-scale", "2"], "--solver-lr and --lr-scale contradict", sandbox: box)
        try refuse(["score", "--workdir", trained, "--method", "ekfac", "--iterations", "5"], "--iterations applies to the iterative methods", sandbox: box)
        try refuse(["score", "--workdir", trained, "--method", "ekfac,astra", "--name", "both"], "--name names one result", sandbox: box)
        try refuse(["score", "--workdir", trained, "--queries", ""], "--queries is empty", sandbox: box)
        try refuse(["subspace", "--workdir", trained, "--thresholds", "0.1,-1"], "subspace: --thresholds expects numbers ≥ 0 like 0.1,0.01, got '-1'", sandbox: box)
        try refuse(["subspace", "--workdir", trained, "--thresholds", "0.1,0.1"], "--thresholds lists a threshold twice", sandbox: box)
        // A configuration mismatch names the keys and both values; the schedule is configuration.
        // (A new workspace records the default schedule, ⌊T/15⌋ steps, at least 1: here T = 8.)
        try refuse(["train", "--workdir", trained, "--checkpoint-every", "5"] + small, "checkpointEvery 1, this request 5 (--checkpoint-every)", sandbox: box)
        try refuse(["train", "--workdir", trained, "--epochs", "3"], "recipe.epochs 2, this request 3 (--epochs)", sandbox: box)
        // Help lists the command's own options only.
        let help = try TestSupport.run(["score", "--help"]).stdout
        XCTAssertTrue(help.contains("--solver-lr") && help.contains("--workdir") && !help.contains("--epochs") && !help.contains("--masks"), help)
        XCTAssertFalse(try TestSupport.run(["fit", "--help"]).stdout.contains("--lr "))
        XCTAssertFalse(FileManager.default.fileExists(atPath: new))
    }

    func testBadValueInConfigJSONNamesTheFileAndKey() throws {
        let box = TestSupport.temporaryDirectory("cli-config")
        let w = box + "/w"
        XCTAssertEqual(try TestSupport.run(["train", "--workdir", w, "--epochs", "2", "--train-size", "120", "--query-size", "6"]).status, 0)
        let path = w + "/config.json"
        var text = try String(contentsOfFile: path, encoding: .utf8)
        let lr = try XCTUnwrap(text.range(of: #""learningRate" : [0-9.e-]+"#, options: .regularExpression))
        text.replaceSubrange(lr, with: #""learningRate" : -0.5"#)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        try refuse(["fit", "--workdir", w], "\(path) key recipe.learningRate must be positive", sandbox: box)
    }

    func testCheckpointScheduleIsRecorded() throws {
        let w = TestSupport.temporaryDirectory("cli-ckpt") + "/w"
        let r = try TestSupport.run(["train", "--workdir", w, "--epochs", "2", "--train-size", "120", "--query-size", "6", "--batch-size", "32", "--checkpoint-every", "3"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let model = try JSONDecoder().decode(ModelDescription.self, from: Data(contentsOf: URL(fileURLWithPath: w + "/models/seed-0/model.json")))
        XCTAssertEqual(model.checkpoints, [3, 6])
        for step in model.checkpoints {
            let dir = WorkDirectory(w).modelDirectory(ModelReference(seed: 0, checkpoint: step))
            let ck = try JSONDecoder().decode(ModelDescription.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/model.json")))
            XCTAssertEqual(ck.steps, step)
            XCTAssertEqual(ck.learningRate, model.learningRate)
            XCTAssertNotNil(ck.learningRate)
        }
    }
}
