"""The engine: schemas, pipeline, record store, results files, metrics and safe image loading."""
