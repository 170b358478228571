// A GNOME Shell "perf script" (SHELL_PERF_MODULE=netmakerMenu, found through GNOME_SHELL_JS): test
// automation that runs inside a headless gnome-shell, waits until the installed Netmaker extension
// is enabled and its menu has a network, opens Quick Settings and the extension's menu, writes a
// screenshot to $NM_SCREENSHOT and what the menu says to $NM_SCREENSHOT.json, and lets the Shell
// exit. Used by tests/integration/test_gnome_shell_menu.py; not shipped.
/* exported run, METRICS */
'use strict';

const {Gio, GLib, Shell} = imports.gi;
const Main = imports.ui.main;
const Scripting = imports.ui.scripting;

var METRICS = {};

const UUID = 'netmaker-mesh@netmaker.org';

function texts(item) {
    const out = [];
    const label = item.label ? item.label.text : null;
    if (label)
        out.push(label);
    if (item.menu && item.menu._getMenuItems) {
        for (const sub of item.menu._getMenuItems())
            out.push(...texts(sub).map(t => `  ${t}`));
    }
    return out;
}

async function run() {
    /* eslint-disable no-await-in-loop */
    const out = GLib.getenv('NM_SCREENSHOT');
    let toggle = null;
    for (let i = 0; i < 300 && !toggle; i++) {
        const ext = Main.extensionManager.lookup(UUID);
        const ind = ext && ext.stateObj ? ext.stateObj._indicator : null;
        const t = ind ? ind.quickSettingsItems[0] : null;
        if (t && t._model.networks.length > 0 && t._model.networks.every(n => n.peersList.size === n.peers))
            toggle = t;
        else
            await Scripting.sleep(100);
    }
    const ext = Main.extensionManager.lookup(UUID);
    const report = {
        extension: ext ? {state: ext.state, error: ext.error || null} : null,
        title: toggle ? (toggle.title !== undefined ? toggle.title : toggle.label) : null,
        subtitle: toggle ? toggle.subtitle || null : null,
        checked: toggle ? toggle.checked : null,
        items: [],
    };
    if (toggle) {
        // The Shell starts in the overview; the menu is shown over the desktop.
        Main.overview.hide();
        await Scripting.sleep(800);
        Main.panel.statusArea.quickSettings.menu.open();
        await Scripting.sleep(800);
        toggle.menu.open();
        await Scripting.sleep(1200);
        for (const item of toggle._section._getMenuItems())
            report.items.push(...texts(item));
        // the gateway submenu too, so that the screenshot shows the choice
        for (const item of toggle._section._getMenuItems()) {
            if (item.menu && item.setSubmenuShown)
                item.setSubmenuShown(true);
        }
        await Scripting.sleep(800);
    }
    const file = Gio.File.new_for_path(out);
    const stream = file.replace(null, false, Gio.FileCreateFlags.NONE, null);
    const shooter = new Shell.Screenshot();
    await new Promise((resolve, reject) => {
        shooter.screenshot(false, stream, (obj, res) => {
            try {
                obj.screenshot_finish(res);
                resolve();
            } catch (e) {
                reject(e);
            }
        });
    });
    stream.close(null);
    GLib.file_set_contents(`${out}.json`, JSON.stringify(report, null, 1));
}
