"""Road geometry: cross-section layouts, curvature along the route, and the view ahead.

The road frame measures ``s`` along the road's reference line (the centre divider), metres,
and ``x`` across it, metres, positive to the right. Same-direction lanes lie at x >= 0.
Road content is generated lazily in 10 m cells as the ego vehicle approaches, from a seed,
so a drive of any length costs memory only for what is in view.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

CELL_M = 10.0
"""Length of one road cell, m. Road type and roadside content are decided per cell."""

AHEAD_M = 300.0
BEHIND_M = 40.0

# Ground surface labels, also the order textures are stacked in.
ASPHALT, GRASS, SIDEWALK, GRAVEL, CONCRETE = 1, 2, 3, 4, 5


@dataclass(frozen=True)
class LaneLine:
    """A painted line at lateral offset ``x`` (m), dashed or solid, white or yellow."""

    x: float
    dashed: bool
    width_m: float = 0.15
    yellow: bool = False


@dataclass(frozen=True)
class RoadLayout:
    """Cross-section of one road type.

    Attributes:
        lanes_same: number of lanes in the ego's direction.
        lane_width: lane width, m.
        bands: ground surface bands as (x_left, x_right, label), left to right, m.
        lines: painted lines.
        oncoming_lanes: centre x of oncoming lanes, m.
        sidewalks: (x_left, x_right) of walkable sidewalks, m.
        bike_lane_x: centre of the bike lane, m, or None.
        parking_x: centre of the parking strip, m, or None.
        building_setback: |x| where building facades start, m, or None.
        barrier_x: x of a median barrier, m, or None.
        rail_x: x of a guard rail, m, or None.
        lamp_x: x of street light poles (both sides mirrored when urban), m.
        speed_mps: typical free-flow speed, m/s.
    """

    lanes_same: int
    lane_width: float
    bands: tuple[tuple[float, float, int], ...]
    lines: tuple[LaneLine, ...]
    oncoming_lanes: tuple[float, ...]
    sidewalks: tuple[tuple[float, float], ...]
    bike_lane_x: float | None
    parking_x: float | None
    building_setback: float | None
    barrier_x: float | None
    rail_x: float | None
    lamp_x: tuple[float, ...]
    speed_mps: float

    def lane_center(self, lane: int) -> float:
        """Lateral centre, m, of same-direction lane ``lane`` (0 = next to the divider)."""
        return (lane + 0.5) * self.lane_width

    def lane_of(self, x: float) -> int:
        """Index of the same-direction lane containing ``x``, clamped to the valid lanes."""
        return int(min(max(x // self.lane_width, 0), self.lanes_same - 1))


HIGHWAY = RoadLayout(
    lanes_same=3,
    lane_width=3.6,
    bands=(
        (-80.0, -14.0, GRASS),
        (-14.0, -13.0, GRAVEL),
        (-13.0, -1.6, ASPHALT),
        (-1.6, -0.6, CONCRETE),
        (-0.6, 13.3, ASPHALT),
        (13.3, 14.6, GRAVEL),
        (14.6, 80.0, GRASS),
    ),
    lines=(
        LaneLine(-12.6, False), LaneLine(-9.2, True), LaneLine(-5.6, True), LaneLine(-2.0, False),
        LaneLine(0.0, False), LaneLine(3.6, True), LaneLine(7.2, True), LaneLine(10.8, False, 0.2),
    ),
    oncoming_lanes=(-3.8, -7.4, -11.0),
    sidewalks=(),
    bike_lane_x=None,
    parking_x=None,
    building_setback=None,
    barrier_x=-1.1,
    rail_x=14.1,
    lamp_x=(-1.1,),
    speed_mps=30.0,
)

URBAN = RoadLayout(
    lanes_same=2,
    lane_width=3.3,
    bands=(
        (-80.0, -13.0, CONCRETE),
        (-13.0, -10.0, SIDEWALK),
        (-10.0, 10.0, ASPHALT),
        (10.0, 13.0, SIDEWALK),
        (13.0, 80.0, CONCRETE),
    ),
    lines=(
        LaneLine(-6.6, False), LaneLine(-3.3, True), LaneLine(0.0, True, 0.12, True),
        LaneLine(3.3, True), LaneLine(6.6, False), LaneLine(7.9, False, 0.1),
    ),
    oncoming_lanes=(-1.65, -4.95),
    sidewalks=((-13.0, -10.0), (10.0, 13.0)),
    bike_lane_x=7.25,
    parking_x=8.95,
    building_setback=14.0,
    barrier_x=None,
    rail_x=None,
    lamp_x=(-10.4, 10.4),
    speed_mps=13.0,
)

LAYOUTS: dict[str, RoadLayout] = {"highway": HIGHWAY, "urban": URBAN}


@dataclass(frozen=True)
class RoadView:
    """The road ahead of the ego vehicle in its tangent frame, sampled every metre.

    ``ds`` are distances along the road from the ego (negative behind); ``fwd``/``lat`` place
    the reference line in the ego's tangent frame (m), ``head`` is the road heading relative
    to the ego's tangent (rad, right +), ``road_type`` the road type code per sample.
    """

    ds: np.ndarray
    fwd: np.ndarray
    lat: np.ndarray
    head: np.ndarray
    road_type: np.ndarray

    def place(self, ds: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map road-frame points (``ds`` ahead of the ego, ``x`` across) to tangent-frame (X, Z), m."""
        f = np.interp(ds, self.ds, self.fwd)
        l_ = np.interp(ds, self.ds, self.lat)
        h = np.interp(ds, self.ds, self.head)
        return l_ + x * np.cos(h), f - x * np.sin(h)


ROAD_CODES = {"highway": 0, "urban": 1}
ROAD_NAMES = {v: k for k, v in ROAD_CODES.items()}


class Road:
    """Curvature, heading and position of the route on a 1 m grid, grown on demand.

    Arrays grow by doubling their capacity and lookups interpolate between the two grid points
    around ``s``, so a lookup costs the same at the start of a drive and 100 km into it.

    Args:
        rng: the generator curvature is drawn from.
        type_at: returns the road type ("highway" or "urban") for a new cell given its start s.
    """

    def __init__(self, rng: np.random.Generator, type_at: Callable[[float], str]) -> None:
        self._rng = rng
        self._type_at = type_at
        self._n = 0  # metres generated; kappa has _n values, heading/east/north _n + 1
        self._kappa = np.zeros(1024)
        self._heading = np.zeros(1025)
        self._east = np.zeros(1025)
        self._north = np.zeros(1025)
        self._cells = np.zeros(128, dtype=np.int8)
        self._n_cells = 0
        self._k_now = 0.0
        self._k_target = 0.0
        self._left_in_section = 0.0

    @property
    def length(self) -> float:
        """Metres of road generated so far."""
        return float(self._n)

    @property
    def kappa(self) -> np.ndarray:
        """Curvature per metre of road, 1/m (a view)."""
        return self._kappa[: self._n]

    @property
    def heading(self) -> np.ndarray:
        """Heading at each metre, rad clockwise from north (a view)."""
        return self._heading[: self._n + 1]

    @property
    def cell_type(self) -> np.ndarray:
        """Road type code of each 10 m cell (a view)."""
        return self._cells[: self._n_cells]

    def ensure(self, s_max: float) -> None:
        """Generate road up to at least ``s_max`` metres."""
        while self._n < s_max + 1:
            self._grow_cell()

    @staticmethod
    def _grown(a: np.ndarray, need: int) -> np.ndarray:
        if need <= a.size:
            return a
        out = np.zeros(max(need, 2 * a.size), dtype=a.dtype)
        out[: a.size] = a
        return out

    def _grow_cell(self) -> None:
        s0 = self._n
        code = ROAD_CODES[self._type_at(float(s0))]
        self._cells = self._grown(self._cells, self._n_cells + 1)
        self._cells[self._n_cells] = code
        self._n_cells += 1
        n = int(CELL_M)
        kappas = np.empty(n)
        for i in range(n):
            if self._left_in_section <= 0:
                urban = code == 1
                length = self._rng.uniform(80, 300) if urban else self._rng.uniform(200, 800)
                if self._rng.random() < 0.45:
                    target = 0.0
                else:
                    radius = self._rng.uniform(150, 600) if urban else self._rng.uniform(500, 2500)
                    target = self._rng.choice([-1.0, 1.0]) / radius
                self._k_target = target
                self._left_in_section = length
            # Curvature ramps linearly (a clothoid) towards the section's target.
            step = 1.0 / 8000.0
            self._k_now += float(np.clip(self._k_target - self._k_now, -step, step))
            kappas[i] = self._k_now
            self._left_in_section -= 1.0
        heading = self._heading[s0] + np.cumsum(kappas)
        east = self._east[s0] + np.cumsum(np.sin(heading))
        north = self._north[s0] + np.cumsum(np.cos(heading))
        end = s0 + n
        self._kappa = self._grown(self._kappa, end)
        self._heading = self._grown(self._heading, end + 1)
        self._east = self._grown(self._east, end + 1)
        self._north = self._grown(self._north, end + 1)
        self._kappa[s0:end] = kappas
        self._heading[s0 + 1:end + 1] = heading
        self._east[s0 + 1:end + 1] = east
        self._north[s0 + 1:end + 1] = north
        self._n = end

    def _lerp(self, a: np.ndarray, last: int, s: np.ndarray | float) -> np.ndarray:
        """Linear interpolation of ``a`` (values at each metre 0..last) at ``s`` (clamped)."""
        x = np.clip(s, 0.0, float(last))
        i = np.minimum(np.floor(x).astype(np.int64), last - 1) if last > 0 else np.zeros_like(x, dtype=np.int64)
        f = x - i
        return a[i] * (1.0 - f) + a[np.minimum(i + 1, last)] * f

    def type_at(self, s: float) -> str:
        """Road type at distance ``s`` (must be generated)."""
        idx = int(min(max(s // CELL_M, 0), self._n_cells - 1))
        return ROAD_NAMES[int(self._cells[idx])]

    def kappa_at(self, s: float) -> float:
        """Curvature at ``s``, 1/m (right turn +)."""
        return float(self._lerp(self._kappa, self._n - 1, s))

    def max_abs_kappa(self, s0: float, s1: float) -> float:
        """Largest |curvature| between ``s0`` and ``s1`` metres, 1/m."""
        a, b = max(int(s0), 0), min(int(s1) + 1, self._n)
        return float(np.abs(self._kappa[a:b]).max()) if b > a else 0.0

    def pose_at(self, s: float) -> tuple[float, float, float]:
        """(east, north, heading) of the reference line at ``s``: m, m, rad clockwise from north."""
        n = self._n
        return (float(self._lerp(self._east, n, s)), float(self._lerp(self._north, n, s)),
                float(self._lerp(self._heading, n, s)))

    def view(self, s_ego: float) -> RoadView:
        """The road from ``BEHIND_M`` behind to ``AHEAD_M`` ahead of ``s_ego``, in the ego tangent frame."""
        self.ensure(s_ego + AHEAD_M + CELL_M)
        ds = np.arange(-BEHIND_M, AHEAD_M + 1.0)
        s = np.clip(s_ego + ds, 0.0, None)
        n = self._n
        e = self._lerp(self._east, n, s)
        north = self._lerp(self._north, n, s)
        h = self._lerp(self._heading, n, s)
        e0, n0, h0 = self.pose_at(s_ego)
        de, dn = e - e0, north - n0
        sh, ch = math.sin(h0), math.cos(h0)
        fwd = de * sh + dn * ch
        lat = de * ch - dn * sh
        # Behind the start of the route the road continues straight.
        before = s_ego + ds < 0
        fwd[before] = ds[before]
        lat[before] = 0.0
        cells = np.clip((s // CELL_M).astype(int), 0, self._n_cells - 1)
        return RoadView(ds=ds, fwd=fwd, lat=lat, head=h - h0, road_type=self._cells[cells])
