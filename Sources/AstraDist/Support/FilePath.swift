/// Path arithmetic that cannot trap. Foundation's `NSString.deletingLastPathComponent`
/// (swift-corelibs-foundation of Swift 6.0) crashes on a one-character path such as `t`
/// (`--trace t` ended in an illegal instruction), so paths are split here instead.
public enum FilePath {
    /// The directory part of `path`, like `deletingLastPathComponent`: `a/b` → `a`,
    /// `/j` → `/`, `j` → `` (empty: the current directory), `a/b/` → `a`, `/` → `/`.
    public static func parent(of path: String) -> String {
        var p = Substring(path)
        while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
        guard let slash = p.lastIndex(of: "/") else { return "" }
        var dir = p[..<slash]
        while dir.count > 1 && dir.hasSuffix("/") { dir = dir.dropLast() }
        return dir.isEmpty ? "/" : String(dir)
    }
}
