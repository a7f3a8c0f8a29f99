"""The front-camera renderer: perspective road, roadside, traffic and weather, with exact
ground truth.

One frame is drawn in four passes:

1. Background (`scene`): a cached sky gradient and far skyline, the ground bands (asphalt,
   verges, sidewalks) and painted lines as polygons, then the static ground light/fog maps.
2. Objects (`props`, `actors`): every prop and actor is built as 3D points in the road frame,
   all projected in one batch, sorted far to near and filled with OpenCV (painter's
   algorithm). Actors are drawn into an ID buffer with the same primitives, so each
   ground-truth box (`truth`) is the exact extent of the pixels the actor covers.
3. Light (`light`): lamps, vehicle lights and glare sprites.
4. Weather and sensor (`light`): rain streaks, lens blur, motion blur, noise; then JPEG.

Boxes are pixel-edge coordinates: x1, y1 inclusive, x2, y2 exclusive, so a box covering
only pixel (0, 0) is (0, 0, 1, 1).
"""

from longtail.sim.render.base import ID_STATIC, MARGIN, MAX_ACTORS, STATIC_LIGHT
from longtail.sim.render.renderer import MAX_DRAW_M, Renderer
from longtail.sim.render.truth import ObjectTruth

__all__ = ["ID_STATIC", "MARGIN", "MAX_ACTORS", "MAX_DRAW_M", "STATIC_LIGHT", "ObjectTruth", "Renderer"]
