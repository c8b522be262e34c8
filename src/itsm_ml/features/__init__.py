"""Pure DataFrame -> DataFrame feature functions."""
