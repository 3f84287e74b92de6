/// The learning rate of each training step: constant (`oneCyclePeak` nil, every existing
/// preset), or one cycle: linear from 0 at the first step up to `learningRate` at the
/// fraction `oneCyclePeak` of the steps, then linearly down to 0 at the end (kronfluence's
/// CIFAR-10 recipe: `np.interp(step, [0, peak, total], [0, 1, 0])` with the peak at epoch
/// 25/5, i.e. fraction 0.2, so its first step has rate 0 too).
extension TrainingRecipe {
    /// The rate of step `step` (0-based) of a run of `total` steps.
    /// Precondition: `oneCyclePeak` nil or in (0, 1].
    public func learningRate(atStep step: Int, of total: Int) -> Double {
        guard let fraction = oneCyclePeak else { return learningRate }
        let s = Double(step), peak = fraction * Double(total), end = Double(total)
        if s <= peak { return peak > 0 ? learningRate * s / peak : learningRate }
        return end > peak ? learningRate * max(end - s, 0) / (end - peak) : 0
    }

    /// The rate in force when `steps` steps have run (the rate of the last one, as a model or
    /// checkpoint records it; the recipe's rate for 0 steps).
    public func learningRate(afterSteps steps: Int, examples n: Int) -> Double {
        steps > 0 ? learningRate(atStep: steps - 1, of: self.steps(examples: n)) : learningRate
    }
}
