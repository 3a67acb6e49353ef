"""doorgate rules package."""
