"""Speed benchmarks, each case against its peer in the same process: `python -m benchmarks.<name> default`."""
