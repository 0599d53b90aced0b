"""Skin dose map and peak skin dose of a fluoroscopy or interventional examination (H8), pure.

Each irradiation event of the RDSR is a square beam from a point source: the reference air
kerma Ka,r (at the interventional reference point, IRP) spread over the field area DAP / Ka,r,
aimed by the positioner angles at the isocentre placed by the table positions. The skin is
a phantom sized from the patient's height and mass (mappings/dose/skin_dose.yaml): a torso of
flat front and back with half-cylindrical sides, and a cylindrical head, cut into ~1 cm cells.
A cell that faces the source and lies inside the field gets

    D = Ka,r x (d_IRP / d_cell)^2 x T_table x BSF.f

d the distances from the focal spot; T_table the table-and-mattress transmission when the ray
crosses the table on its way in (at normal incidence, raised to 1/cos of the ray's angle to the
table normal); BSF.f the backscatter factor times the water/air energy-absorption ratio for the
kVp, the copper filtration and the field's size on the skin. A rotational acquisition spreads
its Ka,r evenly over its arc, one position per degree.

Frames: x towards the table's left (the patient's left when head first and supine), y along
the table away from its reference (the patient's feet when head first), z up, the table top at
z = 0. Table positions describe the equipment (PS3.16 TID 10003B). Positioner angles describe
the beam relative to the patient (PS3.3 C.8.7.5.1.2: primary 0 degrees with the detector in
front of the chest, LAO towards the patient's left; secondary CRA towards the head), so the
beam is aimed in the patient's frame and turned into the table's with the phantom: head or
feet first, supine, prone or lying on a side (decubitus). The map's rows run from the top of
the head down, 1 cm each; its columns go round the torso as seen from the front: the anterior
surface from the patient's right to left, the left side, the back from left to right, the
right side. The head's cells go round the same way from the anterior midline column; cells
that are not skin are NaN.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from server.dose.model import Coded, DoseReport, Equipment, ProjectionEvent

Array = NDArray[np.float64]


@dataclass(frozen=True)
class TableGeometry:
    """How one device type's table positions relate to the phantom's reference (mm)."""

    name: str
    offset_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)  # longitudinal, lateral, height
    direction: tuple[float, float, float] = (1.0, 1.0, 1.0)
    manufacturer: str = ""
    model_pattern: str = ".*"
    secondary_direction: float = 1.0  # -1: the device reports cranial as negative

    def matches(self, equipment: Equipment) -> bool:
        return (equipment.manufacturer or "").lower().startswith(
            self.manufacturer.lower()
        ) and bool(re.fullmatch(self.model_pattern, equipment.model or "", re.IGNORECASE))

    def isocentre_cm(self, event: ProjectionEvent) -> Array:
        """The isocentre in the table frame: DICOM's longitudinal is towards the patient's
        left, lateral towards the head (the isocentre moves the other way), height down."""
        reported = (event.table_longitudinal_mm, event.table_lateral_mm, event.table_height_mm)
        long_mm, lat_mm, height_mm = (
            sign * ((value or 0.0) - offset)
            for value, offset, sign in zip(reported, self.offset_mm, self.direction, strict=True)
        )
        return np.array([-long_mm, lat_mm, height_mm]) / 10.0


AS_REPORTED = TableGeometry("table positions as reported (DICOM directions)")


@dataclass(frozen=True)
class Factors:
    """mappings/dose/skin_dose.yaml, read."""

    version: str
    phantom: dict[str, Any]
    table: dict[str, Any]
    backscatter: dict[str, Any]
    reference_point_from_isocentre_cm: float
    assumed_kvp: float
    copper_codes: frozenset[tuple[str, str]]
    rotational_codes: frozenset[tuple[str, str]]
    thresholds_gy: tuple[float, ...]
    devices: tuple[TableGeometry, ...] = ()
    minimum_dap_on_phantom: float = 0.5

    @classmethod
    def of(cls, data: dict[str, Any]) -> Factors:
        return cls(
            version=data["version"],
            phantom=data["phantom"],
            table=data["table"],
            backscatter=data["backscatter"],
            reference_point_from_isocentre_cm=float(data["reference_point_from_isocentre_cm"]),
            assumed_kvp=float(data["assumed_kvp"]),
            copper_codes=frozenset((s, str(c)) for s, c in data["copper_codes"]),
            rotational_codes=frozenset((s, str(c)) for s, c in data["rotational_event_codes"]),
            thresholds_gy=tuple(float(t) for t in data["thresholds_gy"]),
            devices=tuple(_geometry(d) for d in data.get("devices") or ()),
            minimum_dap_on_phantom=float(data.get("minimum_dap_on_phantom", 0.5)),
        )

    def geometry_for(self, equipment: Equipment) -> TableGeometry:
        return next((d for d in self.devices if d.matches(equipment)), AS_REPORTED)

    def table_transmission(self, kvp: float, cu_mm: float) -> float:
        t = self.table
        return _interpolate((t["cu_mm"], t["kvp"]), t["transmission"], (cu_mm, kvp))

    def backscatter_factor(self, kvp: float, cu_mm: float, field_side_cm: float) -> float:
        b = self.backscatter
        axes = (b["kvp"], b["cu_mm"], b["field_side_cm"])
        return _interpolate(axes, b["factor"], (kvp, cu_mm, field_side_cm))


def _geometry(spec: dict[str, Any]) -> TableGeometry:
    axes = ("longitudinal", "lateral", "height")
    offset, direction = spec.get("offset_mm", {}), spec.get("direction", {})
    return TableGeometry(
        name=f"{spec['manufacturer']} {spec.get('model', '.*')}",
        offset_mm=tuple(float(offset.get(a, 0.0)) for a in axes),  # type: ignore[arg-type]
        direction=tuple(float(direction.get(a, 1)) for a in axes),  # type: ignore[arg-type]
        manufacturer=spec["manufacturer"],
        model_pattern=spec.get("model", ".*"),
        secondary_direction=float(direction.get("secondary_angle", 1)),
    )


# How the patient lies on the table, as turns of the patient's frame (x the patient's left, y
# the feet, z the front) about the long axis: supine, prone, on the left side, on the right side
_ROLLS: dict[str, Array] = {
    "S": np.eye(3),
    "P": np.diag([-1.0, 1.0, -1.0]),
    "DL": np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]]),  # left down, front +x
    "DR": np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]),  # left up, front -x
}
_FEET_FIRST = np.diag([-1.0, -1.0, 1.0])  # turned about the vertical


@dataclass(frozen=True)
class Position:
    """How the patient lies: head or feet first; supine (S), prone (P) or on the left or right
    side (DL, DR, decubitus); and whether it was assumed (DICOM Patient Position codes)."""

    head_first: bool = True
    lying: str = "S"
    assumed: bool = True

    @property
    def code(self) -> str:
        return ("HF" if self.head_first else "FF") + self.lying

    @property
    def turn(self) -> Array:
        """Patient frame -> table frame (a rotation: both frames have the same handedness)."""
        roll = _ROLLS[self.lying]
        return roll if self.head_first else _FEET_FIRST @ roll


@dataclass(frozen=True)
class Phantom:
    """The skin as cells: centres and outward normals (table frame, cm), areas (cm2), and the
    grid (rows, columns) they fill."""

    height_cm: float
    mass_kg: float
    size_assumed: bool
    position: Position
    torso_length_cm: int
    torso_radius_cm: float
    torso_flat_width_cm: float
    head_length_cm: int
    shape: tuple[int, int]
    columns: tuple[int, int]  # the map columns of the front (as many of the back), of one side
    index: NDArray[np.intp]  # (n, 2): the grid row and column of each cell
    centre: Array  # (n, 3)
    normal: Array  # (n, 3)
    area_cm2: Array  # (n,)


@dataclass(frozen=True)
class SkinDoseMap:
    phantom: Phantom
    dose_gy: Array  # the grid; NaN where the grid is not skin
    events_mapped: int
    events_skipped: tuple[tuple[int, str], ...]  # (event index, why)
    ka_r_total_gy: float
    ka_r_mapped_gy: float
    dap_total_gy_m2: float
    dap_on_phantom_gy_m2: float  # DAP of the mapped events whose beam met the phantom
    assumed_kvp_events: int
    thresholds_gy: tuple[float, ...]
    version: str
    table: TableGeometry = AS_REPORTED
    minimum_dap_on_phantom: float = 0.5

    @property
    def dap_on_phantom(self) -> float:
        """The fraction of the examination's DAP whose beams met the phantom."""
        return self.dap_on_phantom_gy_m2 / self.dap_total_gy_m2 if self.dap_total_gy_m2 else 0.0

    @property
    def unfit(self) -> str | None:
        """Why the map cannot be trusted, or None: most of the DAP missed the phantom, so the
        table positions do not place the patient (a table reference not configured)."""
        if self.dap_on_phantom >= self.minimum_dap_on_phantom:
            return None
        return (
            f"the beams of {1 - self.dap_on_phantom:.0%} of the DAP miss the phantom: the "
            f"table positions do not place the patient ({self.table.name}); the device's table "
            "reference belongs in mappings/dose/skin_dose.yaml (devices)"
        )

    @property
    def peak_skin_dose_gy(self) -> float:
        return float(np.nanmax(self.dose_gy))

    @property
    def peak_cell(self) -> tuple[int, int]:
        row, col = np.unravel_index(np.nanargmax(self.dose_gy), self.dose_gy.shape)
        return int(row), int(col)

    def area_at_least_cm2(self, dose_gy: float) -> float:
        """Skin area (cm2) that received at least this dose."""
        p = self.phantom
        hit = self.dose_gy[p.index[:, 0], p.index[:, 1]] >= dose_gy
        return float(p.area_cm2[hit].sum())


@dataclass(frozen=True)
class _Beam:
    source: Array  # focal spot (3,)
    axis: Array  # unit vector from the source towards the isocentre
    across: Array  # unit vectors spanning the field, perpendicular to the axis
    along: Array
    half_tan: float  # half the field side / distance to the IRP
    d_irp_cm: float
    ka_r_gy: float


def phantom_for(
    factors: Factors, height_cm: float | None, mass_kg: float | None, position: Position
) -> Phantom:
    """The phantom of a patient: the reference person when height or mass is unknown or out
    of the accepted range (the result says the size was assumed)."""
    p = factors.phantom
    low_h, high_h = p["height_range_cm"]
    low_m, high_m = p["mass_range_kg"]
    known = (
        height_cm is not None
        and mass_kg is not None
        and low_h <= height_cm <= high_h
        and low_m <= mass_kg <= high_m
    )
    height = float(height_cm) if known and height_cm else float(p["reference_height_cm"])
    mass = float(mass_kg) if known and mass_kg else float(p["reference_mass_kg"])
    scale = height / p["reference_height_cm"]
    radius = p["torso_radius_cm"] * math.sqrt(mass / p["reference_mass_kg"] / scale)
    flat = p["torso_flat_width_cm"] * radius / p["torso_radius_cm"]
    torso_len = round(p["torso_length_cm"] * scale)
    head_len = round(p["head_length_cm"] * scale)
    head_radius = p["head_circumference_cm"] / (2 * math.pi)
    cols_flat, cols_curve = round(flat), round(math.pi * radius)
    torso = _torso(radius, flat, cols_flat, cols_curve)
    head = _head(head_radius, round(p["head_circumference_cm"]), cols_flat // 2)
    cells = _stack(torso, head, head_len, torso_len)
    centre, normal = _place(
        cells, position, height, float(p["end_from_table_reference_cm"]),
        factors.table["mattress_thickness_cm"], flat / 2 + radius, radius,
    )  # fmt: skip
    return Phantom(
        height_cm=height,
        mass_kg=mass,
        size_assumed=not known,
        position=position,
        torso_length_cm=torso_len,
        torso_radius_cm=radius,
        torso_flat_width_cm=flat,
        head_length_cm=head_len,
        shape=(head_len + torso_len, 2 * (cols_flat + cols_curve)),
        columns=(cols_flat, cols_curve),
        index=cells["index"],
        centre=centre,
        normal=normal,
        area_cm2=cells["area"],
    )


def _torso(radius: float, flat: float, n_flat: int, n_curve: int) -> dict[str, Array]:
    """One ring of torso cells (x, z from the back, outward normal), in map column order:
    front right to left, left side down, back left to right, right side up."""
    across = (np.arange(n_flat) + 0.5) * flat / n_flat - flat / 2
    turn = (np.arange(n_curve) + 0.5) * math.pi / n_curve  # 0 at the top, pi at the bottom
    sin, cos = np.sin(turn), np.cos(turn)
    parts = [
        (across, np.full(n_flat, 2 * radius), np.zeros(n_flat), np.ones(n_flat),
         np.full(n_flat, flat / n_flat)),
        (flat / 2 + radius * sin, radius + radius * cos, sin, cos,
         np.full(n_curve, math.pi * radius / n_curve)),
        (-across, np.zeros(n_flat), np.zeros(n_flat), -np.ones(n_flat),
         np.full(n_flat, flat / n_flat)),
        (-flat / 2 - radius * sin, radius - radius * cos, -sin, -cos,
         np.full(n_curve, math.pi * radius / n_curve)),
    ]  # fmt: skip
    x, z, nx, nz, width = (np.concatenate(v) for v in zip(*parts, strict=True))
    return {
        "x": x,
        "z": z,
        "nx": nx,
        "nz": nz,
        "width": width,
    }


def _head(radius: float, n: int, front_column: int) -> dict[str, Array]:
    """One ring of head cells, from the anterior midline (at `front_column`) towards the
    patient's left; cells before the front column carry on from the right side."""
    column = np.arange(n)
    turn = (column - front_column) * 2 * math.pi / n  # 0 at the front midline
    return {
        "x": radius * np.sin(turn), "z": radius + radius * np.cos(turn),
        "nx": np.sin(turn), "nz": np.cos(turn), "width": np.full(n, 2 * math.pi * radius / n),
    }  # fmt: skip


def _stack(
    torso: dict[str, Array], head: dict[str, Array], head_len: int, torso_len: int
) -> dict[str, Any]:
    """The rings repeated along the body: head rows first, then torso rows, 1 cm each."""
    rings = [head] * head_len + [torso] * torso_len
    rows = [np.full(ring["x"].size, row) for row, ring in enumerate(rings)]
    return {
        "index": np.column_stack([np.concatenate(rows),
                                  np.concatenate([np.arange(r["x"].size) for r in rings])]),
        "y": np.concatenate(rows) + 0.5,
        "area": np.concatenate([r["width"] for r in rings]),
        **{k: np.concatenate([r[k] for r in rings]) for k in ("x", "z", "nx", "nz")},
    }  # fmt: skip


def _place(
    cells: dict[str, Any],
    position: Position,
    height_cm: float,
    end_cm: float,
    mattress_cm: float,
    torso_half_width_cm: float,
    torso_radius_cm: float,
) -> tuple[Array, Array]:
    """Cell centres and normals in the table frame: the patient's frame turned about the torso's
    axis as the patient lies, the torso resting on the mattress, the head (head first) or the
    soles (feet first) `end_cm` from the table's reference."""
    turn = position.turn
    # about the torso's axis, which lies one radius above the back
    local = np.column_stack([cells["x"], cells["y"], cells["z"] - torso_radius_cm])
    centre = local @ turn.T
    corners = np.array([[sx * torso_half_width_cm, 0.0, sz * torso_radius_cm]
                        for sx in (-1, 1) for sz in (-1, 1)])  # fmt: skip
    lowest = float((corners @ turn.T)[:, 2].min())
    centre[:, 1] += end_cm if position.head_first else end_cm + height_cm
    centre[:, 2] += mattress_cm - lowest
    normal = np.column_stack([cells["nx"], np.zeros_like(cells["nx"]), cells["nz"]]) @ turn.T
    return centre, normal


def skin_dose_map(report: DoseReport, factors: Factors) -> SkinDoseMap:
    """The map of every projection event of the report."""
    events = report.projection_events
    phantom = phantom_for(
        factors,
        report.patient.size_m * 100 if report.patient.size_m else None,
        report.patient.weight_kg,
        position_of(events),
    )
    table = factors.geometry_for(report.equipment)
    dose = np.zeros(phantom.centre.shape[0])
    skipped: list[tuple[int, str]] = []
    ka_r_mapped = dap_hit = 0.0
    assumed_kvp = 0
    for i, event in enumerate(events):
        why = _unmappable(event, factors)
        if why:
            skipped.append((i, why))
            continue
        added = _event_dose(event, phantom, factors, table)
        dose += added
        ka_r_mapped += event.dose_rp_gy or 0.0
        dap_hit += (event.dap_gy_m2 or 0.0) if added.any() else 0.0
        assumed_kvp += event.kvp_kv is None
    grid = np.full(phantom.shape, np.nan)
    grid[phantom.index[:, 0], phantom.index[:, 1]] = dose
    return SkinDoseMap(
        phantom=phantom,
        dose_gy=grid,
        events_mapped=len(events) - len(skipped),
        events_skipped=tuple(skipped),
        ka_r_total_gy=sum(e.dose_rp_gy or 0.0 for e in events),
        ka_r_mapped_gy=ka_r_mapped,
        dap_total_gy_m2=sum(e.dap_gy_m2 or 0.0 for e in events),
        dap_on_phantom_gy_m2=dap_hit,
        assumed_kvp_events=assumed_kvp,
        thresholds_gy=factors.thresholds_gy,
        version=factors.version,
        table=table,
        minimum_dap_on_phantom=factors.minimum_dap_on_phantom,
    )


def position_of(events: Sequence[ProjectionEvent]) -> Position:
    """Head/feet first and supine, prone or decubitus as the first event that says so;
    supine and head first otherwise (assumed: also for an erect or unknown modifier)."""
    table = next(
        (e.patient_table_relationship for e in events if e.patient_table_relationship), None
    )
    modifier = next((e.patient_orientation_modifier for e in events if e.patient_orientation_modifier), None)  # fmt: skip
    lying = _lying(_meaning(modifier))
    return Position(
        head_first="feet" not in _meaning(table),
        lying=lying or "S",
        assumed=table is None or lying is None,
    )


def _lying(meaning: str) -> str | None:
    """CID 19's supine, prone, left and right lateral decubitus; None for anything else."""
    if "decubitus" in meaning:
        side = "L" if "left" in meaning else "R" if "right" in meaning else None
        return "D" + side if side else None
    return {"supine": "S", "prone": "P"}.get(meaning.strip())


def _meaning(code: Coded | None) -> str:
    return code.meaning.lower() if code else ""


def _unmappable(event: ProjectionEvent, factors: Factors) -> str | None:
    if not event.dose_rp_gy:
        return "no Dose (RP)"
    if not event.dap_gy_m2:
        return "no Dose Area Product (the field size comes from DAP / Dose (RP))"
    if not event.source_to_isocenter_mm:
        return "no Distance Source to Isocenter"
    table = {"Longitudinal": event.table_longitudinal_mm, "Lateral": event.table_lateral_mm,
             "Height": event.table_height_mm}  # fmt: skip
    if missing := [f"Table {axis} Position" for axis, mm in table.items() if mm is None]:
        return "no " + " nor ".join(missing)  # the isocentre cannot be placed on the table
    if _rotational(event, factors) and event.primary_end_angle_deg is None:
        return "rotational acquisition without Positioner Primary End Angle"
    return None


def _rotational(event: ProjectionEvent, factors: Factors) -> bool:
    kind = event.event_type
    return kind is not None and (kind.scheme, kind.value) in factors.rotational_codes


def _event_dose(
    event: ProjectionEvent, phantom: Phantom, factors: Factors, table: TableGeometry
) -> Array:
    kvp = event.kvp_kv or factors.assumed_kvp
    cu_mm = copper_mm(event, factors)
    start = event.primary_angle_deg or 0.0
    if _rotational(event, factors):
        end = event.primary_end_angle_deg or start
        steps = max(1, round(abs(end - start)))
        angles = start + (np.arange(steps) + 0.5) * (end - start) / steps
    else:
        angles = np.array([start])
    dose = np.zeros(phantom.centre.shape[0])
    for angle in angles:
        beam = _beam(event, float(angle), len(angles), factors, table, phantom.position)
        dose += _beam_dose(beam, phantom, factors, kvp, cu_mm)
    return dose


def copper_mm(event: ProjectionEvent, factors: Factors) -> float:
    """Copper filtration: the mean of minimum and maximum thickness of each copper filter."""
    total = 0.0
    for f in event.filters:
        material = f.material
        copper = material is not None and (
            (material.scheme, material.value) in factors.copper_codes
            or material.meaning.lower().startswith("copper")
        )
        thickness = [t for t in (f.thickness_min_mm, f.thickness_max_mm) if t is not None]
        if copper and thickness:
            total += sum(thickness) / len(thickness)
    return total


def _beam(
    event: ProjectionEvent, primary_deg: float, parts: int, factors: Factors,
    table: TableGeometry, position: Position,
) -> _Beam:  # fmt: skip
    secondary = math.radians(table.secondary_direction * (event.secondary_angle_deg or 0.0))
    primary = math.radians(primary_deg)
    # in the patient's frame: 0/0 puts the detector in front of the chest, LAO (+) moves it to
    # the patient's left, CRA (+) towards the head
    axis = position.turn @ np.array([
        math.sin(primary) * math.cos(secondary), math.sin(-secondary),
        math.cos(primary) * math.cos(secondary),
    ])  # fmt: skip
    isocentre = table.isocentre_cm(event)
    dsi_cm = (event.source_to_isocenter_mm or 0.0) / 10.0
    d_irp = (
        event.source_to_reference_point_mm / 10.0
        if event.source_to_reference_point_mm
        else dsi_cm - factors.reference_point_from_isocentre_cm
    )
    across = np.cross(axis, [0.0, 1.0, 0.0])
    across = (
        across / np.linalg.norm(across) if np.linalg.norm(across) > 1e-9 else np.array([1.0, 0, 0])
    )
    side_cm = math.sqrt((event.dap_gy_m2 or 0.0) / (event.dose_rp_gy or 1.0)) * 100.0
    return _Beam(
        source=isocentre - dsi_cm * axis,
        axis=axis,
        across=across,
        along=np.cross(axis, across),
        half_tan=side_cm / 2 / d_irp,
        d_irp_cm=d_irp,
        ka_r_gy=(event.dose_rp_gy or 0.0) / parts,
    )


def _beam_dose(beam: _Beam, phantom: Phantom, factors: Factors, kvp: float, cu_mm: float) -> Array:
    ray = phantom.centre - beam.source
    depth = ray @ beam.axis
    facing = (np.einsum("ij,ij->i", ray, phantom.normal) < 0) & (depth > 0)
    safe = np.where(depth > 0, depth, 1.0)
    inside = (np.abs(ray @ beam.across) <= beam.half_tan * safe) & (
        np.abs(ray @ beam.along) <= beam.half_tan * safe
    )
    hit = facing & inside
    dose = np.zeros(ray.shape[0])
    if not hit.any():
        return dose
    distance = np.linalg.norm(ray[hit], axis=1)
    field_side = math.sqrt(float(phantom.area_cm2[hit].sum()))
    bsf = factors.backscatter_factor(kvp, cu_mm, field_side)
    through = _table_factor(beam.source, ray[hit], distance, factors, kvp, cu_mm)
    dose[hit] = beam.ka_r_gy * (beam.d_irp_cm / distance) ** 2 * through * bsf
    return dose


def _table_factor(
    source: Array, ray: Array, distance: Array, factors: Factors, kvp: float, cu_mm: float
) -> Array:
    """Transmission of the table and mattress for rays that cross the table top on their way
    up from a source below it; 1 for the others."""
    table = factors.table
    rising = ray[:, 2] > 0
    if source[2] >= 0 or not rising.any():
        return np.ones(ray.shape[0])
    t = np.where(rising, -source[2] / np.where(rising, ray[:, 2], 1.0), 0.0)
    x, y = source[0] + t * ray[:, 0], source[1] + t * ray[:, 1]
    crosses = rising & (np.abs(x) <= table["width_cm"] / 2) & (y >= 0) & (y <= table["length_cm"])
    cos = np.abs(ray[:, 2]) / distance
    normal = factors.table_transmission(kvp, cu_mm)
    return np.where(crosses, normal ** (1.0 / np.maximum(cos, 1e-6)), 1.0)


def _interpolate(axes: Sequence[Sequence[float]], values: Any, point: Sequence[float]) -> float:
    """Multilinear interpolation in a table, clamped at its edges."""
    table = np.asarray(values, dtype=float)
    for axis, at in zip(axes, point, strict=True):
        grid = np.asarray(axis, dtype=float)
        at = min(max(at, grid[0]), grid[-1])
        upper = int(min(np.searchsorted(grid, at, side="right"), grid.size - 1))
        lower = max(upper - 1, 0)
        span = grid[upper] - grid[lower]
        w = (at - grid[lower]) / span if span else 0.0
        table = table[lower] * (1 - w) + table[upper] * w
    return float(table)


@dataclass(frozen=True)
class Agreement:
    """How a map agrees with another calculation's map on the same grid."""

    peak_gy: float
    other_peak_gy: float
    peak_distance_cells: float  # between the two peaks' cells
    correlation: float  # Pearson, over every cell that is skin in both; NaN if one is empty


def agreement(dose_gy: Array, other_gy: Array) -> Agreement:
    both = ~np.isnan(dose_gy) & ~np.isnan(other_gy)
    ours, theirs = np.where(both, dose_gy, 0.0), np.where(both, other_gy, 0.0)
    peak_ours = np.unravel_index(np.argmax(ours), ours.shape)
    peak_theirs = np.unravel_index(np.argmax(theirs), theirs.shape)
    flat = ours[both].std() > 0 and theirs[both].std() > 0
    return Agreement(
        peak_gy=float(ours.max()),
        other_peak_gy=float(theirs.max()),
        peak_distance_cells=float(np.hypot(*np.subtract(peak_ours, peak_theirs))),
        correlation=float(np.corrcoef(ours[both], theirs[both])[0, 1]) if flat else math.nan,
    )


def surface_view(dose_gy: Array, front_columns: int, side_columns: int, facing: str) -> Array:
    """The map as someone facing the phantom's "front" or "back" sees it: for each row, 1 cm
    bins across the body from the viewer's left, each showing the skin cell facing the viewer
    nearest to it; NaN outside the body's outline (beside the head). Rows as in the map."""
    sign = 1.0 if facing == "front" else -1.0
    radius = side_columns / math.pi
    torso = _torso(radius, float(front_columns), front_columns, side_columns)
    half = front_columns / 2 + radius
    bins = np.arange(-half, half) + 0.5  # bin centres, the patient's right (x < 0) first
    if facing == "back":
        bins = bins[::-1]  # seen from behind, the patient's left is on the viewer's left
    view = np.full((dose_gy.shape[0], bins.size), np.nan)
    for row, values in enumerate(dose_gy):
        n = int(np.count_nonzero(~np.isnan(values)))
        ring = torso if n == values.size else _head(n / (2 * math.pi), n, front_columns // 2)
        seen = np.flatnonzero(sign * ring["nz"] > 1e-9)
        x = ring["x"][seen]
        order = np.argsort(x)
        x, seen = x[order], seen[order]
        inside = (bins >= x[0] - 0.5) & (bins <= x[-1] + 0.5)
        nearest = np.clip(np.searchsorted(x, bins), 1, x.size - 1)
        pick = np.where(
            np.abs(bins - x[nearest - 1]) <= np.abs(bins - x[nearest]), nearest - 1, nearest
        )
        view[row, inside] = values[seen[pick[inside]]]  # a ring's cells are the row's first columns
    return view
