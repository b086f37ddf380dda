"""Colour maths (`space`: sRGB, OKLab, OKLCH), the harmony rule (`harmony`) and a rough
main-colour estimate for display (`estimate`). NumPy only: no TensorFlow."""
