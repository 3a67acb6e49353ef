"""doorgate drivers package."""
