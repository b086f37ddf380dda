"""pairs.csv of a synthetic data set: its columns and the palette columns' text form."""

CSV_COLUMNS = (
    "top", "bottom", "label", "split",
    "top_category", "top_L", "top_C", "top_h",
    "bottom_category", "bottom_L", "bottom_C", "bottom_h",
    "label_noise_flipped",
)
PEOPLE_COLUMNS = ("rating",)  # people-labelled sets only: people's predicted rating of the main colours
# Sets with multi-colour garments only (`multicolour` > 0): each garment's pattern ("none" when plain)
# and palette, "L C h share" per colour joined by ";", the main colour first (`format_palette`).
PALETTE_COLUMNS = ("top_pattern", "top_palette", "bottom_pattern", "bottom_palette")
# Sets with hard scenes only (`hard_scenes` > 0): each photo's hard conditions ("small+light", "none" when
# none) and its scene facts ("background=...;small=...;light=...;shadow=...;busy=...", `hard.scene_info_text`).
HARD_SCENE_COLUMNS = ("top_scene", "top_scene_info", "bottom_scene", "bottom_scene_info")


def format_palette(palette):
    """[(OKLCH, share)] -> "L C h share;..." (what pairs.csv's palette columns hold)."""
    return ";".join(f"{c[0]:.4f} {c[1]:.4f} {c[2]:.4f} {s:.4f}" for c, s in palette)


def parse_palette(text):
    """"L C h share;..." -> [(OKLCH tuple, share)]; ValueError (one line) for a malformed one."""
    entries = []
    for part in str(text).split(";"):
        values = part.split()
        if len(values) != 4:
            raise ValueError(f"palette entry {part!r} is not 'L C h share'")
        L, C, h, s = (float(v) for v in values)
        entries.append(((L, C, h), s))
    return entries
