"""doorgate sync package."""
