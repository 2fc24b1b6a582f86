"""nclab: Neural Collapse, OOD detection and long-tailed learning, as plain functions on arrays."""
