#if canImport(Glibc)
import Glibc
#endif

/// Sizes that come from files and options, checked before anything is allocated: the
/// arithmetic is overflow-checked and the result compared with the machine's physical
/// memory, so a corrupt header or an absurd option ends in one `error:` line that says how
/// much memory it would take, instead of an overflow trap or an aborted allocation.
public enum MemoryBudget {
    /// Physical memory of this machine in bytes (`sysconf`), or `Int.max` if unknown.
    public static let physicalBytes: Int = {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), pageSize = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, pageSize > 0 else { return Int.max }
        let (bytes, overflow) = pages.multipliedReportingOverflow(by: pageSize)
        return overflow ? Int.max : bytes
    }()

    /// The product of `factors`, or nil if one is negative or the product overflows `Int`.
    public static func product(_ factors: [Int]) -> Int? {
        var p = 1
        for f in factors {
            guard f >= 0 else { return nil }
            let (q, overflow) = p.multipliedReportingOverflow(by: f)
            if overflow { return nil }
            p = q
        }
        return p
    }

    /// The sum of `terms`, or nil if one is nil (an overflowed product) or the sum overflows.
    public static func sum(_ terms: [Int?]) -> Int? {
        var s = 0
        for t in terms {
            guard let t else { return nil }
            let (r, overflow) = s.addingReportingOverflow(t)
            if overflow { return nil }
            s = r
        }
        return s
    }

    /// Throws unless `count` elements of `elementSize` bytes fit in physical memory.
    /// `what` names the thing and where its size came from (file or option), e.g.
    /// "W/model.json: a 784-1000000-10 network"; the message adds the need and the limit.
    /// A nil `count` (overflowed while computing it) is refused as well.
    public static func check(count: Int?, elementSize: Int, what: String, fix: String) throws {
        guard let count, let bytes = product([count, elementSize]) else {
            throw AstraError("\(what) would need more than \(format(Int.max)) of memory (the size overflows); \(fix)")
        }
        guard bytes <= physicalBytes else {
            throw AstraError("\(what) would need \(format(bytes)) of memory but this machine has \(format(physicalBytes)); \(fix)")
        }
    }

    /// "1.5 GiB", "12 KiB", "300 bytes".
    public static func format(_ bytes: Int) -> String {
        let units = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        guard bytes >= 1024 else { return "\(bytes) bytes" }
        var v = Double(bytes), u = -1
        while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
        return (v < 10 ? String(Double(Int(v * 10)) / 10) : String(Int(v))) + " " + units[u]
    }
}
