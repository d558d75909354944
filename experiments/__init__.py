"""One runnable script per claim of the seeds: `python -m experiments.<name> --help`."""
