"""Small command-line tools around the speaker (debugging and interop tests)."""
