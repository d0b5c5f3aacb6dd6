"""DataGate: stops the pipeline before training when data validation failed."""
