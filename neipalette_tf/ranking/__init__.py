"""Ranking a wardrobe: which of my bottoms go with this top.

`wardrobe` (the folder of garment photos) · `cache` (embeddings kept beside it) · `rank` (one
garment against the wardrobe) · `diversity` (MMR) · `diverse_explain` (`--diverse` / `--explain`)
· `plot` (`--out` grid) · `bench` (`--bench`).
"""
