"""Tests of resultloader.sources."""
