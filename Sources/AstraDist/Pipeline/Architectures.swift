/// Named network architectures beyond the MLP of `ExperimentConfig.hidden`, built for the
/// data's input and output widths.
public enum Architectures {
    public static let names = ["cnn"]

    /// The network of `name` for inputs of `features` values and `classes` outputs.
    /// `cnn`: square one-channel images (side √features, divisible by 4): conv 5×5 (1→8, padding
    /// 2), activation, max-pool 2; conv 5×5 (8→16, padding 2), activation, max-pool 2; Flatten
    /// (PyTorch's NCHW order); a linear head. On 28×28 MNIST: 792,640 multiply-adds per image
    /// (conv 156,800 + 627,200, head 7,840) and 11,274 parameters.
    public static func shape(_ name: String, features: Int, classes: Int, activation: Pointwise) throws -> NetworkShape {
        switch name {
        case "cnn":
            let side = Int(Double(features).squareRoot().rounded())
            guard side * side == features, side % 4 == 0 else {
                throw AstraError("architecture cnn needs square one-channel images with a side divisible by 4 (got \(features) features)")
            }
            let half = side / 2, quarter = side / 4
            return NetworkShape(operations: [
                .layer(.conv2d(Conv2dLayer(channels: 1, height: side, width: side, filters: 8, kernel: 5, padding: 2))), .pointwise(activation),
                .spatial(.maxPool(MaxPool2d(channels: 8, height: side, width: side, kernel: 2, stride: 2))),
                .layer(.conv2d(Conv2dLayer(channels: 8, height: half, width: half, filters: 16, kernel: 5, padding: 2))), .pointwise(activation),
                .spatial(.maxPool(MaxPool2d(channels: 16, height: half, width: half, kernel: 2, stride: 2))),
                .spatial(.flatten(channels: 16, height: quarter, width: quarter)),
                .linear(inputs: 16 * quarter * quarter, outputs: classes),
            ])
        default:
            throw AstraError("unknown architecture '\(name)'; choose one of: \(names.joined(separator: ", "))")
        }
    }
}
