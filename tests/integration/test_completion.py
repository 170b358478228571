"""Shell completion as installed (the staged `meson install`): in bash, with bash-completion
loaded, `complete -p` names our functions and each one, called as bash calls it for a TAB
(COMP_WORDS/COMP_CWORD, candidates through compgen), completes nmctl's commands, verbs and options
from its --help and networks, hosts, nodes, keys, users, external clients and ACL rules from a real
netmakerd, and netclient's commands and the networks a real netclientd has joined. In zsh the files
parse (`zsh -n`), compinit binds them to the commands, and the same functions, run by zsh with
their candidates captured, complete from the same live server."""

import os
import shlex
import subprocess

import pytest

from nmtest import stage
from nmtest.mesh import Mesh
from nmtest.server import binary

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces)")

BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"

BASH_DRIVER = r'''
. /usr/share/bash-completion/bash_completion
. "$1"
shift
func=$(complete -p "$(basename "$1")" | sed -n 's/.*-F \([^ ]*\) .*/\1/p')
[ -n "$func" ] || { echo "no completion registered for $1" >&2; exit 3; }
COMP_WORDS=("$@")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMP_LINE="$*"
COMP_POINT=${#COMP_LINE}
COMPREPLY=()
"$func" "$(basename "$1")" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
'''

# Runs a completion function as zsh's completion system would for the word under the cursor, with
# compadd (and _files) replaced by functions that print the candidates matching the word, as
# compadd's own matching would.
ZSH_DRIVER = r'''
compadd() {
        local w
        (( ${@[(I)--]} )) && shift ${@[(I)--]}
        for w; do [[ $w == ${words[CURRENT]}* ]] && print -r -- $w; done
        return 0
}
_files() { print -r -- "<files>" }
src=$1; shift
words=("$@")
CURRENT=${#words}
source $src
'''


def env_for(server):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NMCTL_")}
    env.update(NMCTL_SERVER=server.url, NMCTL_PIN=server.pin, NMCTL_MASTER_KEY=server.MASTER_KEY, LC_ALL="C")
    return env


def bash_complete(file, words, env=None, run=None):
    argv = ["bash", "-c", BASH_DRIVER, "driver", str(file), *words]
    if run:
        p = run(argv)
    else:
        p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, f"{words}: {p.returncode} {p.stderr}"
    return sorted(set(p.stdout.split()))


def zsh_complete(file, words, env=None, run=None):
    argv = ["zsh", "-f", "-c", ZSH_DRIVER, "driver", str(file), *words]
    if run:
        p = run(argv)
    else:
        p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode in (0, 1), f"{words}: {p.returncode} {p.stderr}"
    assert "command not found" not in p.stderr and "parse error" not in p.stderr, p.stderr
    return sorted(set(p.stdout.split()))


@pytest.fixture
def populated(server, hosts):
    """Two networks, a host in office, a key, a user, an external client, an ACL rule and a
    nameserver."""
    server.create_network("office", "10.99.0.0/24")
    server.create_network("lab", "10.98.0.0/24")
    key = server.create_key(["office"], name="laptops", unlimited=True)
    h = hosts("alpha", endpoints=["198.18.94.1"])
    h.register(key["token"])
    node = server.admin("GET", "/nodes", expect=200)[0]
    server.admin("POST", "/users", json={"username": "uma", "password": "user-password-1", "role": "user"},
                 expect=201)
    server.admin("PUT", f"/nodes/{node['id']}/ingress", expect=200)
    ext = server.admin("POST", "/networks/office/ext-clients", json={"name": "phone", "gateway": node["id"]},
                       expect=201)
    rule = server.admin("POST", "/networks/office/acl/rules",
                        json={"source": "*", "destination": f"node:{node['id']}", "action": "allow"}, expect=201)
    server.admin("POST", "/networks/office/nameservers", json={"domain": "corp.example", "servers": ["192.0.2.53"]},
                 expect=201)
    return {"key": key["id"], "host": h, "node": node["id"], "ext": ext["id"], "rule": rule["id"]}


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_nmctl(shell, server, populated):
    complete = bash_complete if shell == "bash" else zsh_complete
    file = stage.installed("nmctl.bash" if shell == "bash" else "_nmctl")
    nm = str(binary("nmctl"))
    env = env_for(server)

    def c(*words):
        return complete(file, [nm, *words], env=env)

    groups = c("")
    assert {"login", "network", "key", "host", "node", "dns", "acl", "extclient", "user"} <= set(groups), groups
    assert c("ne") == ["network"]
    assert c("dns", "") == ["add", "delete", "export", "list"]
    assert c("acl", "rule", "") == ["add", "delete"]
    assert c("nameserver", "") == ["add", "delete", "list", "set"]
    assert {"set", "join", "show"} <= set(c("host", "")) and "failover" in c("node", "")
    assert {"--name", "--listen-port", "--endpoint", "--keepalive", "--mtu"} <= set(c("host", "set", "x", "--"))
    assert c("host", "set", "x", "--mtu", "") == ["default"]
    assert c("network", "create", "x", "--mtu", "") == []
    assert {"--server", "--json", "--pin", "--ipv4", "--ipv6", "--mtu"} <= set(c("network", "create", "x", "--"))
    assert "--version" not in c("network", "create", "x", "--")
    assert c("node", "egress", "x", "--n") == ["--no-nat"]
    # From the server: networks, hosts (names and ids), nodes, keys, users, clients, rules.
    assert c("dns", "export", "") == ["lab", "office"]
    assert c("network", "show", "o") == ["office"]
    assert c("network", "create", "") == []
    assert c("key", "create", "k", "--network", "") == ["lab", "office"]
    assert c("host", "show", "") == sorted(["alpha", populated["host"].host_id])
    assert c("host", "join", "alpha", "") == ["lab", "office"]
    assert c("node", "show", "") == [populated["node"]]
    assert c("key", "delete", "") == [populated["key"]]
    assert c("user", "show", "") == ["admin", "uma"]
    assert c("user", "update", "uma", "--role", "") == ["admin", "user"]
    assert c("extclient", "show", "") == [populated["ext"]]
    assert c("extclient", "create", "office", "phone2", "--gateway", "") == [populated["node"]]
    assert c("acl", "default", "office", "") == ["allow", "deny"]
    assert c("acl", "rule", "delete", "office", "") == [populated["rule"]]
    assert c("node", "relay", populated["node"], populated["node"], "") == [populated["node"]]
    assert c("node", "failover", "") == [populated["node"]]
    assert c("host", "set", "") == sorted(["alpha", populated["host"].host_id])
    assert c("nameserver", "list", "") == ["lab", "office"]
    assert c("nameserver", "delete", "office", "") == ["corp.example"]
    assert c("nameserver", "set", "office", "c") == ["corp.example"]
    assert c("nameserver", "add", "office", "") == []
    # The connection options typed on the line are used; a server that is not there gives nothing.
    dead = {**env, "NMCTL_SERVER": "https://127.0.0.1:9"}
    assert complete(file, [nm, "network", "show", ""], env=dead) == []
    assert complete(file, [nm, "--server", server.url, "network", "show", ""], env=dead) == ["lab", "office"]


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    with Mesh(tmp_path_factory.mktemp("completion"), nodes=1, subnet=94) as m:
        m.join_all()
        yield m


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_netclient(shell, mesh):
    node = mesh.nodes[0]
    complete = bash_complete if shell == "bash" else zsh_complete
    file = stage.installed("netclient.bash" if shell == "bash" else "_netclient")
    nc = str(node.netclient_bin)

    def c(*words):
        return complete(file, [nc, *words], run=node.run)

    assert c("") == sorted(["join", "leave", "list", "status", "peers", "pull", "connect", "disconnect",
                            "internet-gateway"])
    assert {"--json", "--no-ask-password", "--token", "--name", "--port", "--help", "--version"} <= set(c("--"))
    # The networks netclientd has joined, from the daemon itself.
    assert c("leave", "") == ["office"]
    assert c("disconnect", "o") == ["office"]
    assert c("peers", "") == ["office"]
    assert c("internet-gateway", "office", "") == ["off"]
    assert c("join", "-t", "") == []
    assert c("leave", "office", "") == []


def test_zsh_files_parse_and_load(tmp_path):
    files = [stage.installed("_nmctl"), stage.installed("_netclient")]
    for f in files:
        p = subprocess.run(["zsh", "-n", str(f)], capture_output=True, text=True)
        assert p.returncode == 0, f"{f}: {p.stderr}"
    d = {str(f.parent) for f in files}
    assert len(d) == 1, d
    script = f'''fpath=({shlex.quote(d.pop())} $fpath)
autoload -Uz compinit && compinit -u -d {shlex.quote(str(tmp_path / "zcompdump"))}
print -r -- "$_comps[nmctl] $_comps[netclient]"'''
    p = subprocess.run(["zsh", "-f", "-c", script], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "HOME": str(tmp_path)})
    assert p.returncode == 0 and p.stdout.split() == ["_nmctl", "_netclient"], (p.stdout, p.stderr)


def test_bash_files_register():
    for name, func in (("nmctl", "_nmctl"), ("netclient", "_netclient")):
        f = stage.installed(f"{name}.bash")
        assert f.parent.name == "completions" and f.name == name, f
        p = subprocess.run(["bash", "-c", f". {BASH_COMPLETION}; . {shlex.quote(str(f))}; complete -p {name}"],
                           capture_output=True, text=True)
        assert p.returncode == 0 and p.stdout.strip() == f"complete -F {func} {name}", (p.stdout, p.stderr)
