"""gcgbench: a benchmark harness for pixel-grounded multimodal models.

Importing the package is light: no torch, no model code. Backends load lazily through the registry.
"""

__version__ = "0.1.0"
