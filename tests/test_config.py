"""The TOML config, its environment overrides and each plugin's own tables (SPEC §7.1)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.sample_plugin import NAME, SamplePlugin
from waimai_bridge.config import CONFIG_ENV, PlatformNotConfigured, load_config
from waimai_bridge.errors import ConfigError
from waimai_bridge.plugins import PluginRegistry

SECRETS = (
    "eleme-SECRET-1",
    "meituan-SECRET-2",
    "pos-SECRET-3",
    "token-SECRET-4",
    "api-SECRET-5-long-enough",
)

SPEC_EXAMPLE = f"""
[bridge]
database_url = "sqlite:///waimai-bridge.db"
public_base_url = "https://bridge.example.com"
broker_url = ""
shards = 8
accept_hold_seconds = 60
api_tokens = ["{SECRETS[4]}"]

[platforms.eleme]
app_key = "wYO4C8ZLzB"
app_secret = "{SECRETS[0]}"
app_id = 58137347
api_base = "https://open-api-sandbox.shop.ele.me/api/v1/"

[platforms.meituan]
app_id = "6123"
app_secret = "{SECRETS[1]}"
price_semantics = "original"

[platforms.own_pos]
secret = "{SECRETS[2]}"

[stores.S001]
name = "People's Square"
eleme = {{ shop_id = "100001", token = "{SECRETS[3]}" }}
meituan = {{ app_poi_code = "S001-mt" }}

[stores.S002]
eleme = {{ shop_id = 100002 }}
"""


@pytest.fixture(scope="module")
def registry() -> PluginRegistry:
    """The installed plugins (the three shipped ones) plus the sample plugin."""
    registry = PluginRegistry.discover(blocked=())
    registry.add(NAME, SamplePlugin())
    return registry


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in (CONFIG_ENV, "WAIMAI_DATABASE_URL", "WAIMAI_BROKER_URL", "WAIMAI_SHARDS"):
        monkeypatch.delenv(variable, raising=False)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "waimai.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str, registry: PluginRegistry) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), registry)
    for secret in SECRETS:
        assert secret not in str(caught.value)
    return caught.value.problems


def test_without_a_file_the_embedded_defaults_apply(registry: PluginRegistry) -> None:
    config = load_config(None, registry)
    assert config.bridge.database_url == "sqlite:///waimai-bridge.db"
    assert config.bridge.broker_url == ""
    assert config.bridge.shards == 8
    assert config.bridge.accept_hold_seconds == 60
    assert config.platforms == {}
    assert config.source is None


def test_the_spec_example_loads(tmp_path: Path, registry: PluginRegistry) -> None:
    config = load_config(write(tmp_path, SPEC_EXAMPLE), registry)
    assert config.bridge.public_base_url == "https://bridge.example.com"
    assert [token.token.get_secret_value() for token in config.bridge.api_tokens] == [SECRETS[4]]
    eleme = config.plugin_config("eleme")
    assert eleme.settings["api_base"] == "https://open-api-sandbox.shop.ele.me/api/v1/"
    assert eleme.store_for("shop_id", 100001) == "S001"
    assert eleme.store_for("shop_id", "100002") == "S002"
    meituan = config.plugin_config("meituan")
    assert meituan.settings["api_base"] == "https://waimaiopen.meituan.com/api/v1/"
    assert meituan.settings["price_semantics"] == "original"
    assert meituan.stores == {"S001": {"app_poi_code": "S001-mt"}}
    assert config.stores["S001"].name == "People's Square"
    shown = repr(config) + repr(eleme) + repr(meituan) + str(config.bridge)
    for secret in SECRETS:
        assert secret not in shown


def test_the_file_can_come_from_the_environment(
    tmp_path: Path, registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CONFIG_ENV, str(write(tmp_path, "[bridge]\nshards = 3\n")))
    assert load_config(None, registry).bridge.shards == 3


def test_the_environment_overrides_the_file(
    tmp_path: Path, registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, '[bridge]\ndatabase_url = "sqlite:///a.db"\nbroker_url = "redis://a"\n')
    monkeypatch.setenv("WAIMAI_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1/test")
    monkeypatch.setenv("WAIMAI_BROKER_URL", "redis://127.0.0.1:6379/0")
    bridge = load_config(path, registry).bridge
    assert bridge.database_url == "postgresql+psycopg://postgres@127.0.0.1/test"
    assert bridge.broker_url == "redis://127.0.0.1:6379/0"


def test_a_bad_environment_value_is_named(
    registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAIMAI_SHARDS", "0")
    with pytest.raises(ConfigError) as caught:
        load_config(None, registry)
    assert caught.value.problems == [
        ("bridge.shards", "Input should be greater than or equal to 1")
    ]


def test_public_base_url_loses_its_trailing_slash(tmp_path: Path, registry: PluginRegistry) -> None:
    path = write(tmp_path, '[bridge]\npublic_base_url = "https://b.example.com/hooks/"\n')
    assert load_config(path, registry).bridge.public_base_url == "https://b.example.com/hooks"


def test_every_problem_is_listed_with_its_key(tmp_path: Path, registry: PluginRegistry) -> None:
    found = problems(
        tmp_path,
        f"""
        colour = "red"
        [bridge]
        shards = "eight"
        shard = 3
        public_base_url = "ftp://x"
        api_tokens = ["{SECRETS[4]}"]

        [platforms.eleme]
        app_key = "k"
        app_id = "not-a-number"
        app_secret = 12345
        region = "{SECRETS[0]}"

        [platforms.meituan]
        app_id = 6123
        app_secret = "{SECRETS[1]}"
        price_semantics = "cheap"

        [platforms.jd]
        app_key = "x"

        [stores.S001]
        eleme = {{ token = "{SECRETS[3]}" }}
        jd = {{ shop = 1 }}
        own_pos = {{ pos_store_code = "P1" }}
        """,
        registry,
    )
    loaded = "loaded: eleme, meituan, own_pos, sample"
    assert found == [
        (
            "colour",
            "unknown table; the tables are [bridge], [platforms.*], [stores.*], [anomalies], "
            "[retention], [authorization]",
        ),
        ("bridge.public_base_url", "must be an http:// or https:// URL without query or fragment"),
        ("bridge.shards", "Input should be a valid integer, unable to parse string as an integer"),
        ("bridge.shard", "unknown key"),
        (
            "platforms.eleme.region",
            "unknown key (known: api_base, app_id, app_key, app_secret, grant, oauth_base, "
            "timeout_seconds)",
        ),
        ("platforms.eleme.app_id", "must match ^[0-9]+$"),
        ("platforms.eleme.app_secret", "must be of type string"),
        ("platforms.meituan.price_semantics", "must be one of 'discounted', 'original'"),
        ("platforms.jd", f"no plugin named 'jd' is installed ({loaded})"),
        ("stores.S001.eleme.shop_id", "missing required key"),
        ("stores.S001.jd", f"no plugin named 'jd' is installed ({loaded})"),
        ("stores.S001.own_pos", "there is no [platforms.own_pos] table"),
    ]


def test_a_missing_required_key_is_named(tmp_path: Path, registry: PluginRegistry) -> None:
    found = problems(tmp_path, "[platforms.meituan]\napp_id = 6123\n", registry)
    assert found == [("platforms.meituan.app_secret", "missing required key")]


def test_a_table_of_the_wrong_shape_is_named(tmp_path: Path, registry: PluginRegistry) -> None:
    found = problems(tmp_path, 'platforms = 3\n[stores]\nS001 = "x"\n', registry)
    assert found == [("platforms", "must be a table"), ("stores.S001", "must be a table")]


def test_a_blocked_plugins_tables_are_skipped(tmp_path: Path) -> None:
    registry = PluginRegistry.discover(blocked={"eleme"})
    config = load_config(
        write(tmp_path, "[platforms.eleme]\nwhatever = 1\n[stores.S1]\neleme = { x = 1 }\n"),
        registry,
    )
    assert "eleme" not in config.platforms
    with pytest.raises(PlatformNotConfigured, match=r"no \[platforms.eleme\] table in "):
        config.plugin_config("eleme")


def test_a_missing_file_is_a_clear_error(tmp_path: Path, registry: PluginRegistry) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.toml", registry)
    assert caught.value.problems == [("--config", f"file {tmp_path / 'nope.toml'} does not exist")]


def test_broken_toml_names_the_line(tmp_path: Path, registry: PluginRegistry) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, "[bridge]\nshards = = 3\n"), registry)
    [(key, problem)] = caught.value.problems
    assert key == "(file)"
    assert problem.startswith("not valid TOML: ")
    assert "line 2" in problem


def test_a_store_id_longer_than_the_database_holds_is_named(
    tmp_path: Path, registry: PluginRegistry
) -> None:
    long = "S" * 65
    found = problems(tmp_path, f'[stores.{long}]\nname = "x"\n', registry)
    assert found == [(f"stores.{long}", "a store id has at most 64 characters")]


def test_a_subscriber_timeout_near_a_messages_time_limit_is_refused(
    tmp_path: Path, registry: PluginRegistry
) -> None:
    path = tmp_path / "bridge.toml"
    path.write_text("[bridge]\nsubscriber_timeout_seconds = 60\n", "utf-8")
    with pytest.raises(ConfigError) as refused:
        load_config(path, registry)
    assert "bridge.subscriber_timeout_seconds" in str(refused.value)


def test_api_tokens_take_scopes(tmp_path: Path, registry: PluginRegistry) -> None:
    path = tmp_path / "bridge.toml"
    path.write_text(
        '[bridge]\napi_tokens = ["every-scope-token-01", '
        '{ token = "reading-only-token-01", scopes = ["read"] }]\n',
        "utf-8",
    )
    full, reading = load_config(path, registry).bridge.api_tokens
    assert full.scopes == {"read", "act"}
    assert reading.scopes == {"read"}
    assert "reading-only-token-01" not in repr(reading)


def test_the_operating_tables_are_checked_like_the_bridge_table(
    tmp_path: Path, registry: PluginRegistry
) -> None:
    found = problems(
        tmp_path,
        """
        [anomalies]
        not_accepted_minutes = 0
        disabled = ["unmapped_sku", "no_such_rule"]

        [retention]
        inbox_days = -1
        keep = true
        """,
        registry,
    )
    assert [key for key, _ in found] == [
        "anomalies.not_accepted_minutes",
        "anomalies.disabled.1",
        "retention.inbox_days",
        "retention.keep",
    ]


def test_unnamed_tokens_are_named_by_their_place(tmp_path: Path, registry: PluginRegistry) -> None:
    path = tmp_path / "named.toml"
    path.write_text(
        f'[bridge]\napi_tokens = ["{SECRETS[4]}", {{ token = "{SECRETS[4]}-2", name = "ops" }}]\n',
        "utf-8",
    )
    config = load_config(path, registry)
    assert [token.name for token in config.bridge.api_tokens] == ["token-1", "ops"]
    assert config.anomalies.not_completed_hours == 48
    assert config.retention.inbox_days == 7
