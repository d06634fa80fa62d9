"""Demo data: a realistic small hub for trying the service and for benchmarks."""
