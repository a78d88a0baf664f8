"""The log template miner: online, streaming, one configuration for every system.

Each message becomes ``(template_id, template, parameters)``. The algorithm, in the order a line
meets it:

1. **Masking**: one pre-compiled regex (the configured rules joined by ``|``) replaces every
   variable-looking chunk with ``<*>``. The default rule masks a chunk (a run of characters between
   blanks and ``= , ; ( ) [ ] { } " '``) that holds a digit: ``uid=0`` → ``uid=<*>``,
   ``[173.234.31.186]`` → ``[<*>]``, ``blk_-69522`` → ``<*>``.
2. **Shape cache** (the hot path): the masked line is looked up in a dict of shapes already seen;
   a hit names the template at once, and its parameters are the masked chunks (``findall``).
3. **Clustering** (a new shape): among templates with the same number of tokens, the one sharing
   the most constant tokens position by position wins if it shares at least ``similarity`` of
   them; the positions that differ become ``<*>`` (a word variable such as a user name). Otherwise
   the shape starts a new template.

Ids are a digest of the template's first text and survive restarts (``state()``/``from_state``) and
template generalisation; ``Parsed.new`` says the template was created or its text changed. Memory
is bounded: at most ``max_templates`` templates (the rarest, least recently seen are evicted), at
most ``max_tokens`` tokens per template, at most ``max_shapes`` cached shapes.

>>> miner = TemplateMiner()
>>> miner.add("Invalid user webmaster from 173.234.31.186").template
'Invalid user webmaster from <*>'
>>> p = miner.add("Invalid user test9 from 52.80.34.196")
>>> p.template, p.parameters
('Invalid user <*> from <*>', ('test9', '52.80.34.196'))
>>> p = miner.add("Invalid user admin from 10.0.0.1")
>>> p.template, p.parameters, p.new
('Invalid user <*> from <*>', ('admin', '10.0.0.1'), False)
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

MINER_NAME = "watchkeeper-template-miner"
MINER_VERSION = "1"

#: The wildcard a variable becomes in a template.
WILDCARD = "<*>"

#: A chunk between these characters (or blanks) that holds a digit is a variable.
DELIMITERS = r"""\s=,;()\[\]{}"'"""
DIGIT_CHUNK = rf"(?<![^{DELIMITERS}])[^{DELIMITERS}]*\d[^{DELIMITERS}]*"


class MaskRule(BaseModel):
    """One masking rule: every match of ``pattern`` (a Python regex) becomes ``<*>`` in the template."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pattern: str = Field(description="Python regular expression; a match is a variable")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"masking pattern {value!r} is not a valid regular expression: {exc}") from exc
        if compiled.match(""):
            raise ValueError(f"masking pattern {value!r} matches the empty string")
        return value


class MinerConfig(BaseModel):
    """The miner's configuration (YAML-loadable). One configuration serves every system."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    masking: tuple[MaskRule, ...] = Field(
        default=(MaskRule(pattern=DIGIT_CHUNK),),
        description="Rules applied before clustering; the default masks every chunk holding a digit")
    similarity: float = Field(default=0.5, ge=0.0, le=1.0, description=(
        "Share of a template's constant tokens a new message must repeat, at the same positions, to join it"))
    max_templates: int = Field(default=10_000, ge=1, le=10_000_000, description=(
        "Templates kept; beyond it the rarest, least recently seen are evicted"))
    max_tokens: int = Field(default=256, ge=2, le=100_000, description=(
        "Tokens kept per message; the rest fold into one trailing <*>"))
    max_shapes: int = Field(default=100_000, ge=1, le=100_000_000, description=(
        "Masked message shapes remembered for the fast path"))


@dataclass(frozen=True, slots=True)
class Parsed:
    """One message's template."""

    template_id: str
    template: str
    parameters: tuple[str, ...]
    new: bool


class _Cluster:
    __slots__ = ("alive", "count", "id", "last", "template", "tokens", "version")

    def __init__(self, cid: str, tokens: list[str], count: int = 0, last: int = 0) -> None:
        self.id = cid
        self.tokens = tokens
        self.template = " ".join(tokens)
        self.count = count
        self.last = last
        self.version = 0
        self.alive = True


class TemplateMiner:
    """Online template miner (see the module docstring for the algorithm)."""

    def __init__(self, config: MinerConfig | None = None) -> None:
        self.config = config or MinerConfig()
        self._mask = re.compile("|".join(f"(?:{rule.pattern})" for rule in self.config.masking))
        self._findall_ok = self._mask.groups == 0
        self._clusters: dict[str, _Cluster] = {}
        self._by_length: dict[int, list[_Cluster]] = {}
        # masked line -> [cluster, cluster version when checked, the shape is exactly the template]
        self._shapes: dict[str, list[Any]] = {}
        self._token_res: dict[str, re.Pattern[str]] = {}
        self._tick = 0

    # -- the hot path -------------------------------------------------------------------------------

    def add(self, line: str) -> Parsed:
        """Mine one message (header stripped, or the raw line) and return its template."""
        self._tick += 1
        line = line.strip()
        masked = self._mask.sub(WILDCARD, line)
        entry = self._shapes.get(masked)
        if entry is not None:
            cluster = entry[0]
            if cluster.alive:
                cluster.count += 1
                cluster.last = self._tick
                if entry[1] == cluster.version:
                    if entry[2] and self._findall_ok:
                        return Parsed(cluster.id, cluster.template, tuple(self._mask.findall(line)), False)
                    return Parsed(cluster.id, cluster.template, self._parameters(cluster, line), False)
                entry[1], entry[2] = cluster.version, cluster.tokens == self._tokens(masked)
                return Parsed(cluster.id, cluster.template, self._parameters(cluster, line), False)
            del self._shapes[masked]
        return self._add_shape(line, masked)

    def add_many(self, lines: Iterable[str]) -> list[Parsed]:
        """Mine messages in order."""
        add = self.add
        return [add(line) for line in lines]

    # -- the slow path: a shape not seen before ------------------------------------------------------

    def _tokens(self, text: str) -> list[str]:
        tokens = text.split()
        limit = self.config.max_tokens
        if len(tokens) > limit:
            tokens = [*tokens[: limit - 1], WILDCARD]
        return tokens or [""]

    def _add_shape(self, line: str, masked: str) -> Parsed:
        tokens = self._tokens(masked)
        cluster = self._best_match(tokens)
        new = False
        if cluster is None:
            cluster = self._create(tokens)
            new = True
        elif cluster.tokens != tokens:
            merged = [t if t == s else WILDCARD for t, s in zip(cluster.tokens, tokens, strict=True)]
            if merged != cluster.tokens:
                cluster.tokens = merged
                cluster.template = " ".join(merged)
                cluster.version += 1
                new = True
        cluster.count += 1
        cluster.last = self._tick
        if len(self._shapes) >= self.config.max_shapes:
            self._forget_shapes()
        self._shapes[masked] = [cluster, cluster.version, cluster.tokens == tokens]
        return Parsed(cluster.id, cluster.template, self._parameters(cluster, line), new)

    def _best_match(self, tokens: list[str]) -> _Cluster | None:
        best: _Cluster | None = None
        best_score = -1.0
        threshold = self.config.similarity
        for cluster in self._by_length.get(len(tokens), ()):
            same = constants = 0
            for t, s in zip(cluster.tokens, tokens, strict=True):
                if t == WILDCARD:
                    continue
                constants += 1
                if t == s:
                    same += 1
            if constants == 0:
                score = 1.0
            else:
                score = same / constants
            if score >= threshold and score > best_score:
                best, best_score = cluster, score
        return best

    def _create(self, tokens: list[str]) -> _Cluster:
        template = " ".join(tokens)
        digest = hashlib.blake2b(template.encode(), digest_size=6).hexdigest()
        salt = 0
        while digest in self._clusters:
            salt += 1
            digest = hashlib.blake2b(f"{template}#{salt}".encode(), digest_size=6).hexdigest()
        cluster = _Cluster(digest, tokens, last=self._tick)
        self._clusters[digest] = cluster
        self._by_length.setdefault(len(tokens), []).append(cluster)
        if len(self._clusters) > self.config.max_templates:
            self._evict(exclude=cluster)
        return cluster

    def _evict(self, exclude: _Cluster) -> None:
        """Drop the rarest, least recently seen tenth of the templates (at least one)."""
        n = max(1, len(self._clusters) - self.config.max_templates, self.config.max_templates // 10)
        ranked = sorted((c for c in self._clusters.values() if c is not exclude), key=lambda c: (c.count, c.last))
        for cluster in ranked[:n]:
            cluster.alive = False
            del self._clusters[cluster.id]
            self._by_length[len(cluster.tokens)].remove(cluster)

    def _forget_shapes(self) -> None:
        """Keep the newer half of the shape cache."""
        keep = list(self._shapes.items())[len(self._shapes) // 2:]
        self._shapes = dict(keep)

    def _parameters(self, cluster: _Cluster, line: str) -> tuple[str, ...]:
        template = cluster.tokens
        original = line.split()
        if len(original) != len(template) or len(original) > self.config.max_tokens:
            if len(original) > len(template) and template and template[-1] == WILDCARD and len(template) > 1:
                head = len(template) - 1
                original = [*original[:head], " ".join(original[head:])]
            else:
                return tuple(m.group() for m in self._mask.finditer(line))
        params: list[str] = []
        for token, value in zip(template, original, strict=True):
            if token == WILDCARD:
                params.append(value)
            elif WILDCARD in token:
                pattern = self._token_res.get(token)
                if pattern is None:
                    parts = [re.escape(p) for p in token.split(WILDCARD)]
                    pattern = re.compile("(.*?)".join(parts) + r"\Z", re.DOTALL)
                    if len(self._token_res) > 10_000:
                        self._token_res.clear()
                    self._token_res[token] = pattern
                match = pattern.match(value)
                if match:
                    params.extend(match.groups())
                else:
                    params.append(value)
        return tuple(params)

    # -- what it knows ---------------------------------------------------------------------------------

    def templates(self) -> list[tuple[str, str, int]]:
        """``(id, template, count)`` of every template kept, most frequent first."""
        ranked = sorted(self._clusters.values(), key=lambda c: (-c.count, c.id))
        return [(c.id, c.template, c.count) for c in ranked]

    def state(self) -> dict[str, Any]:
        """Everything learned, as JSON-able values (the shape cache is rebuilt, not saved)."""
        return {
            "kind": MINER_NAME,
            "version": MINER_VERSION,
            "config": self.config.model_dump(mode="json"),
            "tick": self._tick,
            "templates": [[c.id, c.template, c.count, c.last] for c in self._clusters.values()],
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any], config: MinerConfig | None = None) -> TemplateMiner:
        """Rebuild a miner from :meth:`state`; it goes on giving the same ids. ``config`` overrides the
        saved configuration."""
        if state.get("kind") != MINER_NAME or str(state.get("version")) != MINER_VERSION:
            raise ValueError(f"state of {state.get('kind')} v{state.get('version')} cannot load into "
                             f"{MINER_NAME} v{MINER_VERSION}")
        if config is None:
            config = MinerConfig.model_validate(state.get("config") or {})
        miner = cls(config)
        miner._tick = int(state.get("tick", 0))
        for cid, template, count, last in state.get("templates", ()):
            cluster = _Cluster(str(cid), str(template).split(" "), int(count), int(last))
            miner._clusters[cluster.id] = cluster
            miner._by_length.setdefault(len(cluster.tokens), []).append(cluster)
        return miner
