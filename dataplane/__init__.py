"""dataplane: Linux programming with pyroute2, and an in-memory dataplane for tests."""
