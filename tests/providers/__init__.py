"""Tests of resultloader.providers."""
