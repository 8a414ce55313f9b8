"""Tests of resultloader.pipeline."""
