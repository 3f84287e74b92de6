/// A value of a score file's solver report (`ScoreMetadata.solver`): a JSON number, or text
/// (the method's name). Files from before numbers hold every value as text; `number` reads
/// both, so old files keep working.
public enum ReportValue: Codable, Sendable, Equatable, CustomStringConvertible {
    case number(Double)
    case text(String)

    public init(_ v: Double) { self = .number(v) }
    public init(_ v: Int) { self = .number(Double(v)) }

    /// The value as a number (text that parses as one included), nil for other text.
    public var number: Double? {
        switch self { case .number(let d): d; case .text(let s): Double(s) }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let d = try? c.decode(Double.self) { self = .number(d) } else { self = .text(try c.decode(String.self)) }
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self { case .number(let d): try c.encode(d); case .text(let s): try c.encode(s) }
    }
    public var description: String {
        switch self {
        case .number(let d): d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : "\(d)"
        case .text(let s): s
        }
    }
}
