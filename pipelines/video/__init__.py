"""Video and image file I/O (framework-free)."""
