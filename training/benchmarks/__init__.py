"""Scripts that print training figures (run by hand; never timed assertions in tests)."""
