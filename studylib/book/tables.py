"""How the book shows a results table: rendered as a Markdown table in a notebook (it wraps
to the page instead of scrolling sideways as preformatted text) and as aligned columns when
printed in a terminal."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


def fmt(value: object) -> str:
    """A cell's text: floats to 4 significant digits, None as a dash."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def estimate(value: float, low: float, high: float, digits: int = 1) -> str:
    """A measured value with its interval in one cell, e.g. "95.5 [95.0, 95.8]"."""
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def signed(value: float, digits: int = 1) -> str:
    """A difference with its sign and a typographic minus, e.g. "+0.52", "−1.8"."""
    return f"{value:+.{digits}f}".replace("-", "−")


def signed_estimate(value: float, low: float, high: float, digits: int = 1) -> str:
    """A signed difference with its interval in one cell, e.g. "−1.8 [−8.8, +5.3]"."""
    return f"{signed(value, digits)} [{signed(low, digits)}, {signed(high, digits)}]"


def listed(items: Sequence[str]) -> str:
    """Items in words: "a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def counted(verdicts: Sequence[str]) -> str:
    """How many of each verdict, in words: "inconclusive for 3, differs for 2"."""
    counts = {v: list(verdicts).count(v) for v in dict.fromkeys(verdicts)}
    return ", ".join(f"{v} for {n}" for v, n in counts.items()) or "none measured"


def _escaped(value: object) -> str:
    """A Markdown cell: `fmt`'s text with its pipes escaped."""
    return fmt(value).replace("|", "\\|")


@dataclass(repr=False)
class Table:
    """A header and rows of cells (any value; `fmt` writes them), an optional caption above
    and note below. Numeric columns are right-aligned. A table without rows shows only its
    caption and note (for example, why nothing was recorded yet)."""

    columns: Sequence[str]
    rows: list[Sequence[object]] = field(default_factory=list)
    caption: str = ""
    note: str = ""

    @classmethod
    def from_records(cls, records: list[dict], columns: Sequence[str] | None = None, **kwargs: str) -> Table:
        """A table of dicts, one per row; `columns` defaults to the first record's keys."""
        columns = tuple(columns or records[0])
        return cls(columns, [tuple(r.get(c) for c in columns) for r in records], **kwargs)

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(f"a row has {len(row)} cells for {len(self.columns)} columns: {row!r}")

    def _numeric(self, j: int) -> bool:
        cells = [row[j] for row in self.rows if row[j] is not None]
        return bool(cells) and all(isinstance(c, int | float) and not isinstance(c, bool) for c in cells)

    def markdown(self) -> str:
        """The table in Markdown, with its caption and note as paragraphs (only those where
        there are no rows)."""
        if not self.rows:
            return "\n\n".join(t for t in (self.caption, self.note) if t)
        lines = [self.caption, ""] if self.caption else []
        lines.append("| " + " | ".join(_escaped(c) for c in self.columns) + " |")
        lines.append("|" + "|".join("---:" if self._numeric(j) else "---" for j in range(len(self.columns))) + "|")
        lines += ["| " + " | ".join(_escaped(c) for c in row) + " |" for row in self.rows]
        if self.note:
            lines += ["", self.note]
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def __str__(self) -> str:
        if not self.rows:
            return "\n".join(t for t in (self.caption, self.note) if t)
        cells = [[fmt(c) for c in self.columns], *([fmt(c) for c in row] for row in self.rows)]
        widths = [max(len(r[j]) for r in cells) for j in range(len(self.columns))]
        right = [self._numeric(j) for j in range(len(self.columns))]
        lines = [self.caption] if self.caption else []
        for r in cells:
            lines.append(
                "  ".join(c.rjust(w) if a else c.ljust(w) for c, w, a in zip(r, widths, right, strict=True)).rstrip()
            )
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)

    __repr__ = __str__  # what a plain-text front end shows
