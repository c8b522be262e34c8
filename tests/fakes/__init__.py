"""In-process stand-ins for the external systems the project talks to."""
