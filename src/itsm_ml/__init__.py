"""itsm-ml: trustworthy models from the history of an IT service desk."""

__version__ = "0.1.0"
