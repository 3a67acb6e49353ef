"""Device simulators that write the exact bytes of real readers on a pseudo-terminal."""
