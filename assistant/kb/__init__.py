"""The knowledge pipeline: load and validate knowledge/, build the training data, coverage, readability."""
