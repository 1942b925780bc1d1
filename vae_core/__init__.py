"""VAE Studio's science: VAE and CVAE models, their losses, data, trainer and checkpoints.

Nothing here knows about Gradio; the app and the CLI are thin layers over it.
"""

__version__ = "0.1.0"
