import AstraDist
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `astra-fuzz child FORMAT BATCH PROGRESS START COUNT`: parses inputs START..<START+COUNT of
/// the batch file with the format's real entry point. Before each input it writes the
/// input's index to PROGRESS, so when the child dies the parent knows which input killed it.
/// An error that is not an `AstraError` is a finding: printed (`finding INDEX: TYPE: TEXT`)
/// and the child exits 3. A trap or a signal ends the child; the parent sees that.
enum Child {
    static func run(format: FileFormat, batch: String, progress: String, start: Int, count: Int) throws -> Int32 {
        // A parser that tried to allocate without bound must fail here, not swap the machine.
        var limit = rlimit(rlim_cur: 8 << 30, rlim_max: 8 << 30)
        setrlimit(Int32(RLIMIT_AS.rawValue), &limit)
        let inputs = try Batch.read(batch)
        let fd = open(progress, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw FuzzFailure("cannot open \(progress)") }
        defer { close(fd) }
        let end = min(inputs.count, start + count)
        for i in start..<end {
            var index = Int64(i)
            _ = pwrite(fd, &index, 8, 0)
            do { try format.parse(inputs[i], path: "input-\(i).\(format.rawValue)") }
            catch is AstraError { continue }
            catch {
                print("finding \(i): \(type(of: error)): \(error)")
                fflush(nil)
                return 3
            }
        }
        return 0
    }
}
