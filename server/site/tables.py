"""The site's tables as stored, for ingestion and the checks: dose levels (loaded from
mappings/drl/ into the store, and the site's own made over the API) and the classification
rules (the Library edited over the API, else mappings/classification/)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from server.classification.rules import RULES_IDENTIFIER, rules_of
from server.config import Settings
from server.dose.classify import Rules
from server.dose.drl import DoseLevel, procedure_map
from server.fhir.errors import FhirError
from server.fhir.mapping import Context
from server.fhir.service import FhirService, body_of
from server.mappings import alert_rules, classification_rules, national_levels, read_csv_rows
from server.site.choices import configured
from server.site.choices import stored as stored_choices
from server.site.levels import (
    KIND_SYSTEM,
    LEVEL_ID_SYSTEM,
    dose_level,
    known_quantities,
    observation_definition,
)


@dataclass
class SiteTables:
    """The levels the checks compare with (those of the national sets the site chose, in the
    console or else KERMA_DRL_SETS, from mappings/drl/ or as stored, and every level of a set
    the site made itself), the alert rule sets chosen likewise, and the classification rules
    in force. Read again at most every `max_age_s`, so
    that a change over the API applies, in every process, to reports ingested from then on."""

    service: FhirService
    sets: frozenset[str]
    national: tuple[DoseLevel, ...]
    max_age_s: float = 30.0
    _read_at: float = field(default=float("-inf"), init=False)
    _context: Context | None = field(default=None, init=False)

    def context(self, ctx: Context) -> Context:
        """`ctx` with the site's levels and rules."""
        now = time.monotonic()
        if self._context is None or now - self._read_at > self.max_age_s:
            self._context = self._read(ctx)
            self._read_at = now
        return self._context

    def _read(self, ctx: Context) -> Context:
        national_sets = {lv.set for lv in self.national}
        choices = stored_choices(self.service)  # made in the console: before the settings
        sets = choices.drl_sets if choices else self.sets
        alert = ctx.alert_rules
        if choices:
            alert = tuple(rule for name in choices.alert_sets for rule in alert_rules(name))
        chosen = {lv.key: lv for lv in self.national if lv.set in sets}
        units = known_quantities(self.national)
        pairs = [("category", f"{KIND_SYSTEM}|")]
        for stored in self.service.all_in(self.service.store, "ObservationDefinition", pairs):
            body = body_of(stored)
            try:
                level = dose_level(body, ctx.units, units)
            except FhirError:
                continue  # written before it was checked, or by a trusted loader: not comparable
            if level.set in sets or level.set not in national_sets:
                chosen[level.key] = level
        return replace(ctx, levels=tuple(chosen.values()), rules=self._rules(ctx),
                       alert_rules=alert)  # fmt: skip

    def _rules(self, ctx: Context) -> Rules:
        pairs = [("identifier", RULES_IDENTIFIER), ("status", "active")]
        found = self.service.all_in(self.service.store, "Library", pairs)
        if not found:
            return ctx.rules
        try:
            return rules_of(body_of(found[0]))
        except FhirError:
            return ctx.rules  # checked when written; a broken one never replaces working rules


def site_tables(service: FhirService, settings: Settings, max_age_s: float = 30.0) -> SiteTables:
    """The tables of the site's settings (KERMA_DRL_SETS) and of what it made over the API."""
    return SiteTables(service, configured(settings).drl_sets, national_levels(), max_age_s)


def rules_in_force(service: FhirService, settings: Settings, max_age_s: float = 30.0) -> Rules:
    """The classification rules as the site has them: the Library edited over the API, else
    the shipped tables."""
    from server.site import site_context  # the package imports this module

    return site_tables(service, settings, max_age_s).context(site_context(settings)).rules


def load(service: FhirService, levels: list[DoseLevel]) -> tuple[int, int]:
    """Create or update one ObservationDefinition per level, naming the standard procedures
    it applies to (mappings/drl/procedures.csv); (created, updated)."""
    applies_to = procedure_map(read_csv_rows("drl/procedures.csv"))
    rules = classification_rules()
    created = updated = 0
    with service.store.transaction() as tx:
        for level in levels:
            codes = sorted(applies_to.get((level.set, level.examination), ()))
            procedures = [p for p in map(rules.procedure, codes) if p is not None]
            body = observation_definition(level, procedures)
            pairs = [("identifier", f"{LEVEL_ID_SYSTEM}|{level.key}")]
            found = service.all_in(tx, "ObservationDefinition", pairs)
            if not found:
                service.create_in(tx, "ObservationDefinition", body, trusted=True)
                created += 1
            elif {k: v for k, v in body_of(found[0]).items() if k not in ("id", "meta")} != body:
                body["id"] = found[0].rid
                service.update_in(tx, "ObservationDefinition", found[0].rid, body, trusted=True)
                updated += 1
    return created, updated
