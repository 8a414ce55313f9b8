"""Tests of resultloader.airflow."""
