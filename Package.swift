// swift-tools-version:6.0
// astra-dist: training data attribution (ASTRA, EK-FAC, SNI, LDS) on MPI + BLAS.
// System libraries only (Debian: libopenmpi-dev libopenblas-dev liblapacke-dev pkg-config zlib1g-dev).
import PackageDescription

let package = Package(
    name: "astra-dist",
    products: [
        .executable(name: "astra-dist", targets: ["astra-dist"]),
        .library(name: "AstraDist", targets: ["AstraDist"]),
    ],
    targets: [
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
        .systemLibrary(name: "CBLAS", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CLAPACKE", providers: [.apt(["liblapacke-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // Direct convolution kernels in C for AVX-512 (Conv2dDirect.swift); runtime-checked.
        .target(name: "CConvKernels"),
        .target(name: "AstraDist", dependencies: ["CMPI", "CBLAS", "CLAPACKE", "CZlib", "CConvKernels"]),
        .executableTarget(name: "astra-dist", dependencies: ["AstraDist", "CMPI"]),
        // The fuzz driver of every file parser (launch/fuzz.sh), apart from the CLI.
        .executableTarget(name: "astra-fuzz", dependencies: ["AstraDist", "CZlib"]),
        .testTarget(name: "AstraDistTests", dependencies: ["AstraDist", "astra-dist"], exclude: ["FuzzCorpus"]),
    ]
)
