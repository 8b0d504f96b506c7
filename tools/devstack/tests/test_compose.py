"""The harness reads docker-compose.yml as docker compose does, and the file keeps what production needs."""

from pathlib import Path

import pytest

from ibkr_devstack.compose import (
    ComposeError,
    MissingVariable,
    interpolate,
    load_compose,
    parse_duration,
    read_env_file,
    required_variables,
    start_order,
)
from ibkr_devstack.prod import LOOPBACK_VARIABLES, PORT_VARIABLES, generated_variables
from ibkr_devstack.prodparts import Mount, translate

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "docker-compose.yml"
SERVICES = ["gateway-bridge", "session-keeper", "sync-worker", "compliance", "audit", "registry"]
DATABASE_SERVICES = ["session-keeper", "sync-worker", "compliance", "audit", "registry"]


@pytest.mark.parametrize(("text", "variables", "expected"), [
    ("${A}", {"A": "1"}, "1"),
    ("$A/x", {"A": "1"}, "1/x"),
    ("${A}", {}, ""),
    ("${A:-d}", {"A": ""}, "d"),
    ("${A-d}", {"A": ""}, ""),
    ("${A-d}", {}, "d"),
    ("${A:+yes}", {"A": "1"}, "yes"),
    ("${A:+yes}", {"A": ""}, ""),
    ("${A+yes}", {"A": ""}, "yes"),
    ("$${A}", {"A": "1"}, "${A}"),
    ("x${A:-${B:-deep}}y", {}, "xdeepy"),
    ("${A:-${B:?need B}}", {"B": "b"}, "b"),
    ("${A:?}", {"A": "set"}, "set"),
])
def test_interpolation_follows_compose(text, variables, expected):
    assert interpolate(text, variables) == expected


def test_a_missing_required_variable_names_it_and_says_why():
    with pytest.raises(MissingVariable) as info:
        interpolate("${A:-${B:?the passphrase}}", {})
    assert info.value.name == "B"
    assert "the passphrase" in str(info.value)
    with pytest.raises(MissingVariable):
        interpolate("${A?}", {})
    with pytest.raises(ComposeError):
        interpolate("${A", {})


def test_required_variables_take_the_outer_name_of_a_nested_alias():
    found = required_variables("x: ${A:?first}\ny: ${A:?}\nz: ${K:-${VITE_K:?a key}}\n# ${C:?commented}\n")
    assert list(found) == ["A", "K"]
    assert found["A"].message == "first"
    assert found["K"].aliases == ["VITE_K"] and found["K"].message == "a key"


def test_durations_env_files_and_mounts(tmp_path):
    assert parse_duration("1m30s", 0) == 90
    assert parse_duration("500ms", 0) == 0.5
    assert parse_duration(None, 7) == 7
    with pytest.raises(ComposeError):
        parse_duration("ten seconds", 0)
    env = tmp_path / "settings.env"
    env.write_text("# comment\nexport A=1\nB='two words'\nC=3 # note\n\nD=\"x#y\"\n")
    assert read_env_file(env) == {"A": "1", "B": "two words", "C": "3", "D": "x#y"}
    mounts = [Mount("/etc/ibkr/compliance", Path("/repo/deploy/compliance")), Mount("/data", Path("/run/nats"))]
    assert translate("/etc/ibkr/compliance/rules.yaml", mounts) == "/repo/deploy/compliance/rules.yaml"
    assert translate("/data", mounts) == "/run/nats"
    assert translate("/database", mounts) == "/database"


def test_the_harness_variables_exist_in_compose_with_the_container_defaults():
    text = COMPOSE.read_text()
    for name in (*LOOPBACK_VARIABLES, *PORT_VARIABLES):
        assert f"${{{name}:-" in text, f"docker-compose.yml does not use {name} with a default"
    compose = load_compose(COMPOSE, {name: "x" for name in required_variables(text)})
    bridge = compose.services["gateway-bridge"].environment
    assert bridge["NATS_URL"] == "nats://gateway-bridge:x@nats:4222"
    assert bridge["IBKR_GATEWAY_HOST"] == "cpsim" and bridge["IBKR_HTTP_PORT"] == "8080"


def test_compose_runs_the_jobs_first_and_each_service_as_its_own_nats_user():
    compose = load_compose(COMPOSE, generated_variables(COMPOSE.read_text()))
    services = compose.active({"cpsim"})
    order = start_order(services)
    for service in SERVICES:
        spec = services[service]
        env = spec.environment
        user = env["NATS_URL"].split("//", 1)[1].split(":", 1)[0]
        assert user == service
        assert env["IBKR_NATS_INBOX_PREFIX"] == f"_INBOX_{service}"
        assert env["IBKR_PROVISION_STREAMS"] == "false" and env["IBKR_MIGRATE_ON_START"] == "false"
        assert spec.command == ["python", "-m", f"ibkr_{service.replace('-', '_')}"]
        assert spec.depends_on["provision"] == "service_completed_successfully"
        assert order.index("provision") < order.index(service)
        assert spec.healthcheck is not None and "/readyz" in spec.healthcheck.test[-1]
        if service in DATABASE_SERVICES:
            assert spec.depends_on["migrate"] == "service_completed_successfully"
            assert env["DATABASE_URL"].startswith("postgresql+psycopg://ibkr_app:")
        else:
            assert "DATABASE_URL" not in env
    assert services["migrate"].environment["DATABASE_URL"].startswith("postgresql+psycopg://postgres:")
    assert services["provision"].environment["NATS_URL"].startswith("nats://provision:")
    assert "cpsim" not in compose.active(set())


def test_only_the_registry_gets_the_encryption_key_and_only_it_and_the_bridge_the_gateway():
    compose = load_compose(COMPOSE, generated_variables(COMPOSE.read_text()))
    for service in SERVICES:
        env = compose.services[service].environment
        assert ("IBKR_ENCRYPTION_KEY" in env) == (service == "registry"), service
        assert ("IBKR_GATEWAY_HOST" in env) == (service in ("gateway-bridge", "registry")), service
        assert not any(name.endswith("_PASSWORD") for name in env), service


def test_a_vite_encryption_key_in_dotenv_reaches_the_registry_under_its_name():
    variables = generated_variables(COMPOSE.read_text())
    key = variables.pop("IBKR_ENCRYPTION_KEY")
    compose = load_compose(COMPOSE, {**variables, "VITE_ENCRYPTION_KEY": key})
    assert compose.services["registry"].environment["IBKR_ENCRYPTION_KEY"] == key
    with pytest.raises(MissingVariable) as info:
        load_compose(COMPOSE, variables)
    assert info.value.name == "VITE_ENCRYPTION_KEY" and "32 characters" in str(info.value)


def test_compliance_gets_its_settings_and_its_rules_file():
    variables = generated_variables(COMPOSE.read_text()) | {
        "IBKR_LIVE_ENABLED_ACCOUNTS": "U1234567", "IBKR_COMPLIANCE_ACCOUNT_RESTRICTIONS": "U7654321=trading_blocked"}
    compliance = load_compose(COMPOSE, variables).services["compliance"]
    assert compliance.environment["IBKR_LIVE_ENABLED_ACCOUNTS"] == "U1234567"
    assert compliance.environment["IBKR_COMPLIANCE_ACCOUNT_RESTRICTIONS"] == "U7654321=trading_blocked"
    rules = compliance.environment["IBKR_COMPLIANCE_RULES_FILE"]
    mount = next(v for v in compliance.volumes if rules.startswith(v.target + "/"))
    assert (ROOT / mount.source / rules[len(mount.target) + 1:]).is_file()
    assert compliance.env_files == [("settings.env", False)]


def test_compose_runs_the_nats_version_the_tests_run():
    import re
    import subprocess
    import sys

    version = subprocess.run([str(Path(sys.executable).parent / "nats-server"), "--version"], capture_output=True,
                             text=True, check=True).stdout
    major_minor = re.search(r"v(\d+\.\d+)\.", version)
    assert major_minor, version
    image = load_compose(COMPOSE, generated_variables(COMPOSE.read_text())).services["nats"].image
    assert image == f"nats:{major_minor.group(1)}-alpine", (image, version)


def test_every_image_built_here_runs_as_an_unprivileged_user():
    compose = load_compose(COMPOSE, generated_variables(COMPOSE.read_text()))
    dockerfiles = {spec.build["dockerfile"] for spec in compose.services.values() if spec.build}
    assert len(dockerfiles) == 9, dockerfiles
    for dockerfile in dockerfiles:
        final_stage = (ROOT / dockerfile).read_text().rsplit("\nFROM ", 1)[-1]
        users = [line.split()[1] for line in final_stage.splitlines() if line.startswith("USER ")]
        assert users and users[-1] not in ("root", "0"), dockerfile


def test_authz_runs_as_its_own_nats_user_with_the_harness_key_pair_and_users_file(tmp_path):
    import nkeys
    from ibkr_authz.users import UserFile

    from ibkr_devstack.prodparts import authz_variables, mounts_of, write_users_file

    variables = generated_variables(COMPOSE.read_text()) | authz_variables(tmp_path)
    compose = load_compose(COMPOSE, variables)
    authz = compose.services["authz"]
    env = authz.environment
    assert env["NATS_URL"].startswith("nats://authz:") and env["IBKR_NATS_INBOX_PREFIX"] == "_INBOX_authz"
    kick_password = variables["AUTHZ_KICK_NATS_PASSWORD"]  # the system account user that closes clients
    assert env["IBKR_AUTHZ_KICK_NATS_URL"] == f"nats://authz-kick:{kick_password}@127.0.0.1:{variables['NATS_PORT']}"
    assert compose.services["nats"].environment["AUTHZ_KICK_NATS_PASSWORD"] == kick_password
    assert kick_password != variables["AUTHZ_NATS_PASSWORD"]
    assert authz.depends_on == {"nats": "service_healthy", "registry": "service_healthy"}
    assert authz.healthcheck is not None and "/readyz" in authz.healthcheck.test[-1]
    assert "DATABASE_URL" not in env and "IBKR_ENCRYPTION_KEY" not in env
    seed = env["IBKR_AUTHZ_ISSUER_SEED"]
    public = nkeys.from_seed(seed.encode()).public_key.decode()
    assert env["IBKR_AUTHZ_ISSUER"] == public == compose.services["nats"].environment["AUTHZ_ISSUER"]
    assert seed not in compose.services["nats"].environment.values()  # the server gets the public key only
    assert env["IBKR_USER_ID"] == variables["AUTHZ_PERSON"] == "alice"  # she owns the bootstrap connection
    users_file = write_users_file(variables)
    assert users_file.stat().st_mode & 0o777 == 0o600
    assert translate(env["IBKR_AUTHZ_USERS_FILE"], mounts_of(authz, compose, tmp_path)) == str(users_file)
    users = UserFile(users_file)
    assert users.authenticate("alice", variables["AUTHZ_PERSON_PASSWORD"])
    assert not users.authenticate("alice", variables["AUTHZ_NATS_PASSWORD"])
    assert variables["AUTHZ_PERSON_PASSWORD"] not in users_file.read_text()


def test_docker_compose_mounts_an_empty_users_file_by_default():
    compose = load_compose(COMPOSE, generated_variables(COMPOSE.read_text()))
    authz = compose.services["authz"]
    path = authz.environment["IBKR_AUTHZ_USERS_FILE"]
    mount = next(v for v in authz.volumes if path.startswith(v.target + "/"))
    assert mount.read_only and (ROOT / mount.source / path[len(mount.target) + 1:]).is_file()


def test_the_console_runs_as_its_own_nats_user_and_database_role_with_its_admin_file_in_its_volume(tmp_path):
    from ibkr_devstack.prodparts import mounts_of

    variables = generated_variables(COMPOSE.read_text())
    compose = load_compose(COMPOSE, variables)
    console = compose.services["console"]
    env = console.environment
    assert env["NATS_URL"].startswith("nats://console:") and env["IBKR_NATS_INBOX_PREFIX"] == "_INBOX_console"
    assert env["DATABASE_URL"].startswith("postgresql+psycopg://ibkr_console:")
    assert variables["POSTGRES_CONSOLE_PASSWORD"] in env["DATABASE_URL"]
    assert variables["POSTGRES_APP_PASSWORD"] not in env["DATABASE_URL"] and "IBKR_ENCRYPTION_KEY" not in env
    assert env["IBKR_CONSOLE_SECURE_COOKIES"] == "true" and len(env["IBKR_CONSOLE_SESSION_KEY"]) >= 32
    for name, other in compose.services.items():  # the cookie key and the role's password go to it alone
        if name not in ("console", "migrate"):
            assert variables["IBKR_CONSOLE_SESSION_KEY"] not in other.environment.values(), name
            assert not any(variables["POSTGRES_CONSOLE_PASSWORD"] in v for v in other.environment.values()), name
    assert console.depends_on["migrate"] == "service_completed_successfully"
    assert console.depends_on["registry"] == "service_healthy"
    assert console.healthcheck is not None and "/readyz" in console.healthcheck.test[-1]
    admin_file = translate(env["IBKR_CONSOLE_ADMIN_FILE"], mounts_of(console, compose, tmp_path))
    assert admin_file == str(tmp_path / "volumes" / "console-data" / "console-admin.json")
