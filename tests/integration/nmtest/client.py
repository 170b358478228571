"""A small test host that speaks docs/protocol.md for real: it makes its own keys, registers with
an enrollment token, talks to the broker with its own credentials, opens sealed messages with the
server key pinned from the token, tracks serials and peers per network, and seals reports."""

import base64
import json
import threading
import time

import nacl.bindings
import nacl.exceptions
import nacl.public
import nacl.utils
import paho.mqtt.client as mqtt

from . import http, tlsutil

SEAL_VERSION = 1
NONCE_LEN = 24


# ---------------------------------------------------------------------------------------------
# Encodings, tokens and sealing (docs/protocol.md §2.5 and §3.2)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def decode_token(token: str) -> dict:
    """The JSON object inside an enrollment token."""
    return json.loads(unb64url(token))


def encode_token(obj) -> str:
    """An enrollment token from any JSON value (tests use it to forge tokens)."""
    text = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))
    return b64url(text.encode())


def seal(plaintext: bytes, recipient_public: bytes, sender_secret: bytes) -> bytes:
    nonce = nacl.utils.random(NONCE_LEN)
    box = nacl.public.Box(nacl.public.PrivateKey(sender_secret), nacl.public.PublicKey(recipient_public))
    return bytes([SEAL_VERSION]) + nonce + box.encrypt(plaintext, nonce).ciphertext


def open_sealed(data: bytes, sender_public: bytes, recipient_secret: bytes) -> bytes:
    """Raises ValueError when the message is not a version-1 sealed message from `sender_public`."""
    if len(data) < 1 + NONCE_LEN + 16:
        raise ValueError(f"sealed message too short ({len(data)} bytes)")
    if data[0] != SEAL_VERSION:
        raise ValueError(f"sealed message of unknown version {data[0]}")
    box = nacl.public.Box(nacl.public.PrivateKey(recipient_secret), nacl.public.PublicKey(sender_public))
    try:
        return box.decrypt(data[1 + NONCE_LEN:], data[1:1 + NONCE_LEN])
    except nacl.exceptions.CryptoError as e:
        raise ValueError("sealed message does not authenticate") from e


class KeyPair:
    """An X25519 key pair (WireGuard keys and message keys are both Curve25519)."""

    def __init__(self):
        self._priv = nacl.public.PrivateKey.generate()
        self.secret = bytes(self._priv)
        self.public = bytes(self._priv.public_key)

    @property
    def public_b64(self) -> str:
        return b64(self.public)


class Timeout(AssertionError):
    pass


def wait_until(predicate, timeout=5.0, what="condition", interval=0.01):
    """Polls `predicate` until it returns something truthy; returns that, or raises Timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise Timeout(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------
# The test host


class TestHost:
    """One host. Typical use:

        h = TestHost("laptop1")
        h.register(token)            # asserts 201, keeps the credential, MQTT account and state
        h.connect()                  # MQTT with its own account, subscribed to its message topic
        msg = h.wait_message("peers", lambda m: m["add"])
        h.peers("office")            # {public_key: peer} after applying everything received
    """

    __test__ = False  # not a pytest test class

    def __init__(self, name, *, listen_port=51821, endpoints=("198.18.0.1",), os_name="linux",
                 version="0.1.0"):
        self.name = name
        self.listen_port = listen_port
        self.endpoints = list(endpoints)
        self.os = os_name
        self.version = version
        self.wg = KeyPair()
        self.msg = KeyPair()

        self.api_url = None      # from the token
        self.server_key = None   # pinned from the token (bytes)
        self.host_id = None
        self.credential = None
        self.mqtt_info = None
        self.registered = None   # the whole 201 body

        self.cond = threading.Condition()
        self.messages = []       # every opened message, in arrival order (dicts)
        self.dropped = []        # (reason, raw payload) for messages that did not open or parse
        self.serial = None
        self.serial_errors = []  # (expected, got) for every message out of sequence
        self.networks = {}       # name -> {"state": dict, "peers": {public_key: peer}}
        self.host_deleted = False

        self.client = None
        self.connect_rc = None
        self.connected = False
        self.connects = 0        # successful CONNACKs, to notice reconnections
        self.subscribed = 0      # SUBACKs granted for our own topic
        self.suback = {}         # mid -> list of reason codes (ints)
        self.puback = {}         # mid -> reason code (int; 0 on MQTT 3.1.1)
        self._own_sub_mids = set()
        self.resync_on_reconnect = False  # send a snapshot-request after every reconnection

    # ---- registration --------------------------------------------------------------------

    def registration(self, token, **overrides) -> dict:
        body = {
            "token": token,
            "name": self.name,
            "os": self.os,
            "version": self.version,
            "wg_public_key": self.wg.public_b64,
            "msg_public_key": self.msg.public_b64,
            "listen_port": self.listen_port,
            "endpoints": self.endpoints,
        }
        body.update(overrides)
        return {k: v for k, v in body.items() if v is not _OMIT}

    def register(self, token, expect=201, api_url=None, timeout=20.0, **overrides):
        """POSTs a registration; with expect=201 (the default) asserts success and keeps what the
        server gave. Returns (status, body). The server may hold a registration up to 10 s while
        its broker connection is down, hence the longer timeout."""
        t = decode_token(token)
        url = api_url or t["api"]
        if t.get("pin") and url.startswith("https://") and http.trusted(url) is None:
            http.trust(url, pin=t["pin"])  # what the token pins, as netclientd does
        status, body = http.request(url, "POST", "/hosts/register", json=self.registration(token, **overrides),
                                    timeout=timeout)
        if expect is not None:
            assert status == expect, f"registration of {self.name}: expected {expect}, got {status} {body}"
        if status == 201:
            self.api_url = url
            self.server_key = unb64(t["spk"])
            self._registered(body)
        return status, body

    def _registered(self, body):
        assert isinstance(body, dict), body
        assert "credential" not in body and "password" not in json.dumps(body.get("mqtt")), \
            f"a secret in the clear in the registration answer: {sorted(body)}"
        assert unb64(body["server_msg_key"]) == self.server_key, \
            "the server's message key differs from the one pinned by the token"
        # The credential and the broker password come sealed to this host's message key.
        secrets = json.loads(open_sealed(unb64(body["sealed"]), self.server_key, self.msg.secret))
        self.registered = body
        self.host_id = body["host_id"]
        self.credential = secrets["credential"]
        self.mqtt_info = dict(body["mqtt"], password=secrets.get("mqtt_password")) if body["mqtt"] else None
        with self.cond:
            self._apply_state(body["state"])

    # ---- host API (credential) -----------------------------------------------------------

    def api(self, method, path, json=None, **kw):
        return http.request(self.api_url, method, path, json=json, token=self.credential, **kw)

    def pull(self):
        """GET /api/v1/host and apply it like a snapshot (what an agent does on a serial gap)."""
        status, body = self.api("GET", "/host")
        assert status == 200, (status, body)
        with self.cond:
            self._apply_state(body)
            self.cond.notify_all()
        return body

    # ---- MQTT ------------------------------------------------------------------------------

    @property
    def msg_topic(self):
        return self.mqtt_info["subscribe"]

    @property
    def report_topic(self):
        return self.mqtt_info["publish"]

    def connect(self, *, protocol=mqtt.MQTTv311, username=None, password=None, subscribe=True,
                timeout=5.0, client_id=None):
        """Connects with the host's own broker account (or the given one) and, once connected,
        subscribes to the host's message topic (again after every reconnection)."""
        url = self.mqtt_info["url"]
        assert url.startswith(("mqtt://", "mqtts://")), url
        hostport = url.split("://", 1)[1].rstrip("/")
        host, _, port = hostport.rpartition(":")
        host = host.strip("[]")
        self._protocol = protocol
        self._subscribe_own = subscribe
        self.connect_rc = None  # this connection's CONNACK, not an earlier one's
        kw = {"protocol": protocol}
        if protocol != mqtt.MQTTv5:
            kw["clean_session"] = True
        # Broker accounts are bound to their client id: the user name (docs/protocol.md §3.1).
        username = username or self.mqtt_info["username"]
        c = mqtt.Client(client_id=client_id or username, **kw)
        if url.startswith("mqtts://"):
            # The broker's key as registration pinned it, checked before any credential goes out.
            if self.mqtt_info.get("pin"):
                got = tlsutil.probe_pin(host, int(port))
                assert got == self.mqtt_info["pin"], f"the broker presents {got}, not the pinned {self.mqtt_info['pin']}"
            c.tls_set_context(tlsutil.unverified_context())
        c.username_pw_set(username, password or self.mqtt_info["password"])
        c.reconnect_delay_set(0.05, 0.5)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        c.on_publish = self._on_publish
        self.client = c
        c.connect(host, int(port), keepalive=10)
        c.loop_start()
        wait_until(lambda: self.connect_rc is not None, timeout, f"CONNACK for {self.name}")
        if self.connect_rc != 0:
            return self.connect_rc
        if subscribe:
            wait_until(lambda: self.subscribed >= self.connects, timeout, f"SUBACK for {self.name}")
        return 0

    def disconnect(self):
        if self.client:
            self.client.disconnect()
            self.client.loop_stop()
            self.client = None
            self.connected = False

    def _on_connect(self, client, userdata, flags, rc, properties=None):
        rc = int(getattr(rc, "value", rc))
        with self.cond:
            self.connect_rc = rc
            if rc == 0:
                self.connected = True
                self.connects += 1
            self.cond.notify_all()
        if rc != 0:
            # Bad credentials: stop paho from retrying forever.
            client.disconnect()
            return
        if self._subscribe_own:
            _, mid = client.subscribe(self.msg_topic, qos=1)
            self._own_sub_mids.add(mid)

    def _on_disconnect(self, client, userdata, rc, properties=None):
        with self.cond:
            self.connected = False
            self.cond.notify_all()

    def _on_subscribe(self, client, userdata, mid, granted, properties=None):
        codes = [int(getattr(g, "value", g)) for g in granted]
        with self.cond:
            self.suback[mid] = codes
            if mid in self._own_sub_mids:
                assert all(c < 0x80 for c in codes), f"{self.name}: own topic refused: {codes}"
                self.subscribed += 1
                if self.resync_on_reconnect and self.subscribed > 1:
                    threading.Thread(target=self.request_snapshot, daemon=True).start()
            self.cond.notify_all()

    def _on_publish(self, client, userdata, mid, *args):
        with self.cond:
            self.puback[mid] = 0
            self.cond.notify_all()

    def _on_message(self, client, userdata, m):
        try:
            plain = open_sealed(m.payload, self.server_key, self.msg.secret)
            msg = json.loads(plain)
            if not isinstance(msg, dict) or "type" not in msg or "serial" not in msg:
                raise ValueError("not a message object")
        except (ValueError, UnicodeDecodeError) as e:
            with self.cond:
                self.dropped.append((f"{m.topic}: {e}", m.payload))
                self.cond.notify_all()
            return
        with self.cond:
            msg["_topic"] = m.topic
            msg["_received"] = time.monotonic()
            self.messages.append(msg)
            self._apply(msg)
            self.cond.notify_all()

    def subscribe(self, topic, timeout=5.0):
        """Subscribes to any topic and returns the SUBACK reason codes (ints). 0-2 are granted
        QoS; 0x80 (MQTT 3.1.1 failure) or 0x87 (MQTT 5 not authorised) mean refused."""
        result, mid = self.client.subscribe(topic, qos=1)
        assert result == mqtt.MQTT_ERR_SUCCESS, result
        wait_until(lambda: mid in self.suback, timeout, f"SUBACK for {topic}")
        return self.suback[mid]

    def publish(self, topic, payload: bytes, qos=1, timeout=5.0):
        """Publishes and waits for the PUBACK (QoS 1). Returns the paho MQTTMessageInfo."""
        info = self.client.publish(topic, payload, qos=qos)
        info.wait_for_publish(timeout)
        return info

    def seal_report(self, report: dict, sender: "TestHost" = None) -> bytes:
        """A report sealed for the server key, by this host (or by `sender`'s message key)."""
        s = sender or self
        return seal(json.dumps(report).encode(), self.server_key, s.msg.secret)

    def report(self, report: dict, topic=None, sender=None):
        """Seals and publishes a report on the host's report topic (or `topic`)."""
        return self.publish(topic or self.report_topic, self.seal_report(report, sender))

    def request_snapshot(self):
        try:
            self.report({"type": "snapshot-request"})
        except Exception:  # noqa: BLE001 (a reconnect race; the caller waits for the snapshot)
            pass

    def checkin(self, listen_ports=None, endpoints=None, version=None):
        return self.report({
            "type": "checkin",
            "version": version or self.version,
            "listen_ports": listen_ports or {n: v["state"]["listen_port"] for n, v in self.networks.items()
                                             if v["state"]},
            "endpoints": self.endpoints if endpoints is None else endpoints,
        })

    # ---- state tracking --------------------------------------------------------------------

    def _apply_state(self, state):
        self.serial = state["serial"]
        self.networks = {}
        for n in state["networks"]:
            self.networks[n["network"]] = {
                "state": n,
                "peers": {p["public_key"]: p for p in (n.get("peers") or [])},
            }

    def _apply(self, msg):
        s = msg["serial"]
        if self.serial is not None and s != self.serial + 1:
            self.serial_errors.append((self.serial + 1, s))
        self.serial = s
        t = msg["type"]
        if t == "peers":
            net = self.networks.setdefault(msg["network"], {"state": None, "peers": {}})
            for p in msg.get("add") or []:
                net["peers"][p["public_key"]] = p
            for p in msg.get("update") or []:
                net["peers"][p["public_key"]] = p
            for k in msg.get("remove") or []:
                net["peers"].pop(k, None)
        elif t == "network-joined":
            n = msg["network"]
            self.networks[n["network"]] = {"state": n, "peers": {p["public_key"]: p for p in n.get("peers") or []}}
        elif t == "network-left":
            self.networks.pop(msg["network"], None)
        elif t == "network-changed":
            n = msg["network"]
            if n["network"] in self.networks:
                self.networks[n["network"]]["state"] = n
        elif t == "snapshot":
            self._apply_state(msg["state"])
            self.serial = s
        elif t == "host-deleted":
            self.host_deleted = True

    def peers(self, network):
        with self.cond:
            return dict(self.networks.get(network, {}).get("peers", {}))

    # ---- waiting ---------------------------------------------------------------------------

    def wait_for(self, predicate, timeout=5.0, what="condition"):
        """Waits until predicate(self) is truthy, evaluated under the host's lock after each
        message; returns its value or raises Timeout (saying what was received)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                v = predicate(self)
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Timeout(f"{self.name}: timed out after {timeout} s waiting for {what}; "
                                  f"received {self.describe_messages()}; dropped {len(self.dropped)}")
                self.cond.wait(min(left, 0.05))

    def wait_message(self, type_, match=None, timeout=5.0, after=0):
        """The first message of `type_` at index >= `after` for which match(msg) is true."""
        def find(h):
            for m in h.messages[after:]:
                if m["type"] == type_ and (match is None or match(m)):
                    return m
            return None
        return self.wait_for(find, timeout, f"a {type_!r} message")

    def no_message(self, type_=None, match=None, wait=0.3, after=0):
        """Asserts that no such message arrives within `wait` seconds (for negative checks)."""
        time.sleep(wait)
        with self.cond:
            bad = [m for m in self.messages[after:]
                   if (type_ is None or m["type"] == type_) and (match is None or match(m))]
        assert not bad, f"{self.name}: unexpected messages {bad}"

    def describe_messages(self):
        return [(m["type"], m["serial"]) for m in self.messages]

    def close(self):
        self.disconnect()


class _Omit:
    def __repr__(self):
        return "OMIT"


_OMIT = _Omit()
OMIT = _OMIT  # pass as a registration override to leave a member out

