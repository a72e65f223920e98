"""Units, chosen once. Physics works in SI base units (bytes, seconds, FLOP, watts,
US dollars); these constants convert at the edges (rendering, catalog input)."""

KB = 1e3
MB = 1e6
GB = 1e9
TB = 1e12
KiB = 2.0**10
MiB = 2.0**20
GiB = 2.0**30
MS = 1e-3
US = 1e-6
HOURS_PER_YEAR = 8760.0
HOURS_PER_MONTH = HOURS_PER_YEAR / 12.0
SECONDS_PER_HOUR = 3600.0
HOURS_PER_DAY = 24.0
