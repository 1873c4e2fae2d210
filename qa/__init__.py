"""qa: extractive question answering over documents, with exact sentence citations."""

__version__ = "0.1.0"
