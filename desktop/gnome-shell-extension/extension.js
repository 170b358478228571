// Netmaker mesh in GNOME's Quick Settings (GNOME 43 and 44): a toggle for the joined networks and a
// menu with each network's switch, this host's mesh address (click to copy), its peers online, the
// internet gateway choice, and whether the control plane is reachable. Everything comes from
// model.js, which talks only to netclientd (org.netmaker.Client) and follows it through signals.
// Connecting, disconnecting and choosing a gateway need no password for the user at the console
// (polkit action org.netmaker.client.connect); joining and leaving stay with `netclient`.
'use strict';

const {GObject, St} = imports.gi;
const Main = imports.ui.main;
const PopupMenu = imports.ui.popupMenu;
const QuickSettings = imports.ui.quickSettings;
const ExtensionUtils = imports.misc.extensionUtils;

const Me = ExtensionUtils.getCurrentExtension();
const {NetmakerModel} = Me.imports.model;

const ICON = 'network-vpn-symbolic';
const ICON_OFF = 'network-vpn-disabled-symbolic';

function describeState(model) {
    if (!model.available)
        return 'netclientd is not running';
    switch (model.state) {
    case 'unregistered':
        return 'Not joined (netclient join -t TOKEN)';
    case 'joining':
        return 'Joining…';
    case 'offline':
        return 'Server unreachable: tunnels keep working';
    default:
        return null;
    }
}

// Sets the toggle's text in GNOME 43 (label) and 44 (title).
function setTitle(toggle, text) {
    if ('title' in toggle)
        toggle.title = text;
    else
        toggle.label = text;
}

const NetmakerToggle = GObject.registerClass(
class NetmakerToggle extends QuickSettings.QuickMenuToggle {
    _init(model) {
        super._init({iconName: ICON_OFF, toggleMode: false});
        setTitle(this, 'Mesh');
        this._model = model;
        this.menu.setHeader(ICON, 'Netmaker mesh');
        this._section = new PopupMenu.PopupMenuSection();
        this.menu.addMenuItem(this._section);

        // The toggle: off -> connect every joined network; on -> disconnect them all.
        this.connect('clicked', () => {
            this._run(this._model.setAllConnected(!this._model.anyConnected));
        });
        this._changedId = this._model.connect('changed', () => this._sync());
        this._errorId = this._model.connect('error', (m, message) => this._showError(message));
        this._sync();
    }

    _run(promise) {
        promise.catch(e => this._showError(e.message));
    }

    _showError(message) {
        Main.notifyError('Netmaker mesh', message);
    }

    _sync() {
        const model = this._model;
        const nets = model.networks;
        const connected = nets.filter(n => n.connected);
        this.checked = connected.length > 0;
        this.iconName = this.checked ? ICON : ICON_OFF;
        if (nets.length === 1)
            setTitle(this, nets[0].name);
        else
            setTitle(this, 'Mesh');
        const subtitle = describeState(model) ||
            (nets.length > 1 ? `${connected.length} of ${nets.length} networks` : null);
        if ('subtitle' in this)
            this.subtitle = subtitle;
        this.menu.setHeader(ICON, 'Netmaker mesh', subtitle || '');
        this._rebuild();
    }

    _rebuild() {
        this._section.removeAll();
        const model = this._model;
        for (const net of model.networks)
            this._addNetwork(net);
        if (model.networks.length === 0) {
            const item = new PopupMenu.PopupMenuItem(describeState(model) || 'No network joined', {reactive: false});
            this._section.addMenuItem(item);
        }
    }

    _addNetwork(net) {
        const model = this._model;
        const sw = new PopupMenu.PopupSwitchMenuItem(net.name, net.connected);
        sw.connect('toggled', (item, state) => this._run(model.setConnected(net.name, state)));
        this._section.addMenuItem(sw);

        // This host's address: a click copies it.
        for (const address of model.addresses(net.name)) {
            const item = new PopupMenu.PopupImageMenuItem(`${address}  (click to copy)`, 'edit-copy-symbolic');
            item.connect('activate', () => {
                St.Clipboard.get_default().set_text(St.ClipboardType.CLIPBOARD, address);
                Main.notify('Netmaker mesh', `Copied ${address}`);
            });
            this._section.addMenuItem(item);
        }

        const peers = new PopupMenu.PopupMenuItem(
            `Peers online: ${model.peersOnline(net.name)} of ${net.peers}`, {reactive: false});
        this._section.addMenuItem(peers);

        // The internet gateway: none, or one of the peers that offer one.
        if (net.gateways.length > 0 || net['internet-gateway-via']) {
            const current = net['internet-gateway-via'];
            const label = current ? `Internet via ${net['internet-gateway-via-name'] || current}` : 'Internet: direct';
            const sub = new PopupMenu.PopupSubMenuMenuItem(label);
            const choose = (nodeId, text) => {
                const item = new PopupMenu.PopupMenuItem(text);
                item.setOrnament(nodeId === current ? PopupMenu.Ornament.DOT : PopupMenu.Ornament.NONE);
                item.connect('activate', () => this._run(model.setInternetGateway(net.name, nodeId)));
                sub.menu.addMenuItem(item);
            };
            choose('', 'Direct (no gateway)');
            for (const gw of net.gateways)
                choose(gw.nodeId, gw.name || gw.nodeId);
            this._section.addMenuItem(sub);
        }
        this._section.addMenuItem(new PopupMenu.PopupSeparatorMenuItem());
    }

    destroy() {
        this._model.disconnect(this._changedId);
        this._model.disconnect(this._errorId);
        super.destroy();
    }
});

const NetmakerIndicator = GObject.registerClass(
class NetmakerIndicator extends QuickSettings.SystemIndicator {
    _init(model) {
        super._init();
        this._indicator = this._addIndicator();
        this._indicator.iconName = ICON;
        this._model = model;
        const toggle = new NetmakerToggle(model);
        this.quickSettingsItems.push(toggle);
        this._changedId = model.connect('changed', () => {
            this._indicator.visible = model.anyConnected;
        });
        this._indicator.visible = model.anyConnected;
    }

    destroy() {
        this._model.disconnect(this._changedId);
        this.quickSettingsItems.forEach(item => item.destroy());
        super.destroy();
    }
});

class Extension {
    enable() {
        this._model = new NetmakerModel();
        this._indicator = new NetmakerIndicator(this._model);
        const qs = Main.panel.statusArea.quickSettings;
        if (qs.addExternalIndicator) {
            qs.addExternalIndicator(this._indicator); // GNOME 44
        } else {
            qs._indicators.insert_child_at_index(this._indicator, 0); // GNOME 43
            qs._addItems(this._indicator.quickSettingsItems);
        }
        this._model.start();
    }

    disable() {
        this._model.stop();
        this._indicator.destroy();
        this._indicator = null;
        this._model = null;
    }
}

// eslint-disable-next-line no-unused-vars
function init() {
    return new Extension();
}
