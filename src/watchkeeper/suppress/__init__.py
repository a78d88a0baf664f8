"""Muting: silences (and maintenance windows) with Alertmanager-style matchers, and flapping."""

from watchkeeper.suppress.flapping import FlapDetector
from watchkeeper.suppress.inhibit import InhibitRule
from watchkeeper.suppress.matchers import Matcher, parse_matcher
from watchkeeper.suppress.silence import Silence

__all__ = ["FlapDetector", "InhibitRule", "Matcher", "Silence", "parse_matcher"]
