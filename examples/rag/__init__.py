"""Retrieval-augmented question answering with citations over a shipped corpus (see README.md)."""
