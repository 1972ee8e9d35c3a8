"""Secrets (issue 15): SecretRefs through named providers, one runtime
snapshot, secrets.reload, the owner states (cold, stale), the shared secret
store encrypted at rest, fail-closed gateway auth. Reference:
reference/secrets.md. The fake upstream records the Authorization header
it receives, so a rotation is observed where it matters."""

import glob
import json
import os
import stat

import pytest

from fakeupstream import FakeUpstream
from harness import Launcher, WsClosed, clawgate_only, free_port
from oahelp import chat, oa_config, post

pytestmark = clawgate_only("SecretRef providers and the encrypted store")


@pytest.fixture
def up():
    u = FakeUpstream().start()
    yield u
    u.stop()


def write_private(path, text):
    """Replace path atomically with a 0600, single-link file."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, text.encode())
    os.close(fd)
    os.rename(tmp, path)


def last_auth(up):
    return up.snapshot()["headers"][-1].get("Authorization")


def ask(gw, up, n_before):
    r = post(gw, "/v1/chat/completions", chat("hi [[reply:ok]]"))
    r.status_text = r.text
    return r


def ok(gw, up):
    r = ask(gw, up, 0)
    assert r.status_code == 200, r.text + gw.stderr()[-3000:]


def secret_config(up, state_dir, api_key, providers=None, extra=None):
    cfg = oa_config(up, extra)
    cfg["models"]["providers"]["fake"]["apiKey"] = api_key
    cfg["secrets"] = {"providers": providers or {
        "fm": {"source": "file",
               "path": os.path.join(state_dir, "keys.json")}}}
    return cfg


def start_with(tmp_root, up, api_key, files=None, providers=None, env=None,
               extra=None):
    lch = Launcher(tmp_root)
    d = lch.prepare()
    for name, text in (files or {}).items():
        write_private(os.path.join(d, name), text)
    cfg = secret_config(up, d, api_key, providers, extra)
    with open(os.path.join(d, "openclaw.json"), "w") as f:
        json.dump(cfg, f)
    gw = lch.start(state_dir=d, env=env)
    return lch, gw, d


def test_file_rotation_needs_reload(tmp_root, up):
    lch, gw, d = start_with(
        tmp_root, up, {"source": "file", "provider": "fm",
                       "id": "/providers/fake"},
        files={"keys.json": json.dumps({"providers": {"fake": "sk-old-1"}})})
    try:
        ok(gw, up)
        assert last_auth(up) == "Bearer sk-old-1"
        write_private(os.path.join(d, "keys.json"),
                      json.dumps({"providers": {"fake": "sk-new-2"}}))
        # Resolved once per activation: the old key is served until reload.
        ok(gw, up)
        assert last_auth(up) == "Bearer sk-old-1"
        c = gw.connect()
        assert c.call("secrets.reload", {}) == {"ok": True,
                                                "warningCount": 0}
        ok(gw, up)
        assert last_auth(up) == "Bearer sk-new-2"
        c.close()
    finally:
        lch.cleanup()


def test_failing_reload_keeps_last_known_good(tmp_root, up):
    lch, gw, d = start_with(
        tmp_root, up, {"source": "file", "provider": "fm",
                       "id": "/providers/fake"},
        files={"keys.json": json.dumps({"providers": {"fake": "sk-lkg"}})})
    try:
        keys = os.path.join(d, "keys.json")
        os.chmod(keys, 0o640)   # the file provider refuses it now
        c = gw.connect()
        assert c.call("secrets.reload", {}) == {"ok": True,
                                                "warningCount": 1}
        ok(gw, up)
        assert last_auth(up) == "Bearer sk-lkg"     # stale, still served
        err = gw.stderr()
        assert "SECRETS_DEGRADED owner=models.providers.fake state=stale" \
            in err
        assert "SECRETS_RELOADER_DEGRADED" in err
        os.chmod(keys, 0o600)
        assert c.call("secrets.reload", {})["warningCount"] == 0
        assert "SECRETS_RELOADER_RECOVERED" in gw.stderr()
        c.close()
    finally:
        lch.cleanup()


def test_cold_store_ref_recovers_after_store_set(tmp_root, up):
    value = "sk-store-Zq81xYv7"
    lch, gw, d = start_with(tmp_root, up,
                            {"source": "store", "provider": "default",
                             "id": "FAKE_API_KEY"})
    try:
        r = ask(gw, up, 0)
        assert r.status_code != 200
        assert "SECRET_SURFACE_UNAVAILABLE" in r.text
        assert up.snapshot()["chat"] == 0    # no fallback credential
        c = gw.connect()
        res = c.call("secrets.store.set", {"name": "FAKE_API_KEY",
                                           "value": value,
                                           "kind": "secret"})
        assert res == {"ok": True, "reloaded": True, "warningCount": 0}
        ok(gw, up)
        assert last_auth(up) == "Bearer " + value
        ents = c.call("secrets.store.list", {})["entries"]
        assert [e["name"] for e in ents] == ["FAKE_API_KEY"]
        assert "value" not in ents[0] and ents[0]["kind"] == "secret"
        c.call("secrets.store.set", {"name": "LOG_LEVEL", "value": "debug",
                                     "kind": "env"})
        ents = c.call("secrets.store.list", {})["entries"]
        assert [e.get("value") for e in ents] == [None, "debug"]
        res = c.call("secrets.store.delete", {"name": "LOG_LEVEL"})
        assert res == {"ok": True, "reloaded": False}
        c.call("secrets.store.set", {"name": "HOSTED_TOKEN", "value": "h-1",
                                     "kind": "secret",
                                     "allowedHosts": ["api.example.com"]})
        ents = {e["name"]: e for e in
                c.call("secrets.store.list", {})["entries"]}
        assert ents["HOSTED_TOKEN"]["allowedHosts"] == ["api.example.com"]
        assert "LOG_LEVEL" not in ents
        for bad in ({"name": "X", "value": "", "kind": "secret"},
                    {"name": "X", "value": "v" * 65537, "kind": "env"},
                    {"name": "X", "value": "__OPENCLAW_REDACTED__",
                     "kind": "env"},
                    {"name": "X", "value": "v", "kind": "secret",
                     "allowedHosts": ["a", "a"]}):
            res = c.request("secrets.store.set", bad)
            assert res["ok"] is False
            assert res["error"]["code"] == "INVALID_REQUEST"
        key = os.path.join(d, "state", "secrets.key")
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
        c.close()
        gw.stop()
        # Neither the database files nor the logs hold the value.
        files = glob.glob(os.path.join(d, "state", "clawgate.sqlite*")) + \
            glob.glob(os.path.join(d, "logs", "*")) + \
            [os.path.join(d, "daemon.stderr"),
             os.path.join(d, "daemon.stdout")]
        assert len(files) >= 3
        for f in files:
            with open(f, "rb") as fh:
                assert value.encode() not in fh.read(), f
    finally:
        lch.cleanup()


def test_degraded_owners_in_status_not_readiness(tmp_root, up):
    """OpenClaw (summary.ts, server readiness): a cold model provider is
    listed in status.degradedSecretOwners with a redacted reason, while
    /readyz stays ready (an isolatable owner does not take the gateway out
    of rotation); the entry goes once the owner resolves."""
    lch, gw, d = start_with(tmp_root, up,
                            {"source": "store", "provider": "default",
                             "id": "FAKE_API_KEY"})
    try:
        c = gw.connect()
        st = c.call("status", {})
        assert st["degradedSecretOwners"] == [{
            "ownerKind": "provider", "ownerId": "fake",
            "state": "unavailable", "degradationState": "cold",
            "paths": ["models.providers.fake.apiKey"],
            "reason": "secret reference was not found"}]
        r = gw.http("GET", "/readyz")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["ready"] is True and body["failing"] == []
        assert "FAKE_API_KEY" not in json.dumps(st)
        c.call("secrets.store.set", {"name": "FAKE_API_KEY",
                                     "value": "sk-deg-1", "kind": "secret"})
        assert c.call("status", {})["degradedSecretOwners"] == []
        ok(gw, up)
        # config.set names the degraded owners of the config it wrote
        # (state cold|stale, as OpenClaw's write result), only when any
        got = c.call("config.get", {})
        new = json.loads(json.dumps(got["parsed"]))
        new["models"]["providers"]["Other"] = dict(
            new["models"]["providers"]["fake"],
            apiKey={"source": "store", "provider": "default",
                    "id": "OTHER_API_KEY"})
        res = c.call("config.set", {"raw": json.dumps(new),
                                    "baseHash": got["hash"]})
        assert res["degradedSecretOwners"] == [{
            "ownerKind": "provider", "ownerId": "other", "state": "cold",
            "paths": ["models.providers.Other.apiKey"],
            "reason": "secret reference was not found"}]
        got = c.call("config.get", {})
        del new["models"]["providers"]["Other"]
        res = c.call("config.set", {"raw": json.dumps(new),
                                    "baseHash": got["hash"]})
        assert res["ok"] is True and "degradedSecretOwners" not in res
    finally:
        lch.cleanup()


def test_store_ref_ignores_allowed_hosts(tmp_root, up):
    """allowedHosts binds an entry to hosts for OpenClaw's secret egress
    proxy (sentinel substitution), which clawgate does not have; a
    SecretRef to the entry resolves whatever its hosts, as OpenClaw's
    readSecretStoreValue (it reads value and kind only). So a config that
    works on OpenClaw works here: the provider (127.0.0.1, not in the
    list) gets the key."""
    lch = Launcher(tmp_root)
    d = lch.prepare()
    rc, out, err = lch.run(["secrets", "store", "set", "FAKE_API_KEY",
                            "--allow-host", "api.example.com"],
                           state_dir=d, input=b"sk-hosts-Zq81\n")
    assert rc == 0, err
    cfg = secret_config(up, d, {"source": "store", "provider": "default",
                                "id": "FAKE_API_KEY"})
    with open(os.path.join(d, "openclaw.json"), "w") as f:
        json.dump(cfg, f)
    try:
        gw = lch.start(state_dir=d)
        ok(gw, up)
        assert last_auth(up) == "Bearer sk-hosts-Zq81"
        ents = gw.connect().call("secrets.store.list", {})["entries"]
        assert ents[0]["allowedHosts"] == ["api.example.com"]
    finally:
        lch.cleanup()


def test_exec_provider_one_call_per_activation(tmp_root, up):
    lch = Launcher(tmp_root)
    d = lch.prepare()
    calls = os.path.join(d, "calls.log")
    script = os.path.join(d, "resolver.py")
    with open(script, "w") as f:
        f.write("#!/usr/bin/env python3\n"
                "import json, sys\n"
                "req = json.load(sys.stdin)\n"
                "open(%r, 'a').write(json.dumps(req) + '\\n')\n"
                "vals = {i: 'sk-exec-' + i.replace('/', '-')"
                " for i in req['ids'] if i != 'vault/missing'}\n"
                "print(json.dumps({'protocolVersion': 1, 'values': vals,"
                " 'errors': {'vault/missing': {'code': 'NOT_FOUND'}}}))\n"
                % calls)
    os.chmod(script, 0o700)
    prov = {"vault": {"source": "exec", "command": script,
                      "passEnv": ["PATH"]}}
    cfg = secret_config(up, d, {"source": "exec", "provider": "vault",
                                "id": "vault/fake"}, prov)
    cfg["models"]["providers"]["fake"]["headers"] = {
        "X-Org-Key": {"source": "exec", "provider": "vault",
                      "id": "vault/hdr"}}
    cfg["models"]["providers"]["other"] = dict(
        cfg["models"]["providers"]["fake"],
        apiKey={"source": "exec", "provider": "vault", "id": "vault/other"})
    cfg["models"]["providers"]["gone"] = dict(
        cfg["models"]["providers"]["fake"],
        apiKey={"source": "exec", "provider": "vault",
                "id": "vault/missing"})
    with open(os.path.join(d, "openclaw.json"), "w") as f:
        json.dump(cfg, f)
    try:
        gw = lch.start(state_dir=d)
        with open(calls) as f:
            reqs = [json.loads(x) for x in f]
        assert len(reqs) == 1
        assert reqs[0]["protocolVersion"] == 1
        assert reqs[0]["provider"] == "vault"
        assert sorted(reqs[0]["ids"]) == ["vault/fake", "vault/hdr",
                                          "vault/missing", "vault/other"]
        ok(gw, up)
        assert last_auth(up) == "Bearer sk-exec-vault-fake"
        assert up.snapshot()["headers"][-1]["X-Org-Key"] == \
            "sk-exec-vault-hdr"
        with open(calls) as f:
            assert len(f.readlines()) == 1      # nothing per request
        err = gw.stderr()
        assert "SECRETS_OWNER_UNAVAILABLE owner=models.providers.gone" in err
        assert "SECRETS_PROVIDER_DEGRADED provider=vault" in err
        assert "vault/missing" not in err       # never a ref id
        assert "sk-exec" not in err             # never a value
    finally:
        lch.cleanup()


@pytest.mark.parametrize("mode,why", [
    (0o640, "file must be private"),
    (None, "No such file or directory"),
])
def test_unresolvable_gateway_token_refuses_start(launcher, mode, why):
    d = launcher.prepare()
    path = os.path.join(d, "gw.txt")
    if mode is not None:
        write_private(path, "tok-123456\n")
        os.chmod(path, mode)
    cfg = {"gateway": {"mode": "local", "auth": {"token": {
        "source": "file", "provider": "gwfile", "id": "value"}}},
        "secrets": {"providers": {"gwfile": {
            "source": "file", "path": path, "mode": "singleValue"}}}}
    with open(os.path.join(d, "openclaw.json"), "w") as f:
        json.dump(cfg, f)
    rc, out, err = launcher.run(["gateway", "run", "--port", "1"],
                                state_dir=d)
    assert rc == 78, err
    assert "gateway.auth.token: required secret is unavailable: provider " \
        "\"gwfile\" (source file): " + why in err


def test_gateway_token_from_file_provider(launcher):
    d = launcher.prepare()
    path = os.path.join(d, "gw.txt")
    write_private(path, "tok-from-file\n")
    cfg = {"gateway": {"mode": "local", "auth": {"token": {
        "source": "file", "provider": "gwfile", "id": "value"}}},
        "secrets": {"providers": {"gwfile": {
            "source": "file", "path": path, "mode": "singleValue"}}}}
    with open(os.path.join(d, "openclaw.json"), "w") as f:
        json.dump(cfg, f)
    port = free_port()
    gw = launcher.start(state_dir=d, token="tok-from-file", port=port,
                        default_args=False, args=["--port", str(port)])
    c = gw.connect()
    assert c.hello["type"] == "hello-ok"
    c.close()
    assert "SECRETS_GATEWAY_AUTH_SURFACE path=gateway.auth.token active" \
        in gw.stderr()
    assert "tok-from-file" not in gw.stderr()


@pytest.mark.parametrize("ref,msg", [
    ({"source": "file", "provider": "nope", "id": "/a"},
     "provider \"nope\" is not configured"),
    ({"source": "exec", "provider": "fm", "id": "a"},
     "provider \"fm\" has source \"file\", not \"exec\""),
    ({"source": "file", "provider": "fm", "id": "relative"},
     "invalid file SecretRef id"),
    ({"source": "env", "id": "lower_case"}, "invalid env SecretRef id"),
    ({"source": "store", "provider": "Bad!", "id": "X"},
     "invalid SecretRef provider alias"),
])
def test_invalid_refs_fail_closed(launcher, ref, msg):
    d = launcher.prepare()
    cfg = {"gateway": {"mode": "local"},
           "models": {"providers": {"p": {"baseUrl": "http://127.0.0.1:9",
                                          "apiKey": ref, "models": []}}},
           "secrets": {"providers": {"fm": {
               "source": "file", "path": os.path.join(d, "k.json")}}}}
    with open(os.path.join(d, "openclaw.json"), "w") as f:
        json.dump(cfg, f)
    rc, out, err = launcher.run(["gateway", "run", "--port", "1",
                                 "--allow-unconfigured"], state_dir=d)
    assert rc == 78
    assert "models.providers.p.apiKey: " + msg in err
    # the offline validator sees the same (without resolving anything)
    rc, out, err = launcher.run(["config", "validate"], state_dir=d)
    assert rc != 0
    assert "models.providers.p.apiKey: " + msg in out + err


# ---- the store CLI ----------------------------------------------------------

def test_store_cli_exit_codes(launcher):
    d = launcher.prepare()

    def run(args, input=None):
        return launcher.run(["secrets", "store"] + args, state_dir=d,
                            input=input)

    rc, out, err = run(["set", "OPENAI_API_KEY", "--value", "sk-x"])
    assert rc == 2 and "refusing --value" in err
    rc, out, err = run(["set", "OPENAI_API_KEY"], input=b"sk-cli-secret\n")
    assert rc == 0, err
    assert "sk-cli-secret" not in out + err     # never echoed
    assert run(["set", "LOG_LEVEL", "--value", "debug"])[0] == 0
    assert run(["get", "LOG_LEVEL"])[:2] == (0, "LOG_LEVEL=debug\n")
    rc, out, err = run(["get", "OPENAI_API_KEY"])
    assert rc == 2 and out == "" and "cannot be read back" in err
    assert run(["get", "NOPE"])[0] == 3
    assert run(["rm", "NOPE"])[0] == 3
    assert run(["set", "EMPTY_SECRET"], input=b"\n")[0] == 2
    assert run(["set", "BIG", "--kind", "env"],
               input=b"x" * 65537)[0] == 2
    assert run(["set", "PH_TOKEN"], input=b"__OPENCLAW_REDACTED__")[0] == 2
    assert run(["set", "lower"], input=b"v")[0] == 2
    assert run(["set", "X_TOKEN", "--scope", "me"], input=b"v")[0] == 2
    vf = os.path.join(d, "v.txt")
    with open(vf, "w") as f:
        f.write("sk-from-file\n")
    assert run(["set", "FILE_TOKEN", "--value-file", vf])[0] == 0
    rc, out, err = run(["list", "--json"])
    ents = json.loads(out)["entries"]
    assert [(e["name"], e["kind"], e.get("value")) for e in ents] == [
        ("FILE_TOKEN", "secret", None), ("LOG_LEVEL", "env", "debug"),
        ("OPENAI_API_KEY", "secret", None)]
    assert run(["rm", "LOG_LEVEL"])[0] == 0
    assert run(["get", "LOG_LEVEL"])[0] == 3
    # the database and its key: no plaintext, and a wrong key is an error
    for f in glob.glob(os.path.join(d, "state", "clawgate.sqlite*")):
        with open(f, "rb") as fh:
            data = fh.read()
        assert b"sk-cli-secret" not in data and b"sk-from-file" not in data
    key = os.path.join(d, "state", "secrets.key")
    with open(key, "w") as f:
        f.write("00" * 32 + "\n")
    rc, out, err = run(["list"])
    assert rc == 0                          # secret entries stay sealed
    assert run(["set", "ENV_X", "--value", "a"])[0] == 0
    with open(key, "w") as f:
        f.write("11" * 32 + "\n")
    rc, out, err = run(["get", "ENV_X"])
    assert rc == 1 and "wrong secret store key or tampered data" in err
    os.unlink(key)
    rc, out, err = run(["get", "ENV_X"])
    assert rc == 1 and "secrets.key is missing" in err


def test_store_import(launcher):
    import sqlite3
    d = launcher.prepare()
    oc = os.path.join(d, "openclaw.sqlite")
    db = sqlite3.connect(oc)
    db.execute("CREATE TABLE secret_store_entries (scope_kind TEXT, "
               "scope_id TEXT, name TEXT, value TEXT, kind TEXT, "
               "created_at_ms INTEGER, updated_at_ms INTEGER, updated_by "
               "TEXT, deleted_at_ms INTEGER, allowed_hosts TEXT)")
    rows = [("team", "", "OC_API_KEY", "sk-oc-1", "secret", None),
            ("team", "", "OC_MODE", "fast", "env", None),
            ("team", "", "OC_GONE", "x", "env", 5)]
    for r in rows:
        db.execute("INSERT INTO secret_store_entries VALUES "
                   "(?,?,?,?,?,0,0,NULL,?,NULL)", r)
    db.commit()
    db.close()
    rc, out, err = launcher.run(["secrets", "store", "import",
                                 "--from-openclaw", oc], state_dir=d)
    assert rc == 0, err
    assert "Imported 2 entries." in out and "sk-oc-1" not in out
    rc, out, err = launcher.run(["secrets", "store", "get", "OC_MODE"],
                                state_dir=d)
    assert out == "OC_MODE=fast\n"
    env = os.path.join(d, "x.env")
    with open(env, "w") as f:
        f.write('# c\nexport A_TOKEN="multi\nline"\nB=plain # note\n'
                "C='q #x'\n")
    rc, out, err = launcher.run(["secrets", "store", "import", "--from",
                                 env], state_dir=d)
    assert rc == 0, err
    for name, val in (("B", "plain"), ("C", "q #x")):
        rc, out, err = launcher.run(["secrets", "store", "get", name],
                                    state_dir=d)
        assert out == "%s=%s\n" % (name, val)
    rc, out, err = launcher.run(["secrets", "store", "list", "--plain"],
                                state_dir=d)
    assert out.split() == ["A_TOKEN", "B", "C", "OC_API_KEY", "OC_MODE"]


def test_cli_reload(tmp_root, up):
    lch, gw, d = start_with(
        tmp_root, up, {"source": "file", "provider": "fm",
                       "id": "/providers/fake"},
        files={"keys.json": json.dumps({"providers": {"fake": "sk-c1"}})})
    try:
        write_private(os.path.join(d, "keys.json"),
                      json.dumps({"providers": {"fake": "sk-c2"}}))
        rc, out, err = lch.run(["secrets", "reload", "--url", gw.url,
                                "--token", "T", "--json"], state_dir=d)
        assert rc == 0, err
        assert json.loads(out) == {"ok": True, "warningCount": 0}
        ok(gw, up)
        assert last_auth(up) == "Bearer sk-c2"
    finally:
        lch.cleanup()


# ---- audit -> apply -> clean audit -------------------------------------------

def test_audit_apply_clean(tmp_root, up):
    import hashlib
    import sqlite3
    import time
    value = "sk-plain-Qm4tW9"
    lch, gw, d = start_with(tmp_root, up, value)
    try:
        cfg_path = os.path.join(d, "openclaw.json")
        with open(os.path.join(d, ".env"), "w") as f:
            f.write("OPENAI_API_KEY=%s\nLOG_FORMAT=json\n" % value)
        ok(gw, up)
        assert last_auth(up) == "Bearer " + value

        def cli(args, input=None):
            return lch.run(["secrets"] + args, state_dir=d, input=input)

        rc, out, err = cli(["audit", "--check", "--json"])
        assert rc == 1, err
        rep = json.loads(out)
        assert rep["status"] == "findings"
        assert rep["summary"]["plaintextCount"] == 2
        assert {(f["code"], f["jsonPath"]) for f in rep["findings"]} == {
            ("PLAINTEXT_FOUND", "models.providers.fake.apiKey"),
            ("PLAINTEXT_FOUND", "OPENAI_API_KEY")}
        assert value not in out                   # paths, never values
        assert cli(["audit"])[0] == 0             # no --check: exit 0

        target = {"type": "models.providers.apiKey",
                  "path": "models.providers.fake.apiKey",
                  "pathSegments": ["models", "providers", "fake", "apiKey"],
                  "providerId": "fake",
                  "ref": {"source": "store", "provider": "default",
                          "id": "OPENAI_API_KEY"}}
        plan_path = os.path.join(d, "plan.json")

        def plan(*targets):
            with open(plan_path, "w") as f:
                json.dump({"version": 1, "protocolVersion": 1,
                           "targets": list(targets)}, f)

        def digest():
            with open(cfg_path, "rb") as f:
                return hashlib.sha256(f.read()).hexdigest()

        before = digest()
        # invalid plans change nothing
        bad = [dict(target, path="models.providers.fake.baseUrl",
                    pathSegments=None),
               dict(target, path="models.providers.__proto__.apiKey",
                    pathSegments=None, providerId="__proto__"),
               dict(target, providerId="other"),
               dict(target, type="nope.type"),
               dict(target, ref={"source": "store", "id": "bad-id"})]
        for t in bad:
            t = {k: v for k, v in t.items() if v is not None}
            plan(t)
            rc, out, err = cli(["apply", "--from", plan_path])
            assert rc == 1 and "Invalid plan" in err, (t, err)
            assert digest() == before
        # a valid plan whose ref does not resolve yet fails the preflight
        plan(target)
        rc, out, err = cli(["apply", "--from", plan_path])
        assert rc == 1 and "does not resolve" in err
        assert digest() == before
        assert cli(["store", "set", "OPENAI_API_KEY"],
                   input=value.encode())[0] == 0
        rc, out, err = cli(["audit", "--json"])
        rep = json.loads(out)
        assert rep["summary"]["storeResidueCount"] == 1
        assert [f["jsonPath"] for f in rep["findings"]
                if f["code"] == "STORE_PLAINTEXT_RESIDUE"] == [
            "models.providers.fake.apiKey"]
        rc, out, err = cli(["apply", "--from", plan_path, "--dry-run"])
        assert rc == 0 and digest() == before
        rc, out, err = cli(["apply", "--from", plan_path])
        assert rc == 0, err
        assert digest() != before
        # the running gateway reloads the new version and uses the ref
        dbp = os.path.join(d, "state", "clawgate.sqlite")
        deadline = time.monotonic() + 20
        while True:
            db = sqlite3.connect(dbp)
            n = db.execute("SELECT count(*) FROM config_snapshots WHERE "
                           "source = 'file'").fetchone()[0]
            db.close()
            if n:
                break
            assert time.monotonic() < deadline, "config not reloaded"
            time.sleep(0.05)
        ok(gw, up)
        assert last_auth(up) == "Bearer " + value
        rc, out, err = cli(["audit", "--check"])
        assert rc == 0, out + err
        assert out.startswith("Secrets audit: clean")
        with open(os.path.join(d, ".env")) as f:
            assert f.read() == "LOG_FORMAT=json\n"
        # earlier stored versions now hold the ref, not a value
        db = sqlite3.connect(os.path.join(d, "state", "clawgate.sqlite"))
        rows = list(db.execute("SELECT id, source, outcome, text FROM "
                               "config_snapshots"))
        texts = [json.loads(t) for (_, _, _, t) in rows if t]
        db.close()
        assert len(texts) >= 2, [r[:3] for r in rows]
        for t in texts:
            assert t["models"]["providers"]["fake"]["apiKey"] == \
                target["ref"]
        gw.stop()
        for f in glob.glob(os.path.join(d, "state", "clawgate.sqlite*")):
            with open(f, "rb") as fh:
                assert value.encode() not in fh.read(), f
    finally:
        lch.cleanup()


def test_audit_legacy_residue(launcher):
    """LEGACY_RESIDUE as OpenClaw's audit: retired auth sources by name
    (auth-profiles.json, auth.json warn; auth-state.json info) in every
    agent directory, <state>/credentials/oauth.json, and their migration
    archives; never read. REF_SHADOWED stays 0: clawgate keeps no
    auth-profile credentials that could take precedence over a config
    ref."""
    d = launcher.prepare({"agents": {"list": [
        {"id": "ops", "agentDir": "AGENTDIR"}]}})
    ops = os.path.join(d, "opsdir")
    with open(os.path.join(d, "openclaw.json")) as f:
        text = f.read().replace("AGENTDIR", ops)
    with open(os.path.join(d, "openclaw.json"), "w") as f:
        f.write(text)

    def run():
        rc, out, err = launcher.run(["secrets", "audit", "--check",
                                     "--json"], state_dir=d)
        return rc, json.loads(out)

    rc, rep = run()
    assert (rc, rep["status"]) == (0, "clean"), rep
    main = os.path.join(d, "agents", "main", "agent")
    other = os.path.join(d, "agents", "work", "agent")
    creds = os.path.join(d, "credentials")
    for x in (main, other, ops, creds):
        os.makedirs(x, exist_ok=True)
    files = {os.path.join(main, "auth-profiles.json"): "warn",
             os.path.join(main, "auth-state.json"): "info",
             os.path.join(creds, "oauth.json"): "warn",
             os.path.join(other, "auth.json"): "warn",
             os.path.join(ops, "auth-profiles.json"): "warn",
             os.path.join(main, "auth-profiles.json.migrated-2026"): "warn",
             os.path.join(ops, "auth.json.sqlite-import.1.bak"): "warn"}
    for path in files:
        with open(path, "w") as f:
            f.write('{"profiles": {"x": {"key": "sk-legacy-value"}}}')
    # not residue: an unrelated file, an import without .bak
    for name in ("notes.json", "auth.json.sqlite-import.1"):
        with open(os.path.join(ops, name), "w") as f:
            f.write("{}")
    rc, rep = run()
    assert rc == 1 and rep["status"] == "findings", rep
    got = {f["file"]: f for f in rep["findings"]}
    assert {p: f["severity"] for p, f in got.items()} == files
    for f in rep["findings"]:
        assert f["code"] == "LEGACY_RESIDUE" and f["jsonPath"] == "<root>"
    assert "openclaw doctor --fix" in \
        got[os.path.join(creds, "oauth.json")]["message"]
    assert "legacy-oauth" in got[os.path.join(creds, "oauth.json")]["message"]
    assert "Archived auth source auth-profiles" in got[os.path.join(
        main, "auth-profiles.json.migrated-2026")]["message"]
    assert rep["summary"]["legacyResidueCount"] == len(files)
    assert rep["summary"]["shadowedRefCount"] == 0
    assert "sk-legacy-value" not in json.dumps(rep)
    rc, out, err = launcher.run(["secrets", "audit"], state_dir=d)
    assert rc == 0, err


def test_apply_refuses_exec_without_consent(launcher):
    d = launcher.prepare(config={"gateway": {"mode": "local"}})
    plan_path = os.path.join(d, "plan.json")
    with open(plan_path, "w") as f:
        json.dump({"version": 1, "protocolVersion": 1,
                   "providerUpserts": {"vault": {
                       "source": "exec", "command": "/bin/true"}},
                   "targets": [{"type": "gateway.auth.token",
                                "path": "gateway.auth.token",
                                "ref": {"source": "exec",
                                        "provider": "vault",
                                        "id": "gw/token"}}]}, f)
    rc, out, err = launcher.run(["secrets", "apply", "--from", plan_path],
                                state_dir=d)
    assert rc == 1 and "--allow-exec" in err
    # dry run skips exec checks by default
    rc, out, err = launcher.run(["secrets", "apply", "--from", plan_path,
                                 "--dry-run"], state_dir=d)
    assert rc == 0, err
    with open(os.path.join(d, "openclaw.json")) as f:
        assert json.load(f) == {"gateway": {"mode": "local"}}


def test_reload_fails_closed_on_gateway_auth(launcher):
    d = launcher.prepare()
    path = os.path.join(d, "gw.txt")
    write_private(path, "tok-first\n")
    cfg = {"gateway": {"mode": "local", "auth": {"token": {
        "source": "file", "provider": "gwfile", "id": "value"}}},
        "secrets": {"providers": {"gwfile": {
            "source": "file", "path": path, "mode": "singleValue"}}}}
    with open(os.path.join(d, "openclaw.json"), "w") as f:
        json.dump(cfg, f)
    port = free_port()
    gw = launcher.start(state_dir=d, token="tok-first", port=port,
                        default_args=False, args=["--port", str(port)])
    c = gw.connect()
    os.chmod(path, 0o644)
    res = c.request("secrets.reload", {})
    assert res["ok"] is False
    assert res["error"]["code"] == "UNAVAILABLE"
    assert res["error"]["message"] == "secrets.reload failed"
    c.close()
    # the active snapshot stays: the first token still opens a session
    c = gw.connect()
    # rotation: a new token is live after a good reload
    write_private(path, "tok-second\n")
    try:
        res = c.request("secrets.reload", {})
        assert res["ok"] is True
        c.recv_json(5)      # then closed: it used the old token
        raise AssertionError("old-token connection not closed")
    except WsClosed as e:
        assert "4001" in str(e)
    c.close()
    gw.token = "tok-second"
    c = gw.connect()
    c.close()
    gw.token = "tok-first"
    res = gw.handshake(gw.ws())
    assert res["ok"] is False


def test_secrets_resolve(tmp_root, up):
    lch, gw, d = start_with(
        tmp_root, up, {"source": "file", "provider": "fm",
                       "id": "/providers/fake"},
        files={"keys.json": json.dumps({"providers": {"fake": "sk-r1"}})})
    try:
        c = gw.connect()
        res = c.call("secrets.resolve", {
            "commandName": "models status",
            "targetIds": ["models.providers.*.apiKey"]})
        assert res == {"ok": True, "assignments": [{
            "path": "models.providers.fake.apiKey",
            "pathSegments": ["models", "providers", "fake", "apiKey"],
            "value": "sk-r1"}], "diagnostics": [], "inactiveRefPaths": []}
        res = c.request("secrets.resolve", {"commandName": "x",
                                            "targetIds": ["no.such.id"]})
        assert res["ok"] is False
        assert res["error"]["code"] == "INVALID_REQUEST"
        res = c.request("secrets.store.set", {"name": "bad name",
                                              "value": "v", "kind": "env"})
        assert res["error"]["code"] == "INVALID_REQUEST"
        res = c.request("secrets.store.delete", {"name": "NOPE"})
        assert res["error"]["code"] == "INVALID_REQUEST"
        c.close()
        # admin scope only
        c = gw.connect(scopes=["operator.read", "operator.write"])
        res = c.request("secrets.store.list", {})
        assert res["ok"] is False
        c.close()
    finally:
        lch.cleanup()


def test_openclaw_cli_secrets_reload_rotation(tmp_root, up):
    """The real `openclaw secrets reload` (peer CLI) rotates a key."""
    import test_peer_cli as peer
    if not peer._OK:
        pytest.skip(peer._WHY)
    lch, gw, d = start_with(
        tmp_root, up, {"source": "file", "provider": "fm",
                       "id": "/providers/fake"},
        files={"keys.json": json.dumps({"providers": {"fake": "sk-oc-1"}})})
    try:
        ok(gw, up)
        assert last_auth(up) == "Bearer sk-oc-1"
        write_private(os.path.join(d, "keys.json"),
                      json.dumps({"providers": {"fake": "sk-oc-2"}}))
        ok(gw, up)
        assert last_auth(up) == "Bearer sk-oc-1"
        rc, out, err = peer.oc("secrets", "reload", "--url", gw.url,
                               "--token", "T", "--json")
        assert rc == 0, out + err
        assert json.loads(out) == {"ok": True, "warningCount": 0}
        ok(gw, up)
        assert last_auth(up) == "Bearer sk-oc-2"
    finally:
        lch.cleanup()


def test_rotation_under_load_has_no_failed_request(tmp_root, up):
    """Requests keep flowing while the key rotates: none fails, each one
    carries the old or the new key, and the new one once reloaded."""
    import threading
    lch, gw, d = start_with(
        tmp_root, up, {"source": "file", "provider": "fm",
                       "id": "/providers/fake"},
        files={"keys.json": json.dumps({"providers": {"fake": "sk-a"}})})
    try:
        stop = threading.Event()
        codes = []

        def load():
            while not stop.is_set():
                codes.append(ask(gw, up, 0).status_code)

        th = [threading.Thread(target=load) for _ in range(2)]
        for t in th:
            t.start()
        c = gw.connect()
        for k in range(5):
            write_private(os.path.join(d, "keys.json"), json.dumps(
                {"providers": {"fake": "sk-r%d" % k}}))
            assert c.call("secrets.reload", {})["warningCount"] == 0
        c.close()
        stop.set()
        for t in th:
            t.join(30)
        assert codes and set(codes) == {200}, codes
        seen = {h.get("Authorization") for h in up.snapshot()["headers"]}
        assert seen <= {"Bearer sk-a"} | {"Bearer sk-r%d" % k
                                          for k in range(5)}
        ok(gw, up)
        assert last_auth(up) == "Bearer sk-r4"
    finally:
        lch.cleanup()


def test_config_set_preflight_resolves_refs(tmp_root, up):
    """config.set runs the activation as a preflight: a ref that cannot
    resolve for gateway auth is refused and the file is unchanged; a good
    one is live once written."""
    lch, gw, d = start_with(
        tmp_root, up, {"source": "file", "provider": "fm",
                       "id": "/providers/fake"},
        files={"keys.json": json.dumps({"providers": {"fake": "sk-p1"},
                                        "other": "sk-p2"})})
    try:
        c = gw.connect()
        got = c.call("config.get", {})
        cfg = got["parsed"]
        with open(os.path.join(d, "openclaw.json"), "rb") as f:
            before = f.read()
        bad = json.loads(json.dumps(cfg))
        bad["models"]["providers"]["fake"]["apiKey"] = {
            "source": "file", "provider": "nope", "id": "/x"}
        res = c.request("config.set", {"raw": json.dumps(bad),
                                       "baseHash": got["hash"]})
        assert res["ok"] is False
        assert "models.providers.fake.apiKey" in res["error"]["message"]
        assert "provider \"nope\" is not configured" in \
            res["error"]["message"]
        with open(os.path.join(d, "openclaw.json"), "rb") as f:
            assert f.read() == before
        good = json.loads(json.dumps(cfg))
        good["models"]["providers"]["fake"]["apiKey"] = {
            "source": "file", "provider": "fm", "id": "/other"}
        res = c.call("config.set", {"raw": json.dumps(good),
                                    "baseHash": got["hash"]})
        assert res["ok"] is True
        c.close()
        ok(gw, up)
        assert last_auth(up) == "Bearer sk-p2"
    finally:
        lch.cleanup()


def test_config_set_runs_providers_once(tmp_root, up):
    """config.set's preflight resolves the refs once; the reload after the
    write reuses that resolution (same bytes), so an exec provider runs
    once per config.set, not twice; the new config is live."""
    lch = Launcher(tmp_root)
    d = lch.prepare()
    calls = os.path.join(d, "calls.log")
    script = os.path.join(d, "resolver.py")
    with open(script, "w") as f:
        f.write("#!/usr/bin/env python3\n"
                "import json, sys\n"
                "req = json.load(sys.stdin)\n"
                "open(%r, 'a').write(json.dumps(req) + '\\n')\n"
                "print(json.dumps({'protocolVersion': 1, 'values':"
                " {i: 'sk-once-' + i for i in req['ids']}}))\n" % calls)
    os.chmod(script, 0o700)
    prov = {"vault": {"source": "exec", "command": script,
                      "passEnv": ["PATH"]}}
    cfg = secret_config(up, d, {"source": "exec", "provider": "vault",
                                "id": "a"}, prov)
    with open(os.path.join(d, "openclaw.json"), "w") as f:
        json.dump(cfg, f)

    def ncalls():
        with open(calls) as f:
            return len(f.readlines())
    try:
        gw = lch.start(state_dir=d)
        assert ncalls() == 1
        c = gw.connect()
        got = c.call("config.get", {})
        new = json.loads(json.dumps(got["parsed"]))
        new["models"]["providers"]["fake"]["apiKey"] = {
            "source": "exec", "provider": "vault", "id": "b"}
        res = c.call("config.set", {"raw": json.dumps(new),
                                    "baseHash": got["hash"]})
        assert res["ok"] is True
        assert ncalls() == 2, open(calls).read()    # preflight only
        ok(gw, up)
        assert last_auth(up) == "Bearer sk-once-b"
        # an explicit secrets.reload still runs the provider again
        assert c.call("secrets.reload", {})["ok"] is True
        assert ncalls() == 3
        c.close()
    finally:
        lch.cleanup()


def run_tty(argv, env, cwd, answers, timeout=30):
    """Run argv on a pseudo-terminal; answer each "[...] " prompt in turn.
    Returns (rc, output)."""
    import select
    import subprocess
    import time
    m, s = os.openpty()
    p = subprocess.Popen(argv, stdin=s, stdout=s, stderr=s, env=env,
                         cwd=cwd, close_fds=True)
    os.close(s)
    out, answered = b"", 0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([m], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(m, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            if out.endswith(b"] ") and out.count(b"] ") > answered:
                os.write(m, answers[answered].encode() + b"\n")
                answered += 1
            if p.poll() is not None and not r:
                break
        rc = p.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(m)
    return rc, out.decode("utf-8", "replace")


def test_configure_moves_plaintext_to_the_store(launcher):
    from harness import BIN_ARGV
    value = "sk-conf-Hh27"
    d = launcher.prepare(config={
        "gateway": {"mode": "local", "auth": {"token": "gw-tok-123456"}},
        "models": {"providers": {"fake": {"baseUrl": "http://127.0.0.1:9",
                                          "apiKey": value}}}})
    env = launcher.env_for(d)
    rc, out, err = launcher.run(["secrets", "configure"], state_dir=d)
    assert rc == 1 and "requires an interactive TTY" in err
    plan_path = os.path.join(d, "plan.json")
    rc, out = run_tty(list(BIN_ARGV) + ["secrets", "configure", "--plan-out",
                                        plan_path], env, d, ["n", "", "y"])
    assert rc == 0, out
    assert "Move gateway.auth.token to the secret store as " \
        "OPENCLAW_GATEWAY_TOKEN? [Y/n/NAME]" in out
    assert "as FAKE_API_KEY? [Y/n/NAME]" in out
    assert value not in out
    with open(plan_path) as f:
        plan = json.load(f)
    assert [t["path"] for t in plan["targets"]] == [
        "models.providers.fake.apiKey"]
    with open(os.path.join(d, "openclaw.json")) as f:
        cfg = json.load(f)
    assert cfg["models"]["providers"]["fake"]["apiKey"] == {
        "source": "store", "provider": "default", "id": "FAKE_API_KEY"}
    assert cfg["gateway"]["auth"]["token"] == "gw-tok-123456"   # kept
    rc, out, err = launcher.run(["secrets", "store", "get", "FAKE_API_KEY"],
                                state_dir=d)
    assert rc == 2              # stored, and a secret
    rc, out, err = launcher.run(["secrets", "audit", "--json"], state_dir=d)
    rep = json.loads(out)
    assert rep["summary"]["plaintextCount"] == 1    # the token, declined
    assert rep["summary"]["unresolvedRefCount"] == 0
    assert rep["resolution"]["refsChecked"] == 1
