import Foundation

/// One SOURCE segment's linearised training dynamics (spec §7) as functions of an eigenvalue
/// `g` of its GGN `Ḡ_ℓ`. SGD's update Jacobian is `I − η(Ḡ + wd·I)`, so the segment curvature
/// is `c = g + wd`: weight decay is part of the dynamics (wd·η̄K ≈ 0.2 per MNIST segment).
/// Over the segment's time `t = η̄_ℓK_ℓ` (gradient flow with the momentum-effective rate):
/// - propagator `S(g) = exp(−t·c)`: how a perturbation at the segment's start reaches its end;
/// - response `r(g) = (1 − exp(−t·c))/c = −expm1(−t·c)/c`: how a constant extra gradient
///   during the segment moves its end, with the limit `t` at `c = 0` (zero eigenvalues occur:
///   MNIST's always-zero pixels).
public struct SegmentDynamics: Sendable, Equatable {
    /// `t = η̄_ℓ·K_ℓ` (may be `.infinity`: training run to convergence).
    public let time: Double
    /// wd, the training weight decay.
    public let weightDecay: Double

    /// Precondition: `time > 0`, `weightDecay ≥ 0`.
    public init(time: Double, weightDecay: Double) {
        precondition(time > 0 && weightDecay >= 0, "SegmentDynamics: time \(time), weight decay \(weightDecay)")
        self.time = time; self.weightDecay = weightDecay
    }

    /// `exp(−t·(g + wd))`.
    public func propagator(_ g: Double) -> Double {
        let c = g + weightDecay
        return c == 0 ? 1 : exp(-time * c)
    }

    /// `(1 − exp(−t·(g + wd)))/(g + wd)`; `t` where `t·c` underflows to 0 (and at c = 0).
    /// expm1 keeps small `t·c` accurate, where `1 − exp` would cancel.
    public func response(_ g: Double) -> Double {
        let c = g + weightDecay, x = time * c
        return c == 0 || x == 0 ? time : -expm1(-x) / c
    }

    /// ASTRA-SOURCE's damping `λ_ℓ = 1/(η̄_ℓK_ℓ)`: `(c + λ)⁻¹` is the response's rational
    /// stand-in (equal at c = 0 and as c → ∞).
    public var damping: Double { 1 / time }
}
