import AstraDist

/// One command-line option: `--name VALUE` (or `--name=VALUE`), or a flag without value.
struct OptionSpec: Sendable {
    let name: String
    /// Metavariable shown in help; nil for a boolean flag.
    let value: String?
    let help: String
}

/// Parsed options of one command. Every accessor validates and throws one clear line.
struct Options: Sendable {
    private(set) var values: [String: String] = [:]
    let command: String

    init(command: String, arguments: [String], specs: [OptionSpec]) throws {
        self.command = command
        var i = 0
        while i < arguments.count {
            let arg = arguments[i]
            guard arg.hasPrefix("--") else {
                if i > 0, let previous = specs.first(where: { "--" + $0.name == arguments[i - 1] }), previous.value == nil {
                    throw AstraError("\(command): --\(previous.name) is a switch and takes no value (got '\(arg)'); see `astra-dist \(command) --help`")
                }
                throw AstraError("\(command): unexpected argument '\(arg)'; see `astra-dist \(command) --help`")
            }
            var name = String(arg.dropFirst(2)), inline: String? = nil
            if let eq = name.firstIndex(of: "=") { inline = String(name[name.index(after: eq)...]); name = String(name[..<eq]) }
            guard let spec = specs.first(where: { $0.name == name }) else {
                throw AstraError("\(command): unknown option --\(name); see `astra-dist \(command) --help`")
            }
            if spec.value == nil {
                guard inline == nil else { throw AstraError("\(command): --\(name) takes no value") }
                values[name] = "true"
            } else if let inline {
                values[name] = inline
            } else {
                guard i + 1 < arguments.count, !arguments[i + 1].hasPrefix("--") else {
                    throw AstraError("\(command): --\(name) needs a value (\(spec.value!))")
                }
                values[name] = arguments[i + 1]; i += 1
            }
            i += 1
        }
    }

    func has(_ name: String) -> Bool { values[name] != nil }
    mutating func set(_ name: String, _ value: String) { values[name] = value }
    func string(_ name: String) -> String? { values[name] }
    func flag(_ name: String) -> Bool { values[name] == "true" }

    func int(_ name: String, min lower: Int = Int.min) throws -> Int? {
        guard let s = values[name] else { return nil }
        guard let v = Int(s), v >= lower else { throw AstraError("\(command): --\(name) expects an integer ≥ \(lower), got '\(s)'") }
        return v
    }
    func double(_ name: String) throws -> Double? {
        guard let s = values[name] else { return nil }
        guard let v = Double(s), v.isFinite else { throw AstraError("\(command): --\(name) expects a number, got '\(s)'") }
        return v
    }
    /// `0,1,2` or `0-4` or a mix (`0-2,7`); a number listed twice is refused.
    func intList(_ name: String) throws -> [Int]? {
        guard let s = values[name] else { return nil }
        let out = try parseIntList(s, option: name)
        if let twice = out.indices.first(where: { out[..<$0].contains(out[$0]) }).map({ out[$0] }) {
            throw AstraError("\(command): --\(name) lists \(twice) twice ('\(s)'); name each once")
        }
        return out
    }
    /// Values one `A-B` range of a list option may expand to.
    static let maximumRange = 1_000_000
    func parseIntList(_ s: String, option name: String) throws -> [Int] {
        var out: [Int] = []
        for part in s.split(separator: ",", omittingEmptySubsequences: false) {
            let ends = part.split(separator: "-", omittingEmptySubsequences: false)
            if ends.count == 2, let a = Int(ends[0]), let b = Int(ends[1]), a <= b, a >= 0 {
                // A range is expanded in memory: an absurd one is refused, not an aborted allocation.
                guard b - a < Self.maximumRange else { throw AstraError("\(command): --\(name) range \(part) has \(b - a) values or more; at most \(Self.maximumRange) are allowed") }
                out += Array(a...b)
            }
            else if ends.count == 1, let a = Int(ends[0]), a >= 0 { out.append(a) }
            else { throw AstraError("\(command): --\(name) expects non-negative integers like 0,1,2 or 0-4, got '\(s)'") }
        }
        guard !out.isEmpty else { throw AstraError("\(command): --\(name) is empty") }
        return out
    }
    /// A comma-separated list; an empty list or item (`--hidden ,`, `--method ekfac,`) is refused.
    func list(_ name: String) throws -> [String]? {
        guard let s = values[name] else { return nil }
        let items = s.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard !items.contains(where: \.isEmpty) else {
            throw AstraError("\(command): --\(name) expects a comma-separated list without empty items, got '\(s)'")
        }
        return items
    }
    /// Refuses `a` together with `b` (contradictory options are never silently resolved).
    func refuseTogether(_ a: String, _ b: String, because why: String) throws {
        if has(a) && has(b) { throw AstraError("\(command): --\(a) and --\(b) contradict each other (\(why)); pass one") }
    }
}

/// Prints a command's help: summary, then one line per option.
func helpText(command: String, summary: String, specs: [OptionSpec]) -> String {
    var s = "usage: astra-dist \(command) [options]\n\n\(summary)\n\noptions:\n"
    for o in specs {
        let left = "  --\(o.name)" + (o.value.map { " \($0)" } ?? "")
        s += left.padding(toLength: max(left.count + 2, 28), withPad: " ", startingAt: 0) + o.help + "\n"
    }
    return s
}
