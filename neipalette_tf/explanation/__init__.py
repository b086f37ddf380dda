"""Why a pair clashes and what would fix it: the colours a model read, its attention maps, the
rule's reading, and colour suggestions checked on recoloured photos (`explain`); how good they
are, measured on a manifest (`measure`). Any model format, through `neipalette_tf.predictors`."""
