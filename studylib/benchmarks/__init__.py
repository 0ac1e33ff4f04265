"""What training and attacking cost, measured: throughput against the peer libraries and
foolbox, the probe of a profile's run, and the lever ablation behind the `quick` recipe."""
