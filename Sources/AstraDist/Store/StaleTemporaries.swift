import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension WorkDirectory {
    /// Removes the temporary files (`AtomicFile.temporaryPath`) of writers that died: written
    /// on this host by a process that no longer exists. Another host's temporaries are left
    /// alone (their pids mean nothing here); a live writer's, including this process's, too.
    /// Only an established workspace (one holding `config.json`) is walked, so a mistyped
    /// `--workdir` never sends it through a large tree; symbolic links are not followed.
    /// Call on one rank at command start. Returns the removed paths.
    @discardableResult
    public func removeStaleTemporaries() -> [String] {
        guard FileManager.default.fileExists(atPath: configPath),
              let walk = FileManager.default.enumerator(atPath: root) else { return [] }
        var removed: [String] = []
        while let relative = walk.nextObject() as? String {
            let path = root + "/" + relative
            guard let writer = AtomicFile.temporaryWriter(of: path), writer.host == AtomicFile.hostName,
                  !Self.processExists(writer.pid), unlink(path) == 0 else { continue }
            removed.append(path)
        }
        return removed
    }

    /// Whether a process with this pid exists on this host (a permission error means it does).
    static func processExists(_ pid: Int32) -> Bool { kill(pid, 0) == 0 || errno == EPERM }
}
