"""spaceflights_lite"""

__version__ = "0.1"
