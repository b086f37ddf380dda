"""The bottom layer: errors, command-line plumbing, atomic file output, the one image
preprocessing function, provenance and CPU facts. Imports nothing else of NeiPalette and
never TensorFlow."""
