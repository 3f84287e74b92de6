import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes files so a crash never leaves a half-written artifact: temp file in the same
/// directory, fsync, rename, fsync of the directory. The temp file is named
/// `PATH.tmp-HOST-PID` (workspaces are shared between hosts), so the next command can tell a
/// killed writer's leftover from a live one's (`WorkDirectory.removeStaleTemporaries`).
public enum AtomicFile {
    /// The marker between an artifact's name and its writer's identity.
    public static let temporaryMarker = ".tmp-"

    /// This process's host name (without `-`, which separates it from the pid).
    public static let hostName: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "unknown" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "unknown" : name.replacingOccurrences(of: "-", with: "_")
    }()

    /// The temporary file this process writes before renaming it to `path`.
    public static func temporaryPath(for path: String) -> String {
        path + temporaryMarker + hostName + "-\(getpid())"
    }

    /// The writer (host, pid) of a temporary file named by `temporaryPath`, or nil for any other name.
    public static func temporaryWriter(of path: String) -> (host: String, pid: Int32)? {
        let name = (path as NSString).lastPathComponent
        guard let marker = name.range(of: temporaryMarker, options: .backwards) else { return nil }
        let identity = name[marker.upperBound...]
        guard let dash = identity.lastIndex(of: "-"), let pid = Int32(identity[identity.index(after: dash)...]), pid > 0 else { return nil }
        let host = String(identity[..<dash])
        return host.isEmpty ? nil : (host, pid)
    }

    public static func write(_ bytes: [UInt8], to path: String) throws {
        let dir = FilePath.parent(of: path)
        do { try FileManager.default.createDirectory(atPath: dir.isEmpty ? "." : dir, withIntermediateDirectories: true) }
        catch { throw AstraError("cannot create directory \(dir.isEmpty ? "." : dir) for \(path): a file is in the way or the parent is not writable; remove it or choose another --workdir") }
        let tmp = temporaryPath(for: path)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw AstraError("cannot write \(tmp): \(String(cString: strerror(errno))); check that the directory is writable") }
        var ok = true
        bytes.withUnsafeBytes { p in
            var off = 0
            while off < p.count {
                let n = Glibc.write(fd, p.baseAddress! + off, p.count - off)
                if n <= 0 { ok = false; break }
                off += n
            }
        }
        ok = ok && fsync(fd) == 0
        close(fd)
        guard ok, rename(tmp, path) == 0 else {
            let code = errno
            unlink(tmp)
            let advice = code == EISDIR ? "a directory is in the way: remove it or choose another path" : "check free space and that the directory is writable"
            throw AstraError("cannot write \(path): \(String(cString: strerror(code))); \(advice)")
        }
        syncDirectory(dir)
    }
    public static func write(_ string: String, to path: String) throws { try write(Array(string.utf8), to: path) }

    static func syncDirectory(_ dir: String) {
        let fd = open(dir.isEmpty ? "." : dir, O_RDONLY)
        if fd >= 0 { fsync(fd); close(fd) }
    }

    /// Reads a whole file, or throws a one-line error naming it and `hint`.
    public static func read(_ path: String, hint: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw AstraError("cannot read \(path): file missing or unreadable; \(hint)")
        }
        return [UInt8](data)
    }
}
