"""doorgate gateway package."""
