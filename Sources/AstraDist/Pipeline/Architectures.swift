/// Named network architectures beyond the MLP of `ExperimentConfig.hidden`, built for the
/// data's input and output widths.
public enum Architectures {
    public static let names = ["cnn", "resnet9"]

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
        case "resnet9":
            let side = Int((Double(features) / 3).squareRoot().rounded())
            guard 3 * side * side == features, side % 4 == 0, side >= 12 else {
                throw AstraError("architecture resnet9 needs square three-channel images with a side divisible by 4 and at least 12, such as CIFAR-10's 32×32 (got \(features) features)")
            }
            return resNet9(side: side, classes: classes, activation: activation)
        default:
            throw AstraError("unknown architecture '\(name)'; choose one of: \(names.joined(separator: ", "))")
        }
    }

    /// kronfluence's CIFAR-10 ResNet-9 (`examples/cifar/pipeline.py`, from TRAK's quickstart) on
    /// `side`×`side`×3 images: conv-BN-activation blocks (every conv bias-free) 3→64 (3×3, pad
    /// 1), 64→128 (5×5, stride 2, pad 2), a residual pair at 128 (3×3, pad 1), 128→256 (3×3,
    /// pad 1), max-pool 2, a residual pair at 256, 256→128 (3×3, no padding), global max-pool,
    /// Flatten, a bias-free linear head (a 1×1 convolution on the 1×1 image: the same map,
    /// PyTorch's `Linear(128, C, bias=False)` weight) and `Mul(0.2)`. On 32×32: 290.6 M
    /// multiply-adds per image forward (≈ 1.7 GFLOP per image per training step).
    static func resNet9(side: Int, classes: Int, activation: Pointwise) -> NetworkShape {
        var ops: [NetworkOperation] = []
        /// Conv (bias-free), batch norm, activation on a `size`×`size` image; returns the output side.
        func block(_ input: Int, _ output: Int, size: Int, kernel: Int = 3, stride: Int = 1, padding: Int = 1) -> Int {
            let conv = Conv2dLayer(channels: input, height: size, width: size, filters: output, kernel: kernel, stride: stride, padding: padding, bias: false)
            ops += [.layer(.conv2d(conv)), .batchNorm(BatchNorm2d(channels: output, height: conv.outHeight, width: conv.outWidth)), .pointwise(activation)]
            return conv.outHeight
        }
        func residualPair(_ channels: Int, size: Int) {
            let from = ops.count
            _ = block(channels, channels, size: size); _ = block(channels, channels, size: size)
            ops.append(.residual(from: from))
        }
        var size = block(3, 64, size: side)
        size = block(64, 128, size: size, kernel: 5, stride: 2, padding: 2)
        residualPair(128, size: size)
        size = block(128, 256, size: size)
        ops.append(.spatial(.maxPool(MaxPool2d(channels: 256, height: size, width: size, kernel: 2, stride: 2))))
        size /= 2
        residualPair(256, size: size)
        size = block(256, 128, size: size, padding: 0)
        ops += [.spatial(.globalMaxPool(.global(channels: 128, height: size, width: size))), .spatial(.flatten(channels: 128, height: 1, width: 1)),
                .layer(.conv2d(Conv2dLayer(channels: 128, height: 1, width: 1, filters: classes, kernel: 1, bias: false))), .spatial(.scale(0.2))]
        return NetworkShape(operations: ops)
    }
}
