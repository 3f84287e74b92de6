import AstraDist
import Foundation
import XCTest

/// The naming rule (docs/commands.md), configuration checks and ground-truth job identity.
final class NamingTests: XCTestCase {
    func testNamesAreValidatedBeforeUse() {
        for good in ["ekfac", "astra_iterations=5", "ekfac-l0.01", "a+b,c", "x.y"] { XCTAssertNoThrow(try ResultName.validate(good, what: "--name"), good) }
        for bad in ["", ".", "..", "../../x", "a/b", ".hidden", "a b", "é", String(repeating: "a", count: 201)] {
            XCTAssertThrowsError(try ResultName.validate(bad, what: "--name"), bad) { e in
                XCTAssertTrue("\(e)".contains("--name") && "\(e)".contains("leading dot"), "\(e)")
            }
        }
    }

    func testDerivedNamesListNonDefaultOptionsInFixedOrder() {
        let λ = 0.0073
        XCTAssertEqual(ResultName.derived(SolverOptions(method: .ekfac, damping: λ), fisher: .sampled, defaultDamping: λ), "ekfac")
        XCTAssertEqual(ResultName.derived(SolverOptions(method: .ekfac, damping: 0.05), fisher: .sampled, defaultDamping: λ), "ekfac_damping=0.05")
        XCTAssertEqual(ResultName.derived(SolverOptions(method: .ekfac, damping: λ), fisher: .exact, defaultDamping: λ), "ekfac_fisher=exact")
        // identity, sni and exact do not use the factors: the Fisher mode is not theirs.
        XCTAssertEqual(ResultName.derived(SolverOptions(method: .identity, damping: λ), fisher: .exact, defaultDamping: λ), "identity")
        var astra = SolverOptions(method: .astra, damping: λ)
        astra.iterations = 5
        XCTAssertEqual(ResultName.derived(astra, fisher: .sampled, defaultDamping: λ), "astra_iterations=5")
        astra.seed = 3; astra.damping = 1e-5; astra.learningRate = 2
        // Fixed order (damping first); a fixed step replaces the automatic one's settings.
        XCTAssertEqual(ResultName.derived(astra, fisher: .sampled, defaultDamping: λ), "astra_damping=1e-05_iterations=5_solver-lr=2_solver-seed=3")
        // Options a method does not use never change its name or its identity.
        var ekfac = SolverOptions(method: .ekfac, damping: λ)
        ekfac.iterations = 7; ekfac.traceEvery = 1; ekfac.exactLimit = 10
        XCTAssertEqual(ResultName.settings(ekfac, fisher: .sampled), ResultName.settings(SolverOptions(method: .ekfac, damping: λ), fisher: .sampled))
        // Trace interval does not shape an iterative result either; momentum does.
        var sni = SolverOptions(method: .sni, damping: λ)
        sni.traceEvery = 3
        XCTAssertEqual(ResultName.derived(sni, fisher: .sampled, defaultDamping: λ), "sni")
        sni.momentum = 0.5; sni.lissaRepeats = 2
        XCTAssertEqual(ResultName.derived(sni, fisher: .sampled, defaultDamping: λ), "sni_solver-momentum=0.5_lissa-repeats=2")
        for name in ["astra_damping=1e-05_iterations=5_solver-lr=2_solver-seed=3", "sni_solver-momentum=0.5_lissa-repeats=2"] {
            XCTAssertNoThrow(try ResultName.validate(name, what: "derived"))
        }
        XCTAssertEqual(ResultName.describeDifference(ResultName.settings(SolverOptions(method: .ekfac, damping: λ), fisher: .sampled),
                                                     from: ResultName.settings(SolverOptions(method: .ekfac, damping: 0.05), fisher: .sampled)), "damping 0.0073")
    }

    func testModelReferencesNameEveryFile() {
        let ws = WorkDirectory("/w")
        XCTAssertEqual(ModelReference(seed: 3).component, "seed-3")
        XCTAssertEqual(ws.modelDirectory(ModelReference(seed: 3, checkpoint: 40)), "/w/models/seed-3/checkpoint-40")
        XCTAssertEqual(ws.factorsDirectory(ModelReference(seed: 1, segment: 2)), "/w/factors/seed-1/segment-2")
        XCTAssertEqual(ws.scoresStem(name: "ekfac", model: ModelReference(seed: 0), querySet: "rows"), "/w/scores/ekfac/seed-0.rows")
        XCTAssertEqual(ws.scoresPath(method: "astra", seed: 2), "/w/scores/astra/seed-2.npy")
    }

    func testWorkdirMustBeANamedDirectory() throws {
        XCTAssertThrowsError(try WorkDirectory.validated("")) { XCTAssertTrue("\($0)".contains("--workdir is empty"), "\($0)") }
        let file = TestSupport.temporaryDirectory("naming") + "/file"
        FileManager.default.createFile(atPath: file, contents: Data())
        XCTAssertThrowsError(try WorkDirectory.validated(file)) { XCTAssertTrue("\($0)".contains("is a file"), "\($0)") }
        XCTAssertEqual(try WorkDirectory.validated("ws/x/").root, "ws/x")
    }

    func testConfigPatchRefusesUnknownKeysAtAnyDepthAndNamesBadTypes() throws {
        let c = try TestSupport.config("digits")
        let (patched, keys) = try ConfigPatch.apply(["recipe": ["epochs": 3], "damping": 0.5, "checkpointEvery": 10], to: c, file: "p.json")
        XCTAssertEqual(patched.recipe.epochs, 3); XCTAssertEqual(patched.damping, 0.5); XCTAssertEqual(patched.checkpointEvery, 10)
        XCTAssertEqual(patched.recipe.learningRate, c.recipe.learningRate)
        XCTAssertEqual(keys, ["checkpointEvery", "damping", "recipe.epochs"])
        XCTAssertThrowsError(try ConfigPatch.apply(["recipe": ["bogus": 1]], to: c, file: "p.json")) {
            XCTAssertTrue("\($0)".contains("p.json: unknown configuration key 'recipe.bogus'"), "\($0)")
        }
        XCTAssertThrowsError(try ConfigPatch.apply(["bogus": 1], to: c, file: "p.json")) { XCTAssertTrue("\($0)".contains("'bogus'"), "\($0)") }
        XCTAssertThrowsError(try ConfigPatch.apply(["recipe": 3], to: c, file: "p.json")) { XCTAssertTrue("\($0)".contains("'recipe' must be an object"), "\($0)") }
        XCTAssertThrowsError(try ConfigPatch.apply(["recipe": ["epochs": "many"]], to: c, file: "p.json")) {
            XCTAssertTrue("\($0)".contains("p.json: key 'recipe.epochs'"), "\($0)")
        }
    }

    func testValidationNamesWhereTheValueCameFromAndDifferencesNameKeys() throws {
        var c = try TestSupport.config("digits")
        c.recipe.learningRate = -1
        XCTAssertThrowsError(try c.validate(origin: { "W/config.json key \($0)" })) {
            XCTAssertTrue("\($0)".contains("W/config.json key recipe.learningRate must be positive"), "\($0)")
        }
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("--recipe.learningRate") || "\($0)".contains("recipe.learningRate"), "\($0)") }
        c = try TestSupport.config("digits")
        var d = c
        d.recipe.epochs += 1; d.checkpointEvery = 5
        let diff = c.differences(from: d)
        XCTAssertEqual(diff.map(\.key), ["checkpointEvery", "recipe.epochs"])
        XCTAssertEqual(diff[0].this, "(unset)"); XCTAssertEqual(diff[0].other, "5")
        XCTAssertEqual(diff[1].other, "\(d.recipe.epochs)")
        XCTAssertTrue(c.differences(from: c).isEmpty)
        // No schedule keeps config.json (and its hash) as it was before schedules existed.
        XCTAssertFalse(c.canonicalJSON().contains("checkpointEvery"))
        c.seeds = [0, 0]
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("twice"), "\($0)") }
    }

    func testGroundTruthJobsAreKeyedBySubsetAndRepeat() throws {
        let c = try TestSupport.config("digits")
        XCTAssertEqual(GroundTruthStage.jobID(subset: 3, repeat: 2), 3 << 32 | 2)
        // Seeds depend on (j, r) alone: no two jobs of a 50×20 sweep share one.
        let seeds = (0..<50).flatMap { j in (0..<20).map { GroundTruthStage.jobSeed(c, subset: j, repeat: $0) } }
        XCTAssertEqual(Set(seeds).count, seeds.count)
        XCTAssertEqual(GroundTruthStage.jobSeed(c, subset: 1, repeat: 0), GroundTruthStage.jobSeed(c, subset: 1, repeat: 0))
        XCTAssertNotEqual(GroundTruthStage.jobSeed(c, subset: 1, repeat: 0), GroundTruthStage.jobSeed(c, subset: 0, repeat: 1))
    }

    func testDivergenceAdviceFitsTheMethod() {
        for m in [SolverMethod.identity, .kfac, .ekfac, .exact] {
            XCTAssertFalse(ScoreStage.divergenceAdvice(m).contains("lr-scale"), m.rawValue)
            XCTAssertTrue(ScoreStage.divergenceAdvice(m).contains("--damping"), m.rawValue)
        }
        for m in [SolverMethod.sni, .astra] { XCTAssertTrue(ScoreStage.divergenceAdvice(m).contains("--lr-scale"), m.rawValue) }
    }
}
