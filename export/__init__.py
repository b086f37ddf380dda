"""`python -m export ...` in a checkout, kept for the commands in docs and scripts.

The code is `neipalette_tf.export`; these modules only forward the command line.
"""
