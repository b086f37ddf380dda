"""Ranking a wardrobe: which of my bottoms go with this top (`wardrobe`)."""
