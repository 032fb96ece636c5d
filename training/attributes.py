"""The shared vocabulary of data, models and bundles: a named, labelled property of every image and its values."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Attribute:
    """A labelled property of every image. Binary attributes have values ("no", "yes")."""

    name: str
    values: tuple[str, ...]

    @property
    def is_binary(self) -> bool:
        return self.values == ("no", "yes")

    def to_json(self) -> dict:
        return {"name": self.name, "values": list(self.values)}

    @staticmethod
    def from_json(data: dict) -> Attribute:
        return Attribute(name=str(data["name"]), values=tuple(str(v) for v in data["values"]))
