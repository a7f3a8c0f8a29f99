"""Road and roadside cells of one drive: the road ahead is built on demand, 10 m at a time, and
each cell gets its buildings, trees, lamps, signs, parked cars and (in town) signalised junctions.

The cells are what only the camera sees; the road's geometry is in `longtail.sim.road`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from longtail.sim.actors import CAR_COLORS, Cell, Prop, TrafficLight, Vehicle
from longtail.sim.road import CELL_M, LAYOUTS, Road, RoadLayout

if TYPE_CHECKING:
    from longtail.sim.world import World

WINDOW_BEHIND = 90.0
"""Cells and actors further behind the ego than this are dropped, m."""
WINDOW_AHEAD = 280.0
"""The road is built and populated this far ahead of the ego, m."""


class Roadside:
    """The road under and ahead of the ego, and its roadside cells.

    Args:
        world: the world it belongs to (its ego, plan, traffic lights and vehicles).
    """

    def __init__(self, world: World) -> None:
        self.world = world
        self.road = Road(world.rng_road, self._type_for_new_cell)
        self.cells: dict[int, Cell] = {}
        self._next_cell = 0
        # Metres of building frontage still to fill on each side (1 right, -1 left).
        self._building_left: dict[int, float] = {1: 0.0, -1: 0.0}

    def _type_for_new_cell(self, s: float) -> str:
        w = self.world
        v = max(w.ego.v, 8.0)
        return w.plan.road_type_at(w.t + (s - w.ego.s) / v)

    def ensure(self) -> None:
        w = self.world
        w.road.ensure(w.ego.s + WINDOW_AHEAD + 2 * CELL_M)
        n = w.road.cell_type.size
        for idx in range(self._next_cell, n):
            w.cells[idx] = self._make_cell(idx)
        self._next_cell = n
        behind = int((w.ego.s - WINDOW_BEHIND) // CELL_M) - 1
        for idx in [i for i in w.cells if i < behind]:
            del w.cells[idx]

    def _make_cell(self, idx: int) -> Cell:
        w = self.world
        rng = w.rng_cells
        road_type = w.road.type_at(idx * CELL_M)
        cell = Cell(idx, road_type)
        s0 = idx * CELL_M
        layout = LAYOUTS[road_type]
        if road_type == "urban":
            self._urban_cell(cell, s0, layout, rng)
        else:
            self._highway_cell(cell, s0, layout, rng)
        return cell

    def _urban_cell(self, cell: Cell, s0: float, layout: RoadLayout, rng: np.random.Generator) -> None:
        w = self.world
        for side in (1, -1):
            if self._building_left[side] <= 0:
                length = float(rng.uniform(12, 30))
                gap = float(rng.uniform(0, 6)) if rng.random() < 0.4 else 0.0
                setback = (layout.building_setback or 14.0) + float(rng.uniform(0, 4))
                height = float(rng.choice([rng.uniform(7, 13), rng.uniform(12, 26)]))
                facade = [(210, 200, 185), (180, 160, 140), (150, 90, 70), (225, 225, 220), (120, 120, 125),
                          (200, 180, 120), (170, 190, 200), (140, 110, 90)][int(rng.integers(8))]
                cell.props.append(
                    Prop("building", s0 + gap, side * setback, (length, height, float(rng.uniform(10, 20))),
                         facade, int(rng.integers(1 << 30)), side)
                )
                self._building_left[side] = length + gap
            self._building_left[side] -= CELL_M
            # Street lights every 30 m, trees between them, parked cars in the parking strip.
            if cell.index % 3 == 0:
                cell.props.append(Prop("lamp", s0 + 1.0, side * 10.4, (8.0,), (90, 92, 95), 0, side))
            elif rng.random() < 0.35:
                cell.props.append(Prop("tree", s0 + float(rng.uniform(2, 8)), side * 10.5,
                                       (float(rng.uniform(5, 9)), float(rng.uniform(1.6, 2.8))), (40, 95, 40),
                                       int(rng.integers(1 << 30)), side))
            if rng.random() < 0.06:
                cell.props.append(Prop("sign", s0 + float(rng.uniform(0, 10)), side * 10.2, (2.4, 0.6),
                                       [(200, 30, 30), (30, 80, 200), (240, 240, 240)][int(rng.integers(3))],
                                       int(rng.integers(1 << 30)), side))
            for slot in range(2):
                if rng.random() < 0.45:
                    s = s0 + 2.5 + slot * 5.2
                    self._add_parked(s, side * (layout.parking_x or 8.95), rng, oncoming=side < 0)
        # A signalised junction every few hundred metres, with a crosswalk after the stop line.
        last = w.lights[-1].s if w.lights else -1e9
        if s0 - last > 250 and rng.random() < 0.08 and s0 > w.ego.s + 150:
            light = TrafficLight(s0, float(rng.uniform(0, 60)))
            w.lights.append(light)
            cell.crosswalk = True
            for side in (1, -1):
                cell.props.append(Prop("traffic_light", s0 - 1.0, side * 10.2, (4.5,), (40, 40, 40), 0, side))
            # No parked cars on the crosswalk.
            w.vehicles = [v for v in w.vehicles if not (v.parked and s0 - 6 < v.s < s0 + 8)]

    def _highway_cell(self, cell: Cell, s0: float, layout: RoadLayout, rng: np.random.Generator) -> None:
        if cell.index % 5 == 0:
            cell.props.append(Prop("lamp", s0, layout.barrier_x or -1.1, (10.0,), (120, 122, 125), 0, -1))
        for side, x0 in ((1, 16.0), (-1, -16.0)):
            if rng.random() < 0.5:
                n = int(rng.integers(1, 3))
                for _ in range(n):
                    x = x0 + side * float(rng.uniform(0, 25))
                    kind = "tree" if rng.random() < 0.8 else "bush"
                    size = (float(rng.uniform(6, 14)), float(rng.uniform(2.0, 4.5))) if kind == "tree" else (
                        float(rng.uniform(1.0, 2.0)), float(rng.uniform(1.2, 2.5)))
                    green = (int(rng.integers(25, 60)), int(rng.integers(70, 120)), int(rng.integers(25, 55)))
                    cell.props.append(Prop(kind, s0 + float(rng.uniform(0, 10)), x, size, green,
                                           int(rng.integers(1 << 30)), side))
        if rng.random() < 0.015:
            cell.props.append(Prop("sign", s0 + 5, 15.0, (4.5, 2.2), (20, 110, 60), int(rng.integers(1 << 30)), 1))
        if cell.index % 4 == 0:
            cell.props.append(Prop("pole", s0, 14.1, (1.2,), (200, 200, 200), 0, 1))

    def _add_parked(self, s: float, x: float, rng: np.random.Generator, oncoming: bool) -> Vehicle:
        w = self.world
        v = Vehicle(
            id=w.new_id(), kind="car", s=s, x=x, v=0.0,
            length=float(rng.uniform(3.9, 4.8)), width=float(rng.uniform(1.7, 1.9)),
            height=float(rng.uniform(1.4, 1.75)), color=CAR_COLORS[int(rng.integers(len(CAR_COLORS)))],
            oncoming=oncoming, parked=True, variant=int(rng.integers(1 << 30)),
        )
        w.vehicles.append(v)
        return v
