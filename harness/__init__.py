"""What the experiments and the benchmarks share: the command line (cli), results files with their
provenance (report), figures (figures) and timing (timing). It imports neither of them, but for
harness.redraw, which loads the script a results file names when it runs."""
