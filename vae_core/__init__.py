"""VAE Studio's science: the models, their losses, datasets, training, evaluation and checkpoints.

Nothing here knows about Gradio; the app and the CLI are thin layers over it.
"""

__version__ = "0.1.0"
