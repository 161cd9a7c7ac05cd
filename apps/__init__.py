"""absl programs: each parses flags and calls one kvid function."""
