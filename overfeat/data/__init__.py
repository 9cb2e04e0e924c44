"""Data: synthetic pictogram scenes written in Pascal VOC layout, and one reader for any VOC folder.

sprites.py loads the committed pictograms, scenes.py composes seeded scenes from them (on the
backgrounds of backgrounds.py) and writes a VOC folder, voc.py reads any VOC folder (the
synthetic one or a real VOC 2007/2012) into records with 0-based (x1, y1, x2, y2) float boxes.
render_sprites.py (needs the font) is run once by hand to make the sprites.
"""

from overfeat.data.scenes import KINDS, SCENE_PRESETS, SceneConfig, make_scene, write_voc_dataset
from overfeat.data.sprites import load_class_sprites, load_distractor_sprites
from overfeat.data.voc import VOC_CLASSES, VOCObject, VOCRecord, read_split

__all__ = [
    "KINDS", "SCENE_PRESETS", "SceneConfig", "VOC_CLASSES", "VOCObject", "VOCRecord",
    "load_class_sprites", "load_distractor_sprites", "make_scene", "read_split",
    "write_voc_dataset",
]
