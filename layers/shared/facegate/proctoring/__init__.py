"""Exam proctoring: a liveness-checked start, frame batches tracked in memory (never stored), incidents kept for
the purpose's retention, a signed report, and a human review of every incident before any decision."""
