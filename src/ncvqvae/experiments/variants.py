"""Stage-1 variants: a method with its augmentations, named as in the thesis tables (``bt_warp``).

The method and augmentation names are the registries' (:data:`ncvqvae.models.ssl.SSL_METHODS`,
:data:`ncvqvae.data.augment.AUGMENTATIONS`); this module only adds the tables' short names and the
spellings a sweep file may use. Sweeps (:mod:`ncvqvae.experiments.sweep`) and reports
(:mod:`ncvqvae.experiments.report`) both read variants from here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ncvqvae.config import RunConfig
from ncvqvae.data.augment import AUGMENTATIONS as _AUGMENTATION_REGISTRY
from ncvqvae.errors import ConfigError
from ncvqvae.models.ssl import SSL_METHODS, get_ssl_method

METHODS: tuple[str, ...] = tuple(SSL_METHODS)
AUGMENTATIONS: tuple[str, ...] = tuple(_AUGMENTATION_REGISTRY)
SSL_ONLY: tuple[str, ...] = tuple(m for m in METHODS if SSL_METHODS[m] is not None)  # the NC methods
# Short names as in the thesis tables and the anchor CSVs (``bt_warp``, ``vibcreg_slice``).
_SHORT = {"barlowtwins": "bt"}
# Spellings a sweep file may use for a method, besides the registered names.
_METHOD_ALIASES = {
    **{method: method for method in METHODS},
    "regular": "baseline",
    "vqvae": "baseline",
    "bt": "barlowtwins",
    "barlow_twins": "barlowtwins",
    "barlow": "barlowtwins",
}


@dataclass(frozen=True)
class Variant:
    """A stage-1 method with its augmentations: ``baseline``, ``bt_warp``, ``vibcreg_warp+gauss``...

    Attributes:
        method: a key of :data:`ncvqvae.models.ssl.SSL_METHODS` ("baseline", "barlowtwins", "vibcreg").
        augmentations: the augmented view's augmentations (empty for the baseline, which has none).
    """

    method: str
    augmentations: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The table/anchor name: ``baseline``, ``bt_warp``, ``vibcreg_slice``, ``bt_warp+gauss``."""
        if SSL_METHODS.get(self.method) is None:
            return self.method  # the baseline: no augmented view
        return f"{_SHORT.get(self.method, self.method)}_{'+'.join(self.augmentations)}"

    @classmethod
    def parse(cls, text: str, *, source: str = "variant") -> Variant:
        """Read ``baseline``, ``bt_warp``, ``barlowtwins-warp``, ``vibcreg_warp+gauss`` (case-insensitive)."""
        raw = str(text).strip().lower()
        parts = re.split(r"[-_:/]", raw, maxsplit=1)
        method_part = parts[0]
        aug_part = parts[1] if len(parts) > 1 else ""
        if raw in ("barlow_twins", "barlow-twins"):
            method_part, aug_part = "barlowtwins", ""
        elif method_part == "barlow" and aug_part.startswith("twins"):
            method_part, aug_part = "barlowtwins", aug_part[len("twins") :].lstrip("-_:/")
        method = _METHOD_ALIASES.get(method_part)
        if method is None:
            raise ConfigError(
                f"{source}: unknown variant {text!r}; expected 'baseline' or <method>_<aug>[+<aug>] with "
                f"method in {', '.join(SSL_ONLY)} (or bt) and aug in {', '.join(AUGMENTATIONS)}, "
                "e.g. 'bt_warp'"
            )
        return cls.make(method, aug_part.split("+") if aug_part else (), source=source)

    @classmethod
    def make(cls, method: str, augmentations: Iterable[str] = (), *, source: str = "variant") -> Variant:
        """Build a variant from a method name and augmentation names, checking both."""
        method = _METHOD_ALIASES.get(str(method).lower(), str(method).lower())
        if method not in METHODS:
            raise ConfigError(f"{source}: unknown method {method!r}; expected one of {', '.join(METHODS)}")
        augs = tuple(a.strip().lower() for a in augmentations if a.strip())
        bad = [a for a in augs if a not in AUGMENTATIONS]
        if bad:
            raise ConfigError(
                f"{source}: unknown augmentation(s) {bad}; expected any of {', '.join(AUGMENTATIONS)}"
            )
        if get_ssl_method(method) is None:
            return cls(method, ())  # the baseline has no augmented view
        if not augs:
            example = f"{_SHORT.get(method, method)}_warp"
            raise ConfigError(
                f"{source}: method {method!r} needs at least one augmentation, e.g. '{example}'"
            )
        return cls(method, augs)

    @classmethod
    def from_config(cls, cfg: RunConfig) -> Variant:
        """The variant a run config describes."""
        return cls.make(cfg.stage1.method, cfg.stage1.augmentation.names, source="config")

    def overrides(self) -> dict[str, Any]:
        """The nested config fields this variant sets."""
        out: dict[str, Any] = {"stage1": {"method": self.method}}
        if self.augmentations:
            out["stage1"]["augmentation"] = {"names": list(self.augmentations)}
        return out
