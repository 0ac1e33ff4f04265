"""studylib: why class-conditional generative models fail as robust classifiers.

The package behind the book: data, a class-conditional GLOW and its training
objectives, a trained-model cache, evaluation and (later) attacks and theory.
"""

__version__ = "0.1.0"
