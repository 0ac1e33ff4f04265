"""One study module per chapter: its study functions and its figures (components never import these)."""
