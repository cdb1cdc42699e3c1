"""The three results.tsv statuses. Whether a measured run is kept is engine/noise.py's `judge`."""

KEEP, DISCARD, CRASH = "keep", "discard", "crash"
