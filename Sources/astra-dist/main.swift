import AstraDist
import Foundation

// The BLAS kernels first (it may re-execute this program), then MPI, before any BLAS call
// (platform notes: fork + threaded BLAS).
BLASCore.selectKernelsForThisCPU()
let world = MPICommunicator.world()
setBLASThreads(1)

/// Ends the whole job after an error on this rank (docs/commands.md, "How failures look"):
/// one `error:` line with this rank's message, exit status `code` on every rank. Alone, a
/// plain exit (no MPI banner). Under mpirun, rank 0 prints and aborts at once; another rank
/// first sleeps `FailureExit.grace`, because when every rank raised the same (collective)
/// error rank 0's abort ends it inside that pause and the user sees one line, not K.
func fail(_ message: String, code: Int32 = 1) -> Never {
    fflush(nil)
    if world.size == 1 {
        FileHandle.standardError.write(Data("error: \(message)\n".utf8))
        MPICommunicator.finalize()
        exit(code)
    }
    var line = "error: \(message)\n"
    if world.rank != 0 {
        Thread.sleep(forTimeInterval: FailureExit.grace)
        line = "error: rank \(world.rank): \(message)\n"
    }
    FileHandle.standardError.write(Data(line.utf8))
    // mpirun forwards our stderr and prints its own abort notice separately: a short pause
    // lets our line arrive first (measured: docs/commands.md).
    Thread.sleep(forTimeInterval: FailureExit.forwardPause)
    world.abort(code)
}

let mainHelp = """
usage: astra-dist <command> [options]      (alone, or under mpirun -n K with the same options)

Training data attribution with ASTRA (EK-FAC-preconditioned Neumann iHVPs) and its baselines.

commands:
\(commands.map { "  " + $0.name.padding(toLength: 13, withPad: " ", startingAt: 0) + $0.summary }.joined(separator: "\n"))

`astra-dist <command> --help` lists a command's options. Scores follow one sign convention:
a positive τ(m, q) means training example m helps query q (lowers its loss-like measurement).
"""

var args = Array(CommandLine.arguments.dropFirst())
if args.isEmpty || args[0] == "--help" || args[0] == "-h" || args[0] == "help" {
    if world.rank == 0 { print(mainHelp) }
    MPICommunicator.finalize()
    exit(args.isEmpty ? 2 : 0)
}
let name = args.removeFirst()
guard let command = commands.first(where: { $0.name == name }) else {
    fail("unknown command '\(name)'; commands: \(commands.map(\.name).joined(separator: ", "))", code: 2)
}
if args.contains("--help") || args.contains("-h") {
    if world.rank == 0 { print(helpText(command: command.name, summary: command.summary, specs: command.specs)) }
    MPICommunicator.finalize()
    exit(0)
}
do {
    // `bench train …`: the benchmark's name is the one positional argument.
    if name == "bench", let first = args.first, !first.hasPrefix("--") { args.removeFirst(); args += ["--bench-target", first] }
    let options = try Options(command: name, arguments: args, specs: command.specs + [OptionSpec(name: "bench-target", value: "NAME", help: "")])
    // Leftovers of a write killed in an earlier command (docs/commands.md, "How failures look").
    if world.isRoot, let dir = options.string("workdir") { WorkDirectory(dir).removeStaleTemporaries() }
    try command.run(options, world)
} catch let e as AstraError {
    fail(e.message, code: 1)
} catch {
    fail("\(error)", code: 1)
}
fflush(nil)
MPICommunicator.finalize()
