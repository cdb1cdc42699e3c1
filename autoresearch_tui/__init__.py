"""autoresearch-tui: an autonomous ML research loop you can set up, watch and replay."""

__version__ = "0.1.0"
