package dev.spiel4j.bench;

/** What came of asking the Python peer to run a configuration: its measurement, or why it could not run. */
sealed interface PeerOutcome {

    /** The peer ran and measured. */
    record Ran(RunMeasurement measurement) implements PeerOutcome {
    }

    /** The peer could not run; {@code reason} reads "peer could not run: ..." and goes into the report as is. */
    record CouldNotRun(String reason) implements PeerOutcome {
        public CouldNotRun {
            if (!reason.startsWith(PythonPeer.REASON_PREFIX)) {
                reason = PythonPeer.REASON_PREFIX + reason;
            }
        }
    }
}
