/// The pixel layout of an image dataset: `[y, x, c]` per example (the layout of
/// `Conv2dLayer`), and per channel the input value of a black (zero) pixel after the
/// loader's normalisation, which padding fills with (torchvision pads before `Normalize`).
public struct ImageLayout: Equatable, Sendable {
    public var channels: Int
    public var height: Int
    public var width: Int
    public var fill: [Float]
    public init(channels: Int, height: Int, width: Int, fill: [Float]) {
        self.channels = channels; self.height = height; self.width = width; self.fill = fill
    }
    public var features: Int { channels * height * width }
}

/// Training-set augmentation (kronfluence's CIFAR-10 transforms): torchvision's
/// `RandomCrop(H, padding:)` then `RandomHorizontalFlip()`, redrawn every epoch. The draws of
/// example n in epoch e come from the counter-based stream `(seed, augmentation, e·2³² + n)`,
/// n its global index, so a model's augmentations do not depend on the rank count, the batch
/// it lands in or the subset it trains on.
public struct ImageAugmentation: Codable, Equatable, Sendable {
    /// Pixels of padding on each side before the crop (0: no crop).
    public var padding: Int
    public var horizontalFlip: Bool
    public init(padding: Int, horizontalFlip: Bool) { self.padding = padding; self.horizontalFlip = horizontalFlip }

    /// The crop offsets (top, left in 0...2·padding) and the flip of one example's draw.
    public func draw(seed: UInt64, epoch: Int, globalIndex: Int) -> (top: Int, left: Int, flip: Bool) {
        var rng = CounterRandom(seed: seed, purpose: .augmentation, index: UInt64(epoch) &<< 32 &+ UInt64(globalIndex))
        let top = rng.nextInt(below: 2 * padding + 1), left = rng.nextInt(below: 2 * padding + 1)
        return (top, left, horizontalFlip && rng.nextUniform() < 0.5)
    }

    /// Augments B gathered examples `x` (B×features, `layout`) in place; `globalIndices` are
    /// theirs. `scratch` holds one example (features values).
    public func apply<T: BLASScalar>(_ x: UnsafeMutablePointer<T>, globalIndices: [Int], layout: ImageLayout, seed: UInt64, epoch: Int,
                                     scratch: UnsafeMutablePointer<T>) {
        let c = layout.channels, h = layout.height, w = layout.width, d = layout.features
        let fill = layout.fill.map { T(Double($0)) }
        for (b, n) in globalIndices.enumerated() {
            let (top, left, flip) = draw(seed: seed, epoch: epoch, globalIndex: n)
            let image = x + b * d
            scratch.update(from: image, count: d)
            for y in 0..<h {
                let sy = y + top - padding
                for xo in 0..<w {
                    // Output column xo shows cropped column (flipped) cx, i.e. source column sx.
                    let cx = flip ? w - 1 - xo : xo, sx = cx + left - padding
                    let out = image + (y * w + xo) * c
                    if sy >= 0, sy < h, sx >= 0, sx < w {
                        let src = scratch + (sy * w + sx) * c
                        for k in 0..<c { out[k] = src[k] }
                    } else {
                        for k in 0..<c { out[k] = fill[k] }
                    }
                }
            }
        }
    }
}
