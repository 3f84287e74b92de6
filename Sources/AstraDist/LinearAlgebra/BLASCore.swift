import CBLAS
import Foundation

/// Which OpenBLAS kernels run, and the one correction astra-dist makes to OpenBLAS's choice.
///
/// OpenBLAS built with DYNAMIC_ARCH (Debian 12 ships 0.3.21) picks its kernels once, when the
/// library loads, from the CPU's vendor, family and model. A CPU newer than the library gets a
/// generic fallback: seen here, an Intel Xeon of family 6 model 207 (AVX-512) ran the SSE3
/// "Prescott" kernels, one-core SGEMM 26.5 GFLOP/s against 135.0, and training, fits and scores ran 3–5×
/// slower than with the "SkylakeX" kernels the CPU supports (docs/results.md, "BLAS kernels").
/// Only the environment variable `OPENBLAS_CORETYPE`, read at load, changes the choice, so the
/// program re-executes itself once with it set (`selectKernelsForThisCPU`).
public enum BLASCore {
    /// The kernel family OpenBLAS uses in this process ("SkylakeX", "Haswell", "Zen", "Prescott"…).
    public static var name: String { String(cString: openblas_get_corename()) }

    /// OpenBLAS's kernel families that use neither AVX2 nor FMA: the ones its fallback picks.
    static let legacyCores: Set<String> = ["Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom", "Sandybridge",
                                           "Opteron", "Opteron(SSE3)", "Barcelona", "Bobcat", "Bulldozer", "Piledriver",
                                           "Steamroller", "Excavator", "Katmai", "Coppermine", "Northwood", "Banias", "Athlon"]

    /// The kernels to force instead of `core` on a CPU with `cpuFlags` (/proc/cpuinfo names):
    /// "SkylakeX" with AVX-512 F, BW, VL, DQ and CD, else "Haswell" with AVX2 and FMA; nil when
    /// `core` is not a legacy family or the CPU has neither (then OpenBLAS's choice stands).
    public static func replacement(core: String, cpuFlags: Set<String>) -> String? {
        guard legacyCores.contains(core) else { return nil }
        if cpuFlags.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"]) { return "SkylakeX" }
        if cpuFlags.isSuperset(of: ["avx2", "fma"]) { return "Haswell" }
        return nil
    }

    /// The first `flags` line of /proc/cpuinfo (features the kernel enabled); empty if unreadable.
    public static func cpuFlags() -> Set<String> {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }

    /// Re-executes this program (same process id, arguments and environment) with
    /// `OPENBLAS_CORETYPE` set to `replacement` when OpenBLAS fell back to legacy kernels on this
    /// CPU; returns at once otherwise, when the user set `OPENBLAS_CORETYPE` (their choice
    /// stands, and it ends the re-execution), or if `execv` fails. Call first in `main`, before
    /// MPI starts and before any thread exists: mpirun sees the same process throughout.
    public static func selectKernelsForThisCPU() {
        guard getenv("OPENBLAS_CORETYPE") == nil, let better = replacement(core: name, cpuFlags: cpuFlags()) else { return }
        setenv("OPENBLAS_CORETYPE", better, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
    }
}
