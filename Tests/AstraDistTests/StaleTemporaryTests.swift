import AstraDist
import Foundation
import XCTest

/// Leftovers of killed atomic writes: the next command removes those whose writer is dead.
final class StaleTemporaryTests: XCTestCase {
    /// The pid of a process that has exited (reaped), so `kill(pid, 0)` fails.
    func deadPid() throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run(); p.waitUntilExit()
        return p.processIdentifier
    }

    func testOnlyDeadWritersTemporariesAreRemoved() throws {
        let root = TestSupport.temporaryDirectory("stale")
        let ws = WorkDirectory(root)
        let dir = root + "/models/seed-0"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let host = AtomicFile.hostName, dead = try deadPid()
        let stale = dir + "/layer-0.npy.tmp-\(host)-\(dead)"
        let live = AtomicFile.temporaryPath(for: dir + "/layer-1.npy")
        let otherHost = dir + "/layer-2.npy.tmp-another_host-\(dead)"
        let artifact = dir + "/model.json"
        for p in [stale, live, otherHost, artifact] { XCTAssertTrue(FileManager.default.createFile(atPath: p, contents: Data("x".utf8))) }
        XCTAssertEqual(live, dir + "/layer-1.npy.tmp-\(host)-\(getpid())")
        XCTAssertEqual(AtomicFile.temporaryWriter(of: stale)?.pid, dead)
        XCTAssertNil(AtomicFile.temporaryWriter(of: artifact))

        // Not yet a workspace (no config.json): nothing is walked.
        XCTAssertEqual(ws.removeStaleTemporaries(), [])
        XCTAssertTrue(FileManager.default.fileExists(atPath: stale))

        try AtomicFile.write("{}\n", to: ws.configPath)
        XCTAssertEqual(ws.removeStaleTemporaries(), [stale])
        XCTAssertFalse(FileManager.default.fileExists(atPath: stale))
        for p in [live, otherHost, artifact] { XCTAssertTrue(FileManager.default.fileExists(atPath: p), p) }
    }

    /// An atomic write leaves no temporary behind, and a blocked directory gets one clear error.
    func testAtomicWriteLeavesNoTemporary() throws {
        let root = TestSupport.temporaryDirectory("atomic")
        try AtomicFile.write("a\n", to: root + "/sub/file.txt")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root + "/sub"), ["file.txt"])
        XCTAssertTrue(FileManager.default.createFile(atPath: root + "/blocked", contents: Data()))
        XCTAssertThrowsError(try AtomicFile.write("a\n", to: root + "/blocked/file.txt")) { e in
            XCTAssertTrue("\(e)".contains("cannot create directory \(root)/blocked"), "\(e)")
        }
    }
}
