extension Network {
    /// The model's prediction for every row of `data`: the arg-max class (classification) or
    /// the first output (regression), as shown beside scores in `top.json`. Batches of 256.
    public func predictions(on data: Dataset) -> [Double] {
        let c = shape.outputCount, n = data.count, bs = 256
        let ws = Workspace<T>(shape: shape, capacity: bs)
        let x = UnsafeMutablePointer<T>.allocate(capacity: bs * data.featureCount), y = UnsafeMutablePointer<T>.allocate(capacity: bs * data.targetWidth)
        defer { x.deallocate(); y.deallocate() }
        var out: [Double] = []
        out.reserveCapacity(n)
        var start = 0
        while start < n {
            let b = min(bs, n - start)
            data.gather(Array(start..<(start + b))[...], x: x, y: y)
            forward(x, batch: b, workspace: ws)
            for i in 0..<b {
                let o = ws.output + i * c
                if data.task == .classification {
                    var best = 0
                    for k in 1..<c where o[k] > o[best] { best = k }
                    out.append(Double(best))
                } else {
                    out.append(o[0].asDouble)
                }
            }
            start += b
        }
        return out
    }
}
