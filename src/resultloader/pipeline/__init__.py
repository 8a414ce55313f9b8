"""The only places that know the whole flow: load a source, ingest a job, many of either."""
