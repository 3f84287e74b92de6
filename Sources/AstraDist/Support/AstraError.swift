/// A user-facing failure: one line that names the file (or option) and the fix.
/// The CLI prints `error: <message>` once and ends every rank with a non-zero exit
/// (`main.swift`'s `fail`; docs/commands.md, "How failures look").
public struct AstraError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
