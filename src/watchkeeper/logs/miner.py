r"""The log template miner: online, streaming, one configuration for every system.

Each message becomes ``(template_id, template, parameters)``. The algorithm, in the order a line
meets it:

1. **Masking**: one pre-compiled regex (your rules, then the default ones, joined by ``|``) replaces
   every variable with ``<*>``. By default a chunk (a run of characters between blanks and
   ``= , ; ( ) [ ] { } " ' < >``) is a variable from its start, or from after a separator
   (``. _ : / \ -``), when that piece holds a digit, up to the next ``/`` or ``\``: ``uid=0`` →
   ``uid=<*>``, ``[173.234.31.186]`` → ``[<*>]``, ``core.2275`` → ``core.<*>``, ``blk_-6952`` →
   ``blk_<*>``; a written-out date and time (``Sat Jul  9 22:53:19 2005``) is one variable. A run of
   one masked token repeated (a list of ids) becomes one token.
2. **Shape cache** (the hot path): the masked line is looked up in a dict of shapes already seen;
   a hit names the template at once, and its parameters are the masked chunks — one regex pass
   (``split``) gives both.
3. **Clustering** (a new shape): among templates with the same number of tokens and the same first
   token (unless that token is not a plain word: a host name may be a variable), the one sharing the
   most constant tokens wins if it differs on at most ``1 - similarity`` of its constants, keeps two,
   and differs on no enum-like word (``RUNNING``); the positions that differ become ``<*>`` (a word
   variable such as a user name). Otherwise the shape starts a new template.

Ids are a digest of the template's first text and survive restarts (``state()``/``from_state``) and
template generalisation; ``Parsed.new`` says the template was created or its text changed. Memory
is bounded: at most ``max_templates`` templates (the rarest, least recently seen are evicted), at
most ``max_tokens`` tokens per template, at most ``max_shapes`` cached shapes, at most
``max_line_chars`` characters read per message.

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
import operator
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

MINER_NAME = "watchkeeper-template-miner"
MINER_VERSION = "1"

#: The wildcard a variable becomes in a template.
WILDCARD = "<*>"

#: Chunks are runs of characters between blanks and these.
DELIMITERS = r"""\s=,;()\[\]{}"'<>"""
#: Inside a chunk, these separate a constant word prefix from a variable (``core.2275``, ``blk_-42``).
SEPARATORS = r"._:/\\\-"
#: Where a variable may start: the start of a chunk, or just after a separator.
_CHUNK_START = rf"(?<![^{DELIMITERS}{SEPARATORS}])"
#: From there to the end of the chunk (stopping at ``/`` and ``\``), when the piece before its first
#: separator holds a digit.
_DIGIT_BODY = rf"(?:[-+](?=\d))?[^{DELIMITERS}{SEPARATORS}\d]*+\d[^{DELIMITERS}/\\]*+"
#: A written-out date and time (``Sat Jul  9 22:53:19 2005``, ``Jul 9 22:53:19``), whatever the names.
_DATE_BODY = (r"(?=[A-Z][a-z]{2}[\s,])(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),?\s+)?"
              r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
              r"\s+\d{1,2},?\s+(?:\d{4}\s+)?\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:\s+\d{4}\b)?")
#: The default masking rule: a chunk (or the part after a separator) that holds a digit is a variable.
DIGIT_CHUNK = _CHUNK_START + _DIGIT_BODY
#: The other default rule: a date and time stamp inside a message is one variable.
DATE_STAMP = _CHUNK_START + _DATE_BODY

#: An enum-like word: capitals and underscores, at least two characters.
_ENUM = re.compile(r"[A-Z][A-Z_]*[A-Z][.,:;!?]?\Z")


#: A plain word (``Failed``, ``Starting``, ``BLOCK:``): as a first token it names the event.
_WORD = re.compile(r"[A-Za-z][A-Za-z'_-]*[.,:;!?*]?\Z")


#: A kind of id (``attempt_<*>``, ``blk_<*>``, ``core.<*>``): as a first token it names the event too.
_KIND = re.compile(r"[A-Za-z]+[._:-]<\*>\Z")


def _loose(token: str) -> bool:
    """A first token that may be a variable: not ``<*>``, not a plain word, not a kind of id
    (``www.example.com``, ``10.0.0.1:<*>`` and ``proxy.example.org:<*>`` are loose)."""
    return token != WILDCARD and _WORD.match(token) is None and _KIND.match(token) is None


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

    masking: tuple[MaskRule, ...] = Field(default=(), description=(
        "Your own rules, tried before the digit rule: every match becomes <*>"))
    mask_digits: bool = Field(default=True, description=(
        "The default rule: a chunk holding a digit is a variable (see DIGIT_CHUNK)"))
    mask_dates: bool = Field(default=True, description=(
        "Also a default: a written-out date and time (Sat Jul 9 22:53:19 2005) is one variable (see DATE_STAMP)"))
    similarity: float = Field(default=0.75, ge=0.0, le=1.0, description=(
        "Share of a template's constant tokens a new message must repeat, at the same positions, to join it"))
    max_templates: int = Field(default=10_000, ge=1, le=10_000_000, description=(
        "Templates kept; beyond it the rarest, least recently seen are evicted"))
    keep_enums: bool = Field(default=True, description=(
        "Never turn an enum-like word (RUNNING, TASK_ABORT: capitals and underscores) into a variable"))
    max_tokens: int = Field(default=256, ge=2, le=100_000, description=(
        "Tokens kept per message; the rest fold into one trailing <*>"))
    max_line_chars: int = Field(default=8192, ge=16, le=10_000_000, description=(
        "Characters of a message read; the rest is ignored (a bound on the memory one line can take)"))
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
    __slots__ = ("alive", "count", "id", "last", "loose", "regex", "regex_version", "template", "tokens", "version",
                 "wild")

    def __init__(self, cid: str, tokens: list[str], count: int = 0, last: int = 0) -> None:
        self.id = cid
        self.tokens = tokens
        self.template = " ".join(tokens)
        # tokens that are <*> and tokens holding one (a quick bound on how far a message differs)
        self.wild = tokens.count(WILDCARD)
        self.loose = sum(WILDCARD in t for t in tokens) - self.wild
        self.count = count
        self.last = last
        self.version = 0
        self.alive = True
        self.regex: re.Pattern[str] | None = None
        self.regex_version = -1


class TemplateMiner:
    """Online template miner (see the module docstring for the algorithm)."""

    def __init__(self, config: MinerConfig | None = None) -> None:
        self.config = config or MinerConfig()
        patterns = [rule.pattern for rule in self.config.masking]
        # the default rules share their (costly, tried at every position) start condition
        bodies = ([_DATE_BODY] if self.config.mask_dates else []) + ([_DIGIT_BODY] if self.config.mask_digits else [])
        if bodies:
            patterns.append(_CHUNK_START + "(?:" + "|".join(bodies) + ")")
        # with no rule at all, a pattern that never matches
        self._mask = re.compile("|".join(f"(?:{p})" for p in patterns) or r"(?!)")
        # masking rules without groups of their own: one capturing group, so split() gives both the
        # constant pieces and the variables in one pass
        capturing = re.compile(f"({self._mask.pattern})")
        self._split = capturing.split if capturing.groups == 1 else None
        self._clusters: dict[str, _Cluster] = {}
        # (token count, first token) -> templates; a template's first token never changes (merges
        # need it equal, or a wildcard in it that covers the new one)
        self._by_head: dict[tuple[int, str], list[_Cluster]] = {}
        # token count -> templates whose first token holds a wildcard (they may cover other first tokens)
        self._wild_heads: dict[int, list[_Cluster]] = {}
        # token count -> templates whose first token is not a plain word (a host name, a path): such a
        # first token may be a variable, so these templates compete with each other
        self._loose_heads: dict[int, list[_Cluster]] = {}
        # masked line -> [cluster, cluster version when checked, the shape is exactly the template]
        self._shapes: dict[str, list[Any]] = {}
        self._token_res: dict[str, re.Pattern[str]] = {}
        self._tick = 0
        self._max_chars = self.config.max_line_chars

    # -- the hot path -------------------------------------------------------------------------------

    def add(self, line: str) -> Parsed:
        """Mine one message (header stripped, or the raw line) and return its template."""
        line = self._clip(line)
        if self._split is not None:
            # one regex pass: constant pieces at even indices, masked chunks at odd ones
            parts = self._split(line)
            masked = WILDCARD.join(parts[0::2])
        else:
            parts = None
            masked = self._mask.sub(WILDCARD, line)
        seen = self._seen(masked)
        if seen is None:
            return self._add_shape(line, masked)
        cluster, exact = seen
        if exact and parts is not None:
            return Parsed(cluster.id, cluster.template, tuple(parts[1::2]), False)
        return Parsed(cluster.id, cluster.template, self._parameters(cluster, line), False)

    def identify(self, line: str) -> tuple[str, str]:
        """``(template_id, template)`` of one message: :meth:`add` without building its parameters
        (the server's hot path). The miner learns exactly as from :meth:`add`.

        >>> miner = TemplateMiner()
        >>> miner.identify("user 1 logged in"), miner.add("user 2 logged in").template_id
        (('8db321b96511', 'user <*> logged in'), '8db321b96511')
        """
        line = self._clip(line)
        masked = self._mask.sub(WILDCARD, line)  # what add() joins from its split: the same text
        seen = self._seen(masked)
        if seen is None:
            parsed = self._add_shape(line, masked)
            return parsed.template_id, parsed.template
        return seen[0].id, seen[0].template

    def _clip(self, line: str) -> str:
        """Count the message (the clock eviction reads) and cut it to ``max_line_chars``, stripped."""
        self._tick += 1
        if len(line) > self._max_chars:
            line = line[: self._max_chars]
        return line.strip()

    def _seen(self, masked: str) -> tuple[_Cluster, bool] | None:
        """The live template of a shape seen before, counted, and whether the shape is exactly its
        tokens (its masked chunks are then its parameters); None for a shape not (or no longer) known."""
        entry = self._shapes.get(masked)
        if entry is None:
            return None
        cluster = entry[0]
        if not cluster.alive:
            del self._shapes[masked]
            return None
        cluster.count += 1
        cluster.last = self._tick
        if entry[1] == cluster.version:
            return cluster, entry[2]
        entry[1], entry[2] = cluster.version, cluster.tokens == masked.split()
        return cluster, False  # the template changed since: its parameters are found again

    def add_many(self, lines: Iterable[str]) -> list[Parsed]:
        """Mine messages in order."""
        add = self.add
        return [add(line) for line in lines]

    # -- the slow path: a shape not seen before ------------------------------------------------------

    def _tokens(self, raw: list[str]) -> list[str]:
        """The template tokens of a masked message: a run of one masked token repeated (a list of ids)
        becomes one token; beyond ``max_tokens`` the rest folds into one ``<*>``."""
        tokens: list[str] = []
        previous = None
        for token in raw:
            if token == previous and WILDCARD in token:
                continue
            tokens.append(token)
            previous = token
        limit = self.config.max_tokens
        if len(tokens) > limit:
            tokens = [*tokens[: limit - 1], WILDCARD]
        return tokens or [""]

    def _add_shape(self, line: str, masked: str) -> Parsed:
        raw = masked.split()
        tokens = self._tokens(raw)
        cluster = self._best_match(tokens)
        new = False
        if cluster is None:
            cluster = self._create(tokens)
            new = True
        elif cluster.tokens != tokens:
            merged = [t if t == s or self._covers(t, s) else WILDCARD
                      for t, s in zip(cluster.tokens, tokens, strict=True)]
            if merged != cluster.tokens:
                if merged[0] != cluster.tokens[0]:
                    self._unindex(cluster)
                    cluster.tokens = merged
                    self._index(cluster)
                cluster.tokens = merged
                cluster.template = " ".join(merged)
                cluster.wild = merged.count(WILDCARD)
                cluster.loose = sum(WILDCARD in t for t in merged) - cluster.wild
                cluster.version += 1
                new = True
        cluster.count += 1
        cluster.last = self._tick
        if len(self._shapes) >= self.config.max_shapes:
            self._forget_shapes()
        self._shapes[masked] = [cluster, cluster.version, cluster.tokens == raw]
        return Parsed(cluster.id, cluster.template, self._parameters(cluster, line), new)

    def _token_re(self, token: str) -> re.Pattern[str]:
        pattern = self._token_res.get(token)
        if pattern is None:
            pattern = re.compile("(.*?)".join(re.escape(p) for p in token.split(WILDCARD)) + r"\Z", re.DOTALL)
            if len(self._token_res) >= 10_000:
                self._token_res.clear()
            self._token_res[token] = pattern
        return pattern

    def _covers(self, template_token: str, token: str) -> bool:
        """A template token with a wildcard inside (``org.apache.<*>``) covers the tokens it matches."""
        return WILDCARD in template_token and self._token_re(template_token).match(token) is not None

    def _best_match(self, tokens: list[str]) -> _Cluster | None:
        """The same-length template that differs from ``tokens`` in the fewest constant positions, if
        it differs in at most ``max(1, (1 - similarity) × constants)`` of them, keeps at least one
        constant, agrees on the first token when that is a plain word, and differs on no enum-like
        word (``RUNNING``, ``TASK_ABORT``) when ``keep_enums`` is set."""
        best: _Cluster | None = None
        best_key = (0, 0)
        slack = 1.0 - self.config.similarity
        keep_enums = self.config.keep_enums
        first = tokens[0]
        n = len(tokens)
        candidates = self._by_head.get((n, first), [])
        wild = self._wild_heads.get(n)
        if wild:
            candidates = candidates + [c for c in wild if c.tokens[0] != first and (
                c.tokens[0] == WILDCARD or self._covers(c.tokens[0], first))]
        loose = self._loose_heads.get(n)
        if loose and _loose(first):
            candidates = candidates + [c for c in loose if c.tokens[0] != first]
        for cluster in candidates:
            template = cluster.tokens
            # a cheap lower bound first: positions that differ, less those a wildcard may explain
            unequal = n - sum(map(operator.eq, template, tokens))
            if unequal - cluster.wild - cluster.loose > int(slack * (n - cluster.wild) + 1e-9):
                continue
            constants = differ = 0
            for t, s in zip(template, tokens, strict=True):
                if t == WILDCARD:
                    continue
                constants += 1
                if t != s and not self._covers(t, s):
                    if keep_enums and (_ENUM.match(t) or _ENUM.match(s)):
                        differ = constants + 1
                        break
                    differ += 1
            if constants - differ < 2 or differ > int(slack * constants + 1e-9):
                continue
            key = (constants - differ, -differ)
            if best is None or key > best_key:
                best, best_key = cluster, key
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
        self._index(cluster)
        if len(self._clusters) > self.config.max_templates:
            self._evict(exclude=cluster)
        return cluster

    def _index(self, cluster: _Cluster) -> None:
        n, head = len(cluster.tokens), cluster.tokens[0]
        self._by_head.setdefault((n, head), []).append(cluster)
        if WILDCARD in head:
            self._wild_heads.setdefault(n, []).append(cluster)
        if _loose(head):
            self._loose_heads.setdefault(n, []).append(cluster)

    def _unindex(self, cluster: _Cluster) -> None:
        n, head = len(cluster.tokens), cluster.tokens[0]
        self._by_head[(n, head)].remove(cluster)
        if WILDCARD in head:
            self._wild_heads[n].remove(cluster)
        if _loose(head):
            self._loose_heads[n].remove(cluster)

    def _evict(self, exclude: _Cluster) -> None:
        """Drop the rarest, least recently seen tenth of the templates (at least one)."""
        n = max(1, len(self._clusters) - self.config.max_templates, self.config.max_templates // 10)
        ranked = sorted((c for c in self._clusters.values() if c is not exclude), key=lambda c: (c.count, c.last))
        for cluster in ranked[:n]:
            cluster.alive = False
            del self._clusters[cluster.id]
            self._unindex(cluster)

    def _forget_shapes(self) -> None:
        """Keep the newer half of the shape cache."""
        keep = list(self._shapes.items())[len(self._shapes) // 2:]
        self._shapes = dict(keep)

    def _parameters(self, cluster: _Cluster, line: str) -> tuple[str, ...]:
        """The message's values at the template's wildcards (the masked chunks, if the message does not
        fit its template's pattern)."""
        template = cluster.tokens
        values = line.split()
        if len(values) == len(template):
            params: list[str] = []
            for token, value in zip(template, values, strict=True):
                if token == WILDCARD:
                    params.append(value)
                elif WILDCARD in token:
                    match = self._token_re(token).match(value)
                    if match is None:
                        break
                    params.extend(match.groups())
            else:
                return tuple(params)
        if cluster.regex is None or cluster.regex_version != cluster.version:
            pieces = ["(.*?)".join(re.escape(p) for p in token.split(WILDCARD)) for token in template]
            cluster.regex = re.compile(r"\s*" + r"\s+".join(pieces) + r"\s*\Z", re.DOTALL)
            cluster.regex_version = cluster.version
        whole = cluster.regex.match(line)
        if whole is not None:
            return whole.groups()
        return tuple(m.group() for m in self._mask.finditer(line))

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
            miner._index(cluster)
        return miner
