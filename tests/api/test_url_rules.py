"""The app's URL rules compile their URL builders when first used (server/app.py, _BuiltOnUse):
none while the app is made, and every rule builds the URL werkzeug's own rule builds."""

from __future__ import annotations

from typing import Any
from unittest import mock

from werkzeug.routing import Map, Rule

from server.app import create_app
from server.config import Settings
from server.store.port import Store


def test_no_builder_is_compiled_while_the_app_is_made(tmp_path: Any, store: Store) -> None:
    with mock.patch.object(Rule, "_compile_builder", autospec=True,
                           side_effect=Rule._compile_builder) as compiled:  # fmt: skip
        app = create_app(Settings(data_dir=tmp_path), store)
    assert compiled.call_count == 0
    app.extensions["kerma.audit"].stop()


def test_every_rule_builds_what_werkzeug_builds(app: Any) -> None:
    ours = app.url_map.bind("kerma.test", url_scheme="https")
    plain = Map([_plain(r) for r in app.url_map.iter_rules()])
    plain_adapter = plain.bind("kerma.test", url_scheme="https")
    rules = list(app.url_map.iter_rules())
    assert len(rules) > 50
    for rule in rules:
        values = {name: f"v{n}" for n, name in enumerate(sorted(rule.arguments))}
        for append in (False, True):  # both builders, twice: compiled, then as compiled
            extra = {"q": "a b"} if append else {}
            for _ in range(2):
                asked = {**values, **extra}
                built = ours.build(rule.endpoint, asked, force_external=True)
                assert built == plain_adapter.build(rule.endpoint, asked, force_external=True)


def _plain(rule: Rule) -> Rule:
    return Rule(rule.rule, endpoint=rule.endpoint, methods=rule.methods, defaults=rule.defaults,
                host=rule.host, subdomain=rule.subdomain)  # fmt: skip
