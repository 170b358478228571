// The model of the Netmaker menu: everything the menu shows, kept up to date from netclientd
// (org.netmaker.Client on the system bus, docs/dbus-api.md), and the actions it offers. It follows
// the daemon only through signals and never polls: GetStatus() after PropertiesChanged of the
// manager or a network (the peers' own PropertiesChanged, every 5 s per busy peer, are not even
// subscribed to), GetPeers(network, serial) after a coalesced PeersChanged, everything again when
// the bus name gets a new owner. Plain GJS with no Shell import, so `gjs` runs it in tests
// (tests/integration/test_gnome_model.py) exactly as the Shell does.
//
//   const model = new NetmakerModel();          // or new NetmakerModel(aGioDBusConnection)
//   model.connect('changed', () => redraw(model.networks));
//   model.start(); ... model.setConnected('office', false); ... model.stop();
'use strict';

const {Gio, GLib} = imports.gi;
const Signals = imports.signals;

var BUS_NAME = 'org.netmaker.Client';
var PATH = '/org/netmaker/Client';
var IFACE = 'org.netmaker.Client';
var NETWORK_IFACE = 'org.netmaker.Client.Network';

// Bursts of signals (a join: State, Networks, the network's properties) become one GetStatus.
const REFRESH_DELAY_MS = 50;

function cancelled(e) {
    return e instanceof GLib.Error && e.matches(Gio.IOErrorEnum, Gio.IOErrorEnum.CANCELLED);
}

var NetmakerModel = class NetmakerModel {
    constructor(bus = null) {
        this._bus = bus;
        this._subscriptions = [];
        this._watch = 0;
        this._owner = null;
        this._refreshSource = 0;
        this._refreshing = false;
        this._refreshAgain = false;
        this._cancellable = null;
        // What the menu shows:
        this.available = false;        // netclientd is on the bus
        this.status = null;            // GetStatus(), unpacked
        this.networks = [];            // status.networks, each with .peersList (Map key -> peer)
        this._peers = new Map();       // network name -> {serial, peers: Map(public-key -> peer), loading}
        this.calls = 0;                // D-Bus calls made (tests prove there is no polling with it)
        this.lastError = null;
    }

    // ---- life ---------------------------------------------------------------------------------

    start() {
        if (!this._bus)
            this._bus = Gio.DBus.system;
        this._cancellable = new Gio.Cancellable();
        const sub = (iface, member, path, arg0, handler) => this._subscriptions.push(
            this._bus.signal_subscribe(BUS_NAME, iface, member, path, arg0,
                Gio.DBusSignalFlags.NONE, handler));
        // The manager's and the networks' properties only (arg0 is the interface).
        sub('org.freedesktop.DBus.Properties', 'PropertiesChanged', null, IFACE,
            () => this._queueRefresh());
        sub('org.freedesktop.DBus.Properties', 'PropertiesChanged', null, NETWORK_IFACE,
            () => this._queueRefresh());
        sub('org.freedesktop.DBus.ObjectManager', 'InterfacesAdded', PATH, null,
            (c, s, p, i, m, params) => {
                const [, ifaces] = params.deepUnpack();
                if (NETWORK_IFACE in ifaces)
                    this._queueRefresh();
            });
        sub('org.freedesktop.DBus.ObjectManager', 'InterfacesRemoved', PATH, null,
            (c, s, p, i, m, params) => {
                const [, ifaces] = params.deepUnpack();
                if (ifaces.includes(NETWORK_IFACE))
                    this._queueRefresh();
            });
        sub(IFACE, 'PeersChanged', PATH, null, (c, s, p, i, m, params) => {
            const [network, serial] = params.deepUnpack();
            this._peersChanged(network, serial);
        });
        // netclientd starts on demand (bus activation) and restarts: a new owner is a new run.
        this._watch = Gio.bus_watch_name_on_connection(this._bus, BUS_NAME,
            Gio.BusNameWatcherFlags.NONE,
            (c, name, owner) => this._appeared(owner),
            () => this._vanished());
    }

    stop() {
        if (this._cancellable)
            this._cancellable.cancel();
        for (const id of this._subscriptions)
            this._bus.signal_unsubscribe(id);
        this._subscriptions = [];
        if (this._watch)
            Gio.bus_unwatch_name(this._watch);
        this._watch = 0;
        if (this._refreshSource)
            GLib.source_remove(this._refreshSource);
        this._refreshSource = 0;
    }

    _appeared(owner) {
        if (owner === this._owner)
            return;
        this._owner = owner;
        this.available = true;
        this._peers.clear();      // another run: its serials mean nothing to us
        this._queueRefresh();
    }

    _vanished() {
        this._owner = null;
        this.available = false;
        // The links outlive the daemon; what we showed stays true until it is back. Say so.
        this.emit('changed');
    }

    // ---- D-Bus --------------------------------------------------------------------------------

    _call(method, args, replyType, flags = Gio.DBusCallFlags.NONE) {
        this.calls++;
        return new Promise((resolve, reject) => {
            this._bus.call(BUS_NAME, PATH, IFACE, method, args,
                replyType ? new GLib.VariantType(replyType) : null, flags, 120000,
                this._cancellable, (bus, res) => {
                    try {
                        resolve(bus.call_finish(res));
                    } catch (e) {
                        reject(e);
                    }
                });
        });
    }

    _queueRefresh() {
        if (this._refreshSource)
            return;
        this._refreshSource = GLib.timeout_add(GLib.PRIORITY_DEFAULT, REFRESH_DELAY_MS, () => {
            this._refreshSource = 0;
            this._refresh();
            return GLib.SOURCE_REMOVE;
        });
    }

    async _refresh() {
        if (this._refreshing) {
            this._refreshAgain = true;
            return;
        }
        this._refreshing = true;
        try {
            const reply = await this._call('GetStatus', null, '(a{sv})');
            this.status = reply.get_child_value(0).recursiveUnpack();
            this.available = true;
            this._updateNetworks();
            this.emit('changed');
            // Peers of networks we have not loaded yet (new, or a new run of the daemon).
            for (const n of this.networks) {
                const p = this._peers.get(n.name);
                if (!p || (p.serial < n['peers-serial'] && !p.loading))
                    this._loadPeers(n.name);
            }
        } catch (e) {
            if (!cancelled(e))
                this._error(e);
        } finally {
            this._refreshing = false;
            if (this._refreshAgain) {
                this._refreshAgain = false;
                this._queueRefresh();
            }
        }
    }

    _updateNetworks() {
        const nets = this.status ? this.status.networks || [] : [];
        const names = new Set(nets.map(n => n.name));
        for (const name of [...this._peers.keys()]) {
            if (!names.has(name))
                this._peers.delete(name);
        }
        for (const n of nets) {
            const p = this._peers.get(n.name);
            n.peersList = p ? p.peers : new Map();
            // internet-gateways: a(ss) -> [{nodeId, name}]
            n.gateways = (n['internet-gateways'] || []).map(([nodeId, name]) => ({nodeId, name}));
        }
        this.networks = nets;
    }

    _peersChanged(network, serial) {
        const p = this._peers.get(network);
        if (p && (p.loading || serial <= p.serial))
            return;
        this._loadPeers(network);
    }

    async _loadPeers(network) {
        let p = this._peers.get(network);
        if (!p) {
            p = {serial: 0, peers: new Map(), loading: false, again: false};
            this._peers.set(network, p);
        }
        if (p.loading) {
            p.again = true;
            return;
        }
        p.loading = true;
        try {
            const reply = await this._call('GetPeers', new GLib.Variant('(st)', [network, p.serial]),
                '(tbaa{sv}as)');
            const [serial, complete, peers, removed] = reply.recursiveUnpack();
            if (complete)
                p.peers.clear();
            for (const key of removed)
                p.peers.delete(key);
            for (const peer of peers)
                p.peers.set(peer['public-key'], peer);
            p.serial = serial;
            this._updateNetworks();
            this.emit('peers-changed', network);
            this.emit('changed');
        } catch (e) {
            if (!cancelled(e))
                this._error(e);
        } finally {
            p.loading = false;
            if (p.again) {
                p.again = false;
                this._loadPeers(network);
            }
        }
    }

    _error(e) {
        if (e instanceof GLib.Error && Gio.DBusError.is_remote_error(e))
            Gio.DBusError.strip_remote_error(e);
        this.lastError = e.message;
        this.emit('error', e.message);
    }

    // ---- what the menu reads ------------------------------------------------------------------

    get state() {
        return this.status ? this.status.state : 'unavailable';
    }

    get controlPlaneReachable() {
        return this.status ? this.status['control-plane-reachable'] : false;
    }

    get anyConnected() {
        return this.networks.some(n => n.connected);
    }

    network(name) {
        return this.networks.find(n => n.name === name) || null;
    }

    // This host's mesh addresses in a network, without the prefix length (what one copies).
    addresses(name) {
        const n = this.network(name);
        return n ? n.addresses.map(a => a.split('/')[0]) : [];
    }

    // Peers online from the peer array (GetPeers), which follows every change; the count in
    // GetStatus is the same number, read when the status was.
    peersOnline(name) {
        const n = this.network(name);
        if (!n)
            return 0;
        if (n.peersList.size === 0)
            return n['peers-online'];
        let online = 0;
        for (const p of n.peersList.values())
            online += p.online ? 1 : 0;
        return online;
    }

    // ---- what the menu does (polkit: org.netmaker.client.connect, allowed to the active session) --

    async setConnected(name, connected) {
        await this._call(connected ? 'Connect' : 'Disconnect', new GLib.Variant('(s)', [name]), '()',
            Gio.DBusCallFlags.ALLOW_INTERACTIVE_AUTHORIZATION);
    }

    // Every network, whatever the model last heard: right after a click the signals of the one
    // before may not have arrived yet, and netclientd does nothing for a network already so.
    async setAllConnected(connected) {
        for (const n of this.networks)
            await this.setConnected(n.name, connected);
    }

    // nodeId: one of network(name).gateways, or '' for none.
    async setInternetGateway(name, nodeId) {
        await this._call('SetInternetGateway', new GLib.Variant('(ss)', [name, nodeId]), '()',
            Gio.DBusCallFlags.ALLOW_INTERACTIVE_AUTHORIZATION);
    }
};
Signals.addSignalMethods(NetmakerModel.prototype);
