// Drives the GNOME Shell extension's model (desktop/gnome-shell-extension/model.js) for
// tests/integration/test_gnome_model.py: runs it on the system bus it is given (a test node's), prints
// what it shows as one JSON line per change on stdout, and runs the commands it reads as JSON lines
// on stdin (connect, disconnect, choose a gateway). The model is imported from NM_MODEL_DIR, the
// installed extension's directory, exactly as the Shell loads it.
'use strict';

const {Gio, GLib} = imports.gi;

imports.searchPath.unshift(GLib.getenv('NM_MODEL_DIR'));
const {NetmakerModel} = imports.model;

const loop = new GLib.MainLoop(null, false);
const out = new Gio.DataOutputStream({base_stream: new Gio.UnixOutputStream({fd: 1, close_fd: false})});
const input = new Gio.DataInputStream({base_stream: new Gio.UnixInputStream({fd: 0, close_fd: false})});
const model = new NetmakerModel();

function print_(obj) {
    out.put_string(`${JSON.stringify(obj)}\n`, null);
    out.flush(null);
}

function snapshot() {
    return {
        available: model.available,
        state: model.state,
        controlPlaneReachable: model.controlPlaneReachable,
        calls: model.calls,
        networks: model.networks.map(n => ({
            name: n.name,
            connected: n.connected,
            addresses: n.addresses,
            copy: model.addresses(n.name),
            peers: n.peers,
            peersKnown: n.peersList.size,
            peerNames: [...n.peersList.values()].map(p => p.name).sort(),
            peersOnline: model.peersOnline(n.name),
            gateways: n.gateways,
            via: n['internet-gateway-via'],
            viaName: n['internet-gateway-via-name'],
            peersSerial: n['peers-serial'],
        })),
    };
}

model.connect('changed', () => print_({event: 'changed', ...snapshot()}));
model.connect('error', (m, message) => print_({event: 'error', message}));

async function run(cmd) {
    switch (cmd.cmd) {
    case 'connect':
        await model.setConnected(cmd.network, true);
        break;
    case 'disconnect':
        await model.setConnected(cmd.network, false);
        break;
    case 'all':
        await model.setAllConnected(cmd.on);
        break;
    case 'gateway':
        await model.setInternetGateway(cmd.network, cmd.node);
        break;
    case 'dump':
        break;
    case 'quit':
        loop.quit();
        return;
    default:
        throw new Error(`unknown command ${cmd.cmd}`);
    }
}

function readNext() {
    input.read_line_async(GLib.PRIORITY_DEFAULT, null, (stream, res) => {
        const [line] = stream.read_line_finish_utf8(res);
        if (line === null) {
            loop.quit();
            return;
        }
        const cmd = JSON.parse(line);
        run(cmd).then(() => print_({event: 'done', id: cmd.id, ok: true, ...snapshot()}))
            .catch(e => print_({event: 'done', id: cmd.id, ok: false, error: e.message}));
        readNext();
    });
}

model.start();
print_({event: 'started'});
readNext();
loop.run();
model.stop();
