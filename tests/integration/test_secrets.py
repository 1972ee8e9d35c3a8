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
from harness import Launcher, clawgate_only, free_port
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
        assert sorted(reqs[0]["ids"]) == ["vault/fake", "vault/missing",
                                          "vault/other"]
        ok(gw, up)
        assert last_auth(up) == "Bearer sk-exec-vault-fake"
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
