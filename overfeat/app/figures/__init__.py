"""Plotly figures of what the network does, built from package results.

Every function here is a pure function of an Analysis, a View, a MergeResult or a config, and
returns a plotly Figure; the app's pages only lay them out, and the tests read their data
without a browser. By subject: base (the image backdrop, colours, box outlines, the house
style), maps (confidence maps per scale, the coarse and fine maps), boxes (raw boxes, the merge, final
boxes and detections), charts (the pipeline, bars and curves), layers (inside the network:
the layer strip, a layer's channels, the output maps to click, the offsets' 1-D strip),
evaluation (precision-recall curves, labelled detections, one method's boxes marked); two
modules draw pictures instead of Plotly figures, where a figure cost the browser too much:
raster (the Merge page's steps and final boxes) and grids (the Offsets page's grids of k*k
maps). The public names are here: `from overfeat.app import figures; figures.scale_maps_figure(...)`, with the small
view selectors the pages use to choose what to draw (select_views, scale_views, best_scale).
"""

from .base import (CLASS_COLORS, DEFAULT_MAX_BOXES, FIXED_TEXT, FONT, FULL, HALF, MAP_SCALE, MODEBAR,
                   PANEL_SIDE, PLOTLY_CONFIG, PRESENTER_SCALE, SCALE_COLORS, Backdrop, backdrop, class_color,
                   fitted_height, prob_is, prob_text, styled)
from .boxes import (CONF_BANDS, MARK_COLORS, MARK_NAMES, boxes_figure, detection_marks_figure,
                    final_boxes_figure, merge_figure, method_boxes_figure)
from .charts import (efficiency_figure, layer_cost_figure, merge_scores_figure, pipeline_figure,
                     scale_scores_bars, table2_figure, training_figure)
from .evaluation import (LABELLED, labelled_marks_figure, method_marks_figure,
                         pr_curve_figure, truth_label_trace)
from .grids import GridPicture, offset_grid_picture
from .layers import (channel_grid_figure, layer_strip_figure, offset_strip_figure,
                     output_maps_figure)
from .maps import (best_level_cell, best_scale, fine_coarse_figure, level_maps_figure,
                   level_strides, levels, map_on_image, scale_maps_figure,
                   scale_views, select_views, window_figure, window_side)

__all__ = [
    "CLASS_COLORS", "CONF_BANDS", "DEFAULT_MAX_BOXES", "FIXED_TEXT", "FONT", "FULL", "HALF", "MAP_SCALE",
    "MARK_COLORS", "MARK_NAMES", "MODEBAR", "PANEL_SIDE", "PLOTLY_CONFIG", "PRESENTER_SCALE", "SCALE_COLORS",
    "Backdrop", "backdrop", "best_level_cell", "best_scale", "boxes_figure", "class_color",
    "detection_marks_figure", "level_maps_figure", "level_strides", "levels", "scale_views",
    "select_views", "window_side",
    "efficiency_figure", "final_boxes_figure", "fine_coarse_figure", "fitted_height",
    "layer_cost_figure", "map_on_image", "merge_figure", "merge_scores_figure",
    "method_boxes_figure", "offset_grid_picture", "GridPicture", "pipeline_figure", "scale_maps_figure",
    "scale_scores_bars", "styled", "table2_figure", "training_figure", "window_figure",
    "channel_grid_figure", "layer_strip_figure", "offset_strip_figure", "output_maps_figure",
    "prob_is", "prob_text",
    "LABELLED", "labelled_marks_figure", "method_marks_figure", "pr_curve_figure",
    "truth_label_trace",
]
