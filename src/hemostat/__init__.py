"""hemostat: stop the bleeding when a hospital's data starts to leave."""

__version__ = "0.1.0"
