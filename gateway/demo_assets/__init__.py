"""Face photos of the demo camera (data only; see SOURCE.md), read with importlib.resources."""
