/// A user-facing failure: one line that names the file (or option) and the fix.
/// The CLI prints `error: <message>` on rank 0 and exits non-zero.
public struct AstraError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
