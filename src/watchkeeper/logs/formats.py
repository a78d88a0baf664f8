"""Log line headers: split a line into its header fields and the message (``Content``).

The loghub formats are the per-system ``log_format`` strings of the loghub benchmark (logpai's
``logparser`` benchmark settings): data format, not tuning. ``<Name>`` is a field, a run of spaces
matches any run of blanks, and ``Content`` is the message the template miner reads.

>>> fmt = HeaderFormat.loghub("OpenSSH")
>>> fmt.content("Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186")
'Invalid user webmaster from 173.234.31.186'
>>> HeaderFormat.raw().content("  anything at all ")
'anything at all'
>>> HeaderFormat.parse("syslog").content("Mar  3 10:00:01 web1 CRON[4242]: (root) CMD (run-parts /etc/cron.hourly)")
'(root) CMD (run-parts /etc/cron.hourly)'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

#: ``log_format`` of each loghub system, as the loghub benchmark parses it.
LOGHUB_FORMATS: Mapping[str, str] = {
    "HDFS": "<Date> <Time> <Pid> <Level> <Component>: <Content>",
    "Hadoop": r"<Date> <Time> <Level> \[<Process>\] <Component>: <Content>",
    "Spark": "<Date> <Time> <Level> <Component>: <Content>",
    "Zookeeper": r"<Date> <Time> - <Level>  \[<Node>:<Component>@<Id>\] - <Content>",
    "BGL": "<Label> <Timestamp> <Date> <Node> <Time> <NodeRepeat> <Type> <Component> <Level> <Content>",
    "HPC": "<LogId> <Node> <Component> <State> <Time> <Flag> <Content>",
    "Thunderbird": r"<Label> <Timestamp> <Date> <User> <Month> <Day> <Time> <Location> <Component>(\[<PID>\])?: "
                   "<Content>",
    "Windows": "<Date> <Time>, <Level>                  <Component>    <Content>",
    "Linux": r"<Month> <Date> <Time> <Level> <Component>(\[<PID>\])?: <Content>",
    "Android": "<Date> <Time>  <Pid>  <Tid> <Level> <Component>: <Content>",
    "HealthApp": r"<Time>\|<Component>\|<Pid>\|<Content>",
    "Apache": r"\[<Time>\] \[<Level>\] <Content>",
    "Proxifier": r"\[<Time>\] <Program> - <Content>",
    "OpenSSH": r"<Date> <Day> <Time> <Component> sshd\[<Pid>\]: <Content>",
    "OpenStack": r"<Logrecord> <Date> <Time> <Pid> <Level> <Component> \[<ADDR>\] <Content>",
    "Mac": r"<Month>  <Date> <Time> <User> <Component>\[<PID>\]( \(<Address>\))?: <Content>",
}


#: A classic syslog file line (RFC 3164 as written by rsyslog/syslog-ng to /var/log/*).
SYSLOG_FORMAT = r"<Month> <Date> <Time> <Host> <Component>(\[<PID>\])?: <Content>"


def _compile(log_format: str) -> re.Pattern[str]:
    """The loghub benchmark's header regex: fields non-greedy, spaces as ``\\s+``, anchored."""
    pieces = re.split(r"(<[^<>]+>)", log_format)
    regex = ""
    for k, piece in enumerate(pieces):
        if k % 2 == 0:
            regex += re.sub(" +", r"\\s+", piece)
        else:
            regex += f"(?P<{piece.strip('<>')}>.*?)"
    return re.compile("^" + regex + "$")


@dataclass(frozen=True, slots=True)
class HeaderFormat:
    """A header format; ``content(line)`` is the message (the whole line when the header does not fit)."""

    name: str
    pattern: re.Pattern[str] | None

    @classmethod
    def raw(cls) -> HeaderFormat:
        return cls("raw", None)

    @classmethod
    def loghub(cls, system: str) -> HeaderFormat:
        try:
            log_format = LOGHUB_FORMATS[system]
        except KeyError:
            known = ", ".join(sorted(LOGHUB_FORMATS))
            raise ValueError(f"no loghub format for {system!r}; known systems: {known}") from None
        return cls(f"loghub:{system}", _compile(log_format))

    @classmethod
    def parse(cls, spec: str) -> HeaderFormat:
        """``raw``, ``syslog`` or ``loghub:<System>``."""
        if spec == "raw":
            return cls.raw()
        if spec == "syslog":
            return cls("syslog", _compile(SYSLOG_FORMAT))
        kind, _, system = spec.partition(":")
        if kind == "loghub" and system:
            return cls.loghub(system)
        raise ValueError(f"unknown format {spec!r}: use 'raw', 'syslog' or 'loghub:<System>' (e.g. loghub:HDFS)")

    def content(self, line: str) -> str:
        line = line.strip()
        if self.pattern is None:
            return line
        match = self.pattern.match(line)
        if match is None:
            return line
        return match.group("Content").strip()
