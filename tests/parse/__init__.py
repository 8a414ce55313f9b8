"""Tests of resultloader.parse."""
