/// One step of a network, in the order data flows: a parameterised layer or a parameter-free
/// elementwise map. Codable as `{"op": "linear", "inputs": I, "outputs": O}`,
/// `{"op": "conv2d", "channels": C, "height": H, "width": W, "filters": O, "kernel": k,
/// "stride": s, "padding": p, "bias": true}`, `{"op": "maxpool2d", "channels", "height",
/// "width", "kernel", "stride"}`, `{"op": "globalmaxpool" | "flatten", "channels", "height",
/// "width"}`, `{"op": "scale", "factor": x}`, `{"op": "relu"}` / `{"op": "gelu"}`,
/// `{"op": "batchnorm2d", "channels", "height", "width"}` or `{"op": "residual", "from": j}`.
public enum NetworkOperation: Equatable, Sendable, Codable {
    case layer(NetworkLayer)
    case pointwise(Pointwise)
    /// Parameter-free and piecewise linear, possibly changing the width (pools, Flatten, Scale).
    case spatial(SpatialOperation)
    /// `y = x + value_j`: adds the input of the earlier operation j (1 ≤ j < this operation's
    /// index, same width), ResNet's `x + f(x)` with f the operations j ..< here. One flat
    /// list keeps one walk: the backward and transposed walks add this operation's output
    /// cotangent into value j's once they have computed it (`NetworkShape.residualsFrom`).
    case residual(from: Int)
    /// Trained with batch statistics, frozen (a per-channel affine map) for everything after
    /// training; its state lives in `Network.normalization`, outside the parameter vector.
    case batchNorm(BatchNorm2d)

    public static func linear(inputs: Int, outputs: Int) -> NetworkOperation { .layer(.linear(LinearLayer(inputs: inputs, outputs: outputs))) }

    private enum Keys: String, CodingKey { case op, inputs, outputs, channels, height, width, filters, kernel, stride, padding, bias, factor, from }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        let op = try c.decode(String.self, forKey: .op)
        if op == "linear" {
            let i = try c.decode(Int.self, forKey: .inputs), o = try c.decode(Int.self, forKey: .outputs)
            guard i > 0, o > 0 else { throw DecodingError.dataCorruptedError(forKey: .inputs, in: c, debugDescription: "linear widths must be positive") }
            self = .linear(inputs: i, outputs: o)
        } else if op == "conv2d" {
            let sizes = try [Keys.channels, .height, .width, .filters, .kernel, .stride, .padding].map { try c.decode(Int.self, forKey: $0) }
            let (ch, h, w, f, k, st, pad) = (sizes[0], sizes[1], sizes[2], sizes[3], sizes[4], sizes[5], sizes[6])
            guard ch > 0, h > 0, w > 0, f > 0, k > 0, st > 0, pad >= 0, k <= h + 2 * pad, k <= w + 2 * pad else {
                throw DecodingError.dataCorruptedError(forKey: .kernel, in: c, debugDescription: "conv2d sizes must be positive (padding ≥ 0) and the kernel fit the padded image")
            }
            self = .layer(.conv2d(Conv2dLayer(channels: ch, height: h, width: w, filters: f, kernel: k, stride: st, padding: pad,
                                              bias: try c.decode(Bool.self, forKey: .bias))))
        } else if ["maxpool2d", "globalmaxpool", "flatten"].contains(op) {
            let ch = try c.decode(Int.self, forKey: .channels), h = try c.decode(Int.self, forKey: .height), w = try c.decode(Int.self, forKey: .width)
            let k = op == "maxpool2d" ? try c.decode(Int.self, forKey: .kernel) : 1, st = op == "maxpool2d" ? try c.decode(Int.self, forKey: .stride) : 1
            guard ch > 0, h > 0, w > 0, k > 0, st > 0, k <= h, k <= w else {
                throw DecodingError.dataCorruptedError(forKey: .channels, in: c, debugDescription: "\(op) sizes must be positive and the window fit the image")
            }
            switch op {
            case "maxpool2d": self = .spatial(.maxPool(MaxPool2d(channels: ch, height: h, width: w, kernel: k, stride: st)))
            case "globalmaxpool": self = .spatial(.globalMaxPool(.global(channels: ch, height: h, width: w)))
            default: self = .spatial(.flatten(channels: ch, height: h, width: w))
            }
        } else if op == "batchnorm2d" {
            let ch = try c.decode(Int.self, forKey: .channels), h = try c.decode(Int.self, forKey: .height), w = try c.decode(Int.self, forKey: .width)
            guard ch > 0, h > 0, w > 0 else { throw DecodingError.dataCorruptedError(forKey: .channels, in: c, debugDescription: "batchnorm2d sizes must be positive") }
            self = .batchNorm(BatchNorm2d(channels: ch, height: h, width: w))
        } else if op == "residual" {
            self = .residual(from: try c.decode(Int.self, forKey: .from))
        } else if op == "scale" {
            self = .spatial(.scale(try c.decode(Double.self, forKey: .factor)))
        } else if let p = Pointwise(rawValue: op) {
            self = .pointwise(p)
        } else {
            throw DecodingError.dataCorruptedError(forKey: .op, in: c, debugDescription: "unknown operation '\(op)' (linear, conv2d, maxpool2d, globalmaxpool, flatten, scale, batchnorm2d, residual, \(Pointwise.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        switch self {
        case .layer(.linear(let l)):
            try c.encode("linear", forKey: .op); try c.encode(l.inputs, forKey: .inputs); try c.encode(l.outputs, forKey: .outputs)
        case .layer(.conv2d(let l)):
            try c.encode("conv2d", forKey: .op)
            for (key, value) in [(Keys.channels, l.channels), (.height, l.height), (.width, l.width), (.filters, l.filters),
                                 (.kernel, l.kernel), (.stride, l.stride), (.padding, l.padding)] {
                try c.encode(value, forKey: key)
            }
            try c.encode(l.bias, forKey: .bias)
        case .pointwise(let p):
            try c.encode(p.rawValue, forKey: .op)
        case .residual(let from):
            try c.encode("residual", forKey: .op); try c.encode(from, forKey: .from)
        case .batchNorm(let n):
            try c.encode("batchnorm2d", forKey: .op); try encodeImage(n.channels, n.height, n.width, into: &c)
        case .spatial(.scale(let factor)):
            try c.encode("scale", forKey: .op); try c.encode(factor, forKey: .factor)
        case .spatial(.flatten(let ch, let h, let w)):
            try c.encode("flatten", forKey: .op); try encodeImage(ch, h, w, into: &c)
        case .spatial(.globalMaxPool(let p)):
            try c.encode("globalmaxpool", forKey: .op); try encodeImage(p.channels, p.height, p.width, into: &c)
        case .spatial(.maxPool(let p)):
            try c.encode("maxpool2d", forKey: .op); try encodeImage(p.channels, p.height, p.width, into: &c)
            try c.encode(p.windowHeight, forKey: .kernel); try c.encode(p.stride, forKey: .stride)
        }
    }

    private func encodeImage(_ channels: Int, _ height: Int, _ width: Int, into c: inout KeyedEncodingContainer<Keys>) throws {
        try c.encode(channels, forKey: .channels); try c.encode(height, forKey: .height); try c.encode(width, forKey: .width)
    }
}
