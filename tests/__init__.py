"""Test suite for evpn-speaker."""
