import AstraDist
import XCTest

/// `BLASCore.replacement`: OpenBLAS's legacy fallback kernels are replaced by the best family
/// the CPU's flags allow, and a choice OpenBLAS made for a CPU it knows is never overridden.
final class BLASCoreTests: XCTestCase {
    let avx512: Set<String> = ["sse3", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"]

    func testFallbackKernelsAreReplacedByWhatTheCPUSupports() {
        XCTAssertEqual(BLASCore.replacement(core: "Prescott", cpuFlags: avx512), "SkylakeX")
        XCTAssertEqual(BLASCore.replacement(core: "Sandybridge", cpuFlags: ["avx", "avx2", "fma"]), "Haswell")
        // AVX-512 F alone is not enough for OpenBLAS's SkylakeX kernels.
        XCTAssertEqual(BLASCore.replacement(core: "Prescott", cpuFlags: ["avx2", "fma", "avx512f"]), "Haswell")
        XCTAssertNil(BLASCore.replacement(core: "Prescott", cpuFlags: ["sse3", "avx"]), "a CPU without AVX2 keeps the fallback")
    }

    func testAChoiceForAKnownCPUStands() {
        for core in ["SkylakeX", "Cooperlake", "SapphireRapids", "Haswell", "Zen"] {
            XCTAssertNil(BLASCore.replacement(core: core, cpuFlags: avx512), core)
        }
    }

    func testThisProcessReportsItsKernelsAndTheCPUItsFlags() {
        XCTAssertFalse(BLASCore.name.isEmpty)
        #if arch(x86_64)
        XCTAssertTrue(BLASCore.cpuFlags().contains("sse2"), "x86-64 always has SSE2; /proc/cpuinfo unread?")
        #endif
    }
}
