import CZlib
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The append-only record of finished retraining jobs (`DIR/groundtruth/journal`): rank 0
/// appends every finished job as one self-checking record and fsyncs it, so a sweep that
/// is killed resumes by running only the jobs the journal lacks.
///
/// File layout (all integers little-endian):
///
///     header:  "ASTRAJNL"  u32 version (1)  u32 L  L bytes UTF-8 header text  u32 crc32
///     record:  u32 magic "JREC"  u64 job id  u32 count  count × f32  u32 crc32
///
/// Each crc32 (zlib) covers every preceding byte of its own header or record. The header
/// text identifies the run (setting hash, masks hash, M, R, Q, …); the caller builds it
/// canonically (e.g. JSON with sorted keys), because headers are compared byte for byte.
///
/// Crash model: the header is written atomically (temp file + rename), records by single
/// appends. A crash can therefore only leave a torn *last* record, which `open` cuts away
/// with a warning. An invalid record followed by a valid one cannot come from a crash (it
/// is damage), so `open` refuses it rather than silently dropping a finished job.
///
/// One process at a time: `open` takes an exclusive `flock`, so a second sweep on the same
/// workdir fails with a clear message instead of interleaving records. Not thread-safe:
/// call `append` from one thread (the work queue calls `onResult` serially on rank 0).
public final class Journal {
    public static let fileMagic = Array("ASTRAJNL".utf8)
    public static let version: UInt32 = 1
    /// "JREC" read as a little-endian u32.
    public static let recordMagic: UInt32 = 0x4345_524A

    public let path: String
    /// The header text the journal was opened with (equal to the one on disk).
    public let header: String
    /// Job id → its values (typically the Q measurements `f_q`), for every valid record.
    public private(set) var completed: [Int: [Float]]
    /// Things `open` repaired, one line each (a torn last record cut away); the caller
    /// prints them so the user knows a job will be rerun.
    public private(set) var warnings: [String]

    private var fd: Int32
    /// Bytes of valid content: the offset of the next record.
    private var size: Int

    private init(path: String, header: String, completed: [Int: [Float]], warnings: [String], fd: Int32, size: Int) {
        self.path = path; self.header = header; self.completed = completed
        self.warnings = warnings; self.fd = fd; self.size = size
    }
    deinit { close() }

    /// Opens the journal at `path`, creating it (and its directory) with `header` if it
    /// does not exist, and reads every finished job into `completed`.
    ///
    /// Throws an `AstraError` naming the file and the fix when: the file exists with a
    /// different header (another setting or mask file: never mixed), it is not a journal
    /// or has a damaged header, a damaged record is followed by valid ones, another process
    /// holds it, or it cannot be read or written.
    /// - Complexity: O(file size).
    public static func open(path: String, header: String) throws -> Journal {
        let dir = FilePath.parent(of: path)
        let fix = "use a new --workdir, or delete \(dir.isEmpty ? "." : dir)/ to recompute every job"
        if !FileManager.default.fileExists(atPath: path) {
            try AtomicFile.write(encodeHeader(header), to: path)
        }
        let fd = Glibc.open(path, O_RDWR | O_APPEND | O_CLOEXEC)
        guard fd >= 0 else {
            throw AstraError("cannot open \(path): \(String(cString: strerror(errno))); check that the directory is writable")
        }
        var ok = false
        defer { if !ok { Glibc.close(fd) } }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK {
            throw AstraError("\(path) is in use by another process (a second groundtruth run on the same --workdir?); wait for it to finish or stop it")
        }
        let bytes = try AtomicFile.read(path, hint: fix)
        let (completed, found, end) = try parse(bytes, path: path, header: header)
        var warnings = found
        if end < bytes.count {
            guard ftruncate(fd, off_t(end)) == 0, fsync(fd) == 0 else {
                throw AstraError("cannot repair \(path) (truncate to \(end) bytes): \(String(cString: strerror(errno))); check that it is writable")
            }
            warnings.append("\(path): cut away an incomplete last record (\(bytes.count - end) bytes from an interrupted run); that job will run again")
        }
        ok = true
        return Journal(path: path, header: header, completed: completed, warnings: warnings, fd: fd, size: end)
    }

    /// Reads the contents `bytes` of the journal at `path` (which names it in errors) written
    /// for `header`: the finished jobs, warnings, and the end of the valid content (less than
    /// `bytes.count` when a torn last record is to be cut away). Throws, as `open` does, for
    /// another header, a damaged header, or a damaged record followed by valid ones.
    /// - Complexity: O(file size), O(size²) only when a damaged tail is scanned.
    public static func parse(_ bytes: [UInt8], path: String, header: String) throws -> (completed: [Int: [Float]], warnings: [String], end: Int) {
        let dir = FilePath.parent(of: path)
        let fix = "use a new --workdir, or delete \(dir.isEmpty ? "." : dir)/ to recompute every job"
        // Header.
        let notJournal = AstraError("\(path) is not a valid ground-truth journal (missing or damaged header); \(fix)")
        guard bytes.count >= 20, Array(bytes[0..<8]) == fileMagic else { throw notJournal }
        let version = readU32(bytes, 8)
        guard version == Self.version else {
            throw AstraError("\(path) has journal version \(version) but this astra-dist reads version \(Self.version); \(fix)")
        }
        let length = Int(readU32(bytes, 12))
        let headerEnd = 16 + length + 4
        guard bytes.count >= headerEnd, readU32(bytes, headerEnd - 4) == crc(bytes, 0, headerEnd - 4) else { throw notJournal }
        let onDisk = String(decoding: bytes[16..<(16 + length)], as: UTF8.self)
        guard onDisk == header else {
            throw AstraError("\(path) belongs to a different ground-truth run (other setting or masks): journal header \(onDisk), this run \(header); \(fix)")
        }

        // Records.
        var completed: [Int: [Float]] = [:], warnings: [String] = []
        var offset = headerEnd
        while offset < bytes.count {
            if let r = parseRecord(bytes, at: offset) {
                if completed[r.job] != nil { warnings.append("\(path): job \(r.job) is recorded twice; using the later record") }
                completed[r.job] = r.values
                offset = r.end
                continue
            }
            // Invalid here. Damage if any valid record follows; otherwise a torn tail.
            if let later = ((offset + 1)..<bytes.count).first(where: { parseRecord(bytes, at: $0) != nil }) {
                throw AstraError("\(path) is corrupted: the record at byte \(offset) fails its checksum but valid records follow at byte \(later) (damage, not a crash); restore the file, or \(fix)")
            }
            break
        }
        return (completed, warnings, min(offset, bytes.count))
    }

    /// Appends job `job` with `values` as one record and fsyncs before returning, so a
    /// returned call survives a crash.
    ///
    /// Throws an `AstraError` if the job is already recorded (the work queue runs each job
    /// once) or the write fails (then the partial record is cut off again).
    /// - Complexity: O(count) plus one fsync.
    public func append(job: Int, values: [Float]) throws {
        guard fd >= 0 else { throw AstraError("\(path): append after close (internal error)") }
        guard completed[job] == nil else { throw AstraError("\(path): job \(job) is already recorded (internal error: a job ran twice)") }
        precondition(job >= 0 && values.count <= Int(UInt32.max))
        let record = Self.encodeRecord(job: job, values: values)
        var written = 0
        var failure: Int32 = 0
        record.withUnsafeBytes { p in
            while written < p.count {
                let n = Glibc.write(fd, p.baseAddress! + written, p.count - written)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { failure = n < 0 ? errno : ENOSPC; break }
                written += n
            }
        }
        if failure == 0 && fsync(fd) != 0 { failure = errno }
        guard failure == 0 else {
            // Leave no torn record behind a later successful append (that would be "damage").
            _ = ftruncate(fd, off_t(size))
            throw AstraError("cannot append job \(job) to \(path): \(String(cString: strerror(failure))) (disk full or read-only?); free space and rerun with the same --workdir")
        }
        size += record.count
        completed[job] = values
    }

    /// Releases the file (and its lock). Further appends throw. Called by `deinit`.
    public func close() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }

    // MARK: encoding

    public static func encodeHeader(_ header: String) -> [UInt8] {
        var b = fileMagic
        let text = Array(header.utf8)
        appendU32(&b, version)
        appendU32(&b, UInt32(text.count))
        b += text
        appendU32(&b, crc(b, 0, b.count))
        return b
    }

    public static func encodeRecord(job: Int, values: [Float]) -> [UInt8] {
        var b: [UInt8] = []
        b.reserveCapacity(20 + 4 * values.count)
        appendU32(&b, recordMagic)
        appendU64(&b, UInt64(job))
        appendU32(&b, UInt32(values.count))
        for v in values { appendU32(&b, v.bitPattern) }
        appendU32(&b, crc(b, 0, b.count))
        return b
    }

    /// The record starting at `o`, if it is complete and its magic and checksum hold.
    static func parseRecord(_ b: [UInt8], at o: Int) -> (job: Int, values: [Float], end: Int)? {
        guard o + 20 <= b.count, readU32(b, o) == recordMagic else { return nil }
        let count = Int(readU32(b, o + 12))
        let end = o + 20 + 4 * count
        guard end <= b.count, readU32(b, end - 4) == crc(b, o, end - 4 - o) else { return nil }
        let job = readU64(b, o + 4)
        guard job <= UInt64(Int.max) else { return nil }
        let values = (0..<count).map { Float(bitPattern: readU32(b, o + 16 + 4 * $0)) }
        return (Int(job), values, end)
    }

    static func crc(_ b: [UInt8], _ start: Int, _ count: Int) -> UInt32 {
        b.withUnsafeBufferPointer { p in
            UInt32(truncatingIfNeeded: crc32(0, p.baseAddress! + start, uInt(count)))
        }
    }
    static func readU32(_ b: [UInt8], _ o: Int) -> UInt32 {
        UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24
    }
    static func readU64(_ b: [UInt8], _ o: Int) -> UInt64 {
        UInt64(readU32(b, o)) | UInt64(readU32(b, o + 4)) << 32
    }
    static func appendU32(_ b: inout [UInt8], _ v: UInt32) {
        for s in stride(from: 0, to: 32, by: 8) { b.append(UInt8(truncatingIfNeeded: v >> UInt32(s))) }
    }
    static func appendU64(_ b: inout [UInt8], _ v: UInt64) {
        appendU32(&b, UInt32(truncatingIfNeeded: v)); appendU32(&b, UInt32(truncatingIfNeeded: v >> 32))
    }
}
