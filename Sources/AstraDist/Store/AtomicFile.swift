import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes files so a crash never leaves a half-written artifact: temp file in the same
/// directory, fsync, rename, fsync of the directory.
public enum AtomicFile {
    public static func write(_ bytes: [UInt8], to path: String) throws {
        let dir = FilePath.parent(of: path)
        try FileManager.default.createDirectory(atPath: dir.isEmpty ? "." : dir, withIntermediateDirectories: true)
        let tmp = path + ".tmp-\(getpid())"
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
            unlink(tmp)
            throw AstraError("cannot write \(path): \(String(cString: strerror(errno))) (disk full or read-only?)")
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
