/// The timing of ending a job after an error (the policy itself is `fail` in `main.swift`;
/// docs/commands.md, "How failures look").
public enum FailureExit {
    /// Seconds a failing rank other than 0 waits, sleeping, before it prints and aborts. When
    /// rank 0 raised the same error (a value every rank checks, an agreed failure) rank 0's
    /// abort ends the job inside this pause (measured: under 0.2 s on one host), so one line
    /// is printed; an error of this rank alone is reported after it.
    public static let grace = 1.0
    /// Seconds between writing the `error:` line and `MPI_Abort`: mpirun forwards a rank's
    /// stderr asynchronously and could otherwise print its own abort notice first.
    public static let forwardPause = 0.1
}
