"""Tests of resultloader.cli."""
