"""The spam classifier: features, pipeline, training, evaluation and artifacts.

Imports scikit-learn and numpy, never Flask or SQLAlchemy, so it trains and tests on its own.
Modules that the web process touches (`models.artifacts`) import scikit-learn lazily.
"""
