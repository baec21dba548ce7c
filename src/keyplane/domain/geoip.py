"""IP-to-country lookup from a table of ranges (rows `start_ip,end_ip,country`, the shape of
the common free CSV databases), with a binary search per lookup."""

from __future__ import annotations

import bisect
import csv
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class GeoTable:
    # Per IP version: range starts (sorted), and the (end, country) of each range.
    _starts: dict[int, list[int]] = field(default_factory=lambda: {4: [], 6: []})
    _ranges: dict[int, list[tuple[int, str]]] = field(default_factory=lambda: {4: [], 6: []})

    @classmethod
    def from_rows(cls, lines: Iterable[str]) -> GeoTable:
        """Rows that do not parse (a header line, comments) are skipped."""
        parsed: dict[int, list[tuple[int, int, str]]] = {4: [], 6: []}
        for row in csv.reader(lines):
            if len(row) < 3:
                continue
            try:
                start = ipaddress.ip_address(row[0].strip())
                end = ipaddress.ip_address(row[1].strip())
            except ValueError:
                continue
            country = row[2].strip().upper()
            if start.version != end.version or int(end) < int(start) or not country:
                continue
            parsed[start.version].append((int(start), int(end), country))
        table = cls()
        for version, rows in parsed.items():
            rows.sort()
            table._starts[version] = [r[0] for r in rows]
            table._ranges[version] = [(r[1], r[2]) for r in rows]
        return table

    def __len__(self) -> int:
        return sum(len(s) for s in self._starts.values())

    def country(self, address: str) -> str | None:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        starts = self._starts[ip.version]
        index = bisect.bisect_right(starts, int(ip)) - 1
        if index < 0:
            return None
        end, country = self._ranges[ip.version][index]
        return country if int(ip) <= end else None
