"""Tests of resultloader.sinks."""
