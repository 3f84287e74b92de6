import AstraDist

/// Configuration keys of the training recipe: given any, an imported model has a recipe.
private let recipeFlags = ["lr", "momentum", "weight-decay", "batch-size", "epochs"]

/// `astra-dist import`: creates (or joins) a workspace whose model seed S is read from a
/// PyTorch weights file. It takes the configuration flags (the data, sizes and, for ground
/// truth, the recipe the model was trained with); the architecture file replaces --hidden
/// and --activation.
let importCommand = Command(
    name: "import",
    summary: "Record a PyTorch-trained network (safetensors or .npz, with an architecture JSON) as the workspace's model DIR/models/seed-S/.",
    specs: commonOptions.filter { $0.name != "seeds" } + configurationOptions.filter { !["hidden", "activation"].contains($0.name) } + [
        OptionSpec(name: "weights", value: "FILE", help: "the trained weights: .safetensors or .npz (required)"),
        OptionSpec(name: "architecture", value: "FILE", help: "JSON {loss, operations} describing the network (required; docs/formats.md)"),
        OptionSpec(name: "seed", value: "S", help: "model seed to file it under (default 0)"),
    ]) { o, comm in
    guard let weights = o.string("weights") else { throw AstraError("import: --weights FILE is required (a .safetensors or .npz file)") }
    guard let archPath = o.string("architecture") else { throw AstraError("import: --architecture FILE is required (JSON {\"loss\", \"operations\"}; docs/formats.md)") }
    let seed = UInt64(try o.int("seed", min: 0) ?? 0)
    let architecture = try ArchitectureFile.read(archPath)
    let ws = try workspace(o, creates: true)
    let existing = try ws.loadConfig()
    let ctx = try openContext(o, ws, comm) { c, origin in
        c.operations = architecture.operations
        c.hidden = Array(architecture.shape.widths.dropFirst().dropLast())
        origin["operations"] = "--architecture \(archPath)"
        origin["hidden"] = "--architecture \(archPath)"
        // A new workspace's seeds: the imported one. An existing workspace keeps its own.
        if existing == nil { c.seeds = [seed] }
        let recipeGiven = recipeFlags.contains(where: o.has) || origin.keys.contains { $0.hasPrefix("recipe.") }
        c.recipeUnknown = recipeGiven ? nil : true
    }
    try ImportStage.checkAgainstData(architecture, path: archPath, ctx: ctx)
    let parameters = try ImportStage.parameters(weightsPath: weights, architecture: architecture, architecturePath: archPath)
    try establish(ctx)
    try ImportStage.run(ctx, parameters: parameters, architecturePath: archPath, weightsPath: weights, seed: seed)
}
