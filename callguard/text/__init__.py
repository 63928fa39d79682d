"""Text handling for rule matching: normalisation and Korean morphological analysis."""
