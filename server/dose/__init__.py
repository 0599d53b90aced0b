"""The dose domain: units, dose model, classification and checks. Pure: no I/O (see README.md)."""

from server.dose.units import IncompatibleUnits as IncompatibleUnits
from server.dose.units import Unit as Unit
from server.dose.units import UnitTable as UnitTable
from server.dose.units import UnknownUnit as UnknownUnit
