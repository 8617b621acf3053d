"""The benchmark suite: latency, throughput and claim cost, each next to a same-run reference."""
