"""The template miner: templates and parameters, masking configuration, persisted state, bounds."""

from __future__ import annotations

import json

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from watchkeeper.logs.miner import MINER_NAME, MINER_VERSION, MinerConfig, Parsed, TemplateMiner

SSH = [
    "Invalid user webmaster from 173.234.31.186",
    "Invalid user test9 from 52.80.34.196",
    "Failed password for invalid user admin from 5.188.10.180 port 49811 ssh2",
    "Received disconnect from 52.80.34.196: 11: Bye Bye [preauth]",
    "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=5.36.59.76",
    "Invalid user oracle from 10.0.0.1",
    "Received disconnect from 10.1.2.3: 11: disconnected by user",
    "Failed password for invalid user guest from 5.188.10.181 port 50000 ssh2",
]


@pytest.mark.parametrize(("lines", "template", "parameters"), [
    (["Invalid user webmaster from 173.234.31.186", "Invalid user test9 from 52.80.34.196"],
     "Invalid user <*> from <*>", ("test9", "52.80.34.196")),
    (["PacketResponder 1 for block blk_38865049064139660 terminating"],
     "PacketResponder <*> for block blk_<*> terminating", ("1", "38865049064139660")),
    (["authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=5.36.59.76"],
     "authentication failure; logname= uid=<*> euid=<*> tty=ssh ruser= rhost=<*>", ("0", "0", "5.36.59.76")),
    (["generating core.2275"], "generating core.<*>", ("2275",)),
    (["reverse mapping checking getaddrinfo for ns.example.com [173.234.31.186] failed",
      "reverse mapping checking getaddrinfo for mail.example.org [10.0.0.2] failed"],
     "reverse mapping checking getaddrinfo for <*> [<*>] failed", ("mail.example.org", "10.0.0.2")),
])
def test_templates_and_parameters(lines: list[str], template: str, parameters: tuple[str, ...]) -> None:
    miner = TemplateMiner()
    parsed = miner.add_many(lines)[-1]
    assert (parsed.template, parsed.parameters) == (template, parameters)


def test_a_host_name_first_is_a_variable_but_a_word_first_names_the_event() -> None:
    miner = TemplateMiner()
    parsed = miner.add_many([
        "proxy.example.org:5070 open through proxy proxy.example.org:5070 HTTPS",
        "www.example.com:443 open through proxy proxy.example.org:5070 HTTPS",
        "api.example.net:443 open through proxy proxy.example.org:5070 HTTPS",
    ])
    assert len({p.template_id for p in parsed}) == 1
    assert parsed[-1].template == "<*> open through proxy proxy.example.org:<*> HTTPS"
    assert parsed[-1].parameters == ("api.example.net:443", "5070")


def test_a_written_out_date_is_one_variable() -> None:
    miner = TemplateMiner()
    first = miner.add("connection from 206.196.21.129 (host129.example.net) at Sat Jul  9 22:53:19 2005")
    second = miner.add("connection from 10.0.0.1 (a.example.org) at Thu Jun 30 01:02:03 2005")
    assert first.template_id == second.template_id
    assert second.template == "connection from <*> (<*>) at <*>"
    assert second.parameters == ("10.0.0.1", "a.example.org", "Thu Jun 30 01:02:03 2005")
    assert TemplateMiner(MinerConfig(mask_dates=False)).add("at Sat Jul 9 22:53:19").template == "at Sat Jul <*>"


def test_a_list_of_ids_is_one_variable() -> None:
    miner = TemplateMiner()
    short = miner.add("ask 10.250.18.114:50010 to delete blk_-5140072410813878235")
    long = miner.add("ask 10.250.17.177:50010 to delete blk_-8570780307468499817 blk_-91225574054 blk_8767569714")
    assert long.template_id == short.template_id
    assert long.template == "ask <*> to delete blk_<*>"
    assert long.parameters == ("10.250.17.177:50010", "-8570780307468499817 blk_-91225574054 blk_8767569714")


@pytest.mark.parametrize(("first", "second"), [
    # a different first word is a different event
    ("Failed password for root from 5.36.59.76 port 42393 ssh2", "Accepted password for root from 5.36.59.76 port 1 ssh2"),
    # enum-like words stay constants
    ("attempt_1445 TaskAttempt Transitioned from NEW to UNASSIGNED",
     "attempt_1445 TaskAttempt Transitioned from NEW to ASSIGNED"),
    # too many differences for the length
    ("Received disconnect from 1.2.3.4: 11: Bye Bye [preauth]", "Received disconnect from 1.2.3.4: 11: disconnected by user"),
])
def test_different_events_stay_apart(first: str, second: str) -> None:
    miner = TemplateMiner()
    assert miner.add(first).template_id != miner.add(second).template_id


def test_ids_are_digests_that_survive_generalisation_and_new_runs() -> None:
    miner = TemplateMiner()
    first = miner.add("Invalid user webmaster from 173.234.31.186")
    second = miner.add("Invalid user test9 from 52.80.34.196")
    third = miner.add("Invalid user oracle from 10.0.0.1")
    assert first.new and second.new and not third.new  # created, generalised, seen
    assert first.template_id == second.template_id == third.template_id
    again = TemplateMiner().add("Invalid user webmaster from 173.234.31.186")
    assert again.template_id == first.template_id
    assert miner.templates() == [(first.template_id, "Invalid user <*> from <*>", 3)]


def test_state_round_trip_gives_the_same_ids() -> None:
    miner = TemplateMiner()
    before = miner.add_many(SSH)
    state = json.loads(json.dumps(miner.state()))
    assert state["kind"] == MINER_NAME and state["version"] == MINER_VERSION
    restored = TemplateMiner.from_state(state)
    assert restored.templates() == miner.templates()
    after = restored.add_many(SSH)
    assert [p.template_id for p in after] == [p.template_id for p in before]
    assert not any(p.new for p in after)
    fresh = TemplateMiner()
    fresh.add_many(SSH)
    assert fresh.add_many(SSH) == after


def test_state_of_another_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot load"):
        TemplateMiner.from_state({"kind": "drain3", "version": "1"})


def test_masking_is_configurable_from_yaml() -> None:
    config = MinerConfig.model_validate(yaml.safe_load("""
masking:
  - pattern: 'session-[a-z]+'
similarity: 0.9
"""))
    miner = TemplateMiner(config)
    parsed = miner.add("opened session-abc for 42 users")
    assert parsed.template == "opened <*> for <*> users"
    assert parsed.parameters == ("session-abc", "42")


def test_masking_rules_may_have_groups() -> None:
    miner = TemplateMiner(MinerConfig(masking=({"pattern": r"(\d+)\.(\d+)"},), mask_digits=False))  # type: ignore[arg-type]
    parsed = miner.add("version 1.2 loaded")
    assert parsed.template == "version <*> loaded"
    assert parsed.parameters == ("1.2",)


def test_without_any_rule_only_words_vary() -> None:
    miner = TemplateMiner(MinerConfig(mask_digits=False))
    assert miner.add("job 17 done in 3 s").template == "job 17 done in 3 s"
    assert miner.add("job 18 done in 3 s").template == "job <*> done in 3 s"


@pytest.mark.parametrize("pattern", ["(unclosed", "x*"])
def test_bad_masking_rules_are_refused(pattern: str) -> None:
    with pytest.raises(ValidationError):
        MinerConfig.model_validate({"masking": [{"pattern": pattern}]})


def test_unknown_settings_are_refused() -> None:
    with pytest.raises(ValidationError):
        MinerConfig.model_validate({"simlarity": 0.5})


def test_templates_are_capped_and_the_rare_ones_go() -> None:
    miner = TemplateMiner(MinerConfig(max_templates=10, max_shapes=50))
    frequent = [miner.add("the frequent event happened") for _ in range(5)]
    for i in range(500):
        word = "".join(chr(ord("a") + int(d)) for d in str(i))
        miner.add(f"{word} unique event kind {word} {word}")
        assert len(miner.templates()) <= 10
        assert len(miner._shapes) <= 50
    kept = {cid for cid, _, _ in miner.templates()}
    assert frequent[0].template_id in kept


def test_tokens_per_template_are_capped() -> None:
    miner = TemplateMiner(MinerConfig(max_tokens=8))
    line = " ".join(f"word{chr(97 + i % 26)}" for i in range(100))
    parsed = miner.add(line)
    assert len(parsed.template.split(" ")) == 8
    assert parsed.template.endswith("<*>")


def test_parsed_is_a_frozen_value() -> None:
    parsed = TemplateMiner().add("hello world")
    assert parsed == Parsed(parsed.template_id, "hello world", (), True)
    with pytest.raises(AttributeError):
        parsed.template = "x"  # type: ignore[misc]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(), min_size=1, max_size=8))
def test_any_text_is_mined_without_error(lines: list[str]) -> None:
    miner = TemplateMiner(MinerConfig(max_templates=3, max_shapes=4, max_tokens=4))
    for parsed in miner.add_many(lines):
        assert isinstance(parsed.template, str) and len(parsed.template_id) == 12
        assert all(isinstance(p, str) for p in parsed.parameters)
    restored = TemplateMiner.from_state(json.loads(json.dumps(miner.state())))
    assert restored.templates() == miner.templates()


def test_a_huge_line_costs_bounded_memory() -> None:
    miner = TemplateMiner(MinerConfig(max_line_chars=100))
    parsed = miner.add("x" * 1_000_000 + " 42")
    assert len(parsed.template) <= 100
    assert all(len(shape) <= 100 for shape in miner._shapes)
